package engine.policy.public_database_test

import data.engine.policy.public_database
import data.engine.testing

test_a_private_database_passes if {
	count(public_database.deny) == 0 with input as testing.plan("staging", [testing.database({})])
}

test_a_public_database_is_denied_in_every_environment if {
	every env in ["staging", "production"] {
		public_database.deny == {"aws_db_instance.this[0]: databases must not be publicly accessible"} with input as testing.plan(env, [testing.database({"publicly_accessible": true})])
	}
}
