# Inputs for the policy unit tests (`engine policy test`, or `opa test policy/*.rego`).
package engine.testing

tags := {"customer": "acme", "environment": "production", "managed-by": "managed-infra-engine", "cost-center": "4711"}

instance(address, itype) := {
	"address": address, "type": "instance", "raw_type": "aws_instance", "action": "create",
	"before": null, "after": {"instance_type": itype, "root_volume_gb": 20, "root_volume_type": "gp3", "tags": tags},
}

database(overrides) := {
	"address": "aws_db_instance.this[0]", "type": "database", "raw_type": "aws_db_instance", "action": "create", "before": null,
	"after": object.union(
		{
			"engine": "postgres", "instance_class": "db.t3.small", "storage_gb": 50, "multi_az": true, "backup_retention_days": 7,
			"publicly_accessible": false, "storage_encrypted": true, "tags": tags,
		},
		overrides,
	),
}

plan(environment, resources) := {
	"tenant": "acme", "environment": environment, "tool": "terraform", "target": "aws", "region": "eu-west-1",
	"resources": resources,
	"cost": {"currency": "USD", "monthly_before": 0, "monthly_after": 100, "monthly_delta": 100, "complete": true, "not_priced": []},
	"budget": {"max_monthly_cost": null},
}

# object.union merges nested objects: take the old tags out first so that `t` replaces them.
with_tags(r, t) := object.union(object.remove(r, ["after"]), {"after": object.union(object.remove(r.after, ["tags"]), {"tags": t})})
