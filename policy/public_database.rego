# No database is reachable from the internet, in any environment.
package engine.policy.public_database

import data.engine.lib

deny contains msg if {
	some r in lib.planned
	r.type == "database"
	r.after.publicly_accessible == true
	msg := sprintf("%s: databases must not be publicly accessible", [r.address])
}
