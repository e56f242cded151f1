package engine.policy.database_resilience_test

import data.engine.policy.database_resilience
import data.engine.testing

test_a_multi_az_production_database_with_backups_passes if {
	count(database_resilience.deny) == 0 with input as testing.plan("production", [testing.database({})])
	count(database_resilience.warn) == 0 with input as testing.plan("production", [testing.database({})])
}

test_single_az_production_database_is_denied if {
	denies := database_resilience.deny with input as testing.plan("production", [testing.database({"multi_az": false})])
	denies == {"aws_db_instance.this[0]: a production database must be Multi-AZ (set database.multi_az: true)"}
}

test_production_database_without_backups_is_denied if {
	denies := database_resilience.deny with input as testing.plan("production", [testing.database({"backup_retention_days": 0})])
	denies == {"aws_db_instance.this[0]: a production database must keep backups (database.backup_retention_days is 0)"}
}

test_short_backup_retention_in_production_is_a_warning if {
	warns := database_resilience.warn with input as testing.plan("production", [testing.database({"backup_retention_days": 3})])
	warns == {"aws_db_instance.this[0]: backups are kept 3 days; 7 or more is recommended for production"}
}

test_staging_may_run_single_az_but_is_warned_without_backups if {
	single := testing.plan("staging", [testing.database({"multi_az": false, "backup_retention_days": 0})])
	count(database_resilience.deny) == 0 with input as single
	database_resilience.warn == {"aws_db_instance.this[0]: this database keeps no backups"} with input as single
}
