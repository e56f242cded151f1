# Every resource that takes tags carries the provider's tags (who owns it, where it runs, who manages it);
# a cost-center tag is recommended so invoices can be split.
package engine.policy.required_tags

import data.engine.lib

required := {"customer", "environment", "managed-by"}

recommended := {"cost-center"}

taggable contains r if {
	some r in lib.planned
	is_object(r.after.tags)
}

deny contains msg if {
	some r in taggable
	missing := {k | some k in required; not r.after.tags[k]}
	count(missing) > 0
	msg := sprintf("%s: missing required tags %s", [r.address, concat(", ", sort(missing))])
}

deny contains msg if {
	some r in taggable
	some key, want in {"customer": input.tenant, "environment": input.environment}
	r.after.tags[key]
	r.after.tags[key] != want
	msg := sprintf("%s: tag %s is %q, expected %q", [r.address, key, r.after.tags[key], want])
}

warn contains msg if {
	missing := {k | some k in recommended; some r in taggable; not r.after.tags[k]}
	count(missing) > 0
	msg := sprintf("resources have no %s tag (add it under tags: in the customer file)", [concat(", ", sort(missing))])
}
