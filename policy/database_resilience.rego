# Production databases survive the loss of a zone and of data: Multi-AZ, with backups.
package engine.policy.database_resilience

import data.engine.lib

min_backup_days := 7

deny contains msg if {
	lib.production
	some r in lib.planned
	r.type == "database"
	not r.after.multi_az
	msg := sprintf("%s: a production database must be Multi-AZ (set database.multi_az: true)", [r.address])
}

deny contains msg if {
	lib.production
	some r in lib.planned
	r.type == "database"
	r.after.backup_retention_days < 1
	msg := sprintf("%s: a production database must keep backups (database.backup_retention_days is 0)", [r.address])
}

warn contains msg if {
	lib.production
	some r in lib.planned
	r.type == "database"
	r.after.backup_retention_days >= 1
	r.after.backup_retention_days < min_backup_days
	msg := sprintf("%s: backups are kept %d days; %d or more is recommended for production", [r.address, r.after.backup_retention_days, min_backup_days])
}

warn contains msg if {
	not lib.production
	some r in lib.planned
	r.type == "database"
	r.after.backup_retention_days < 1
	msg := sprintf("%s: this database keeps no backups", [r.address])
}
