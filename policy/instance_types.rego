# Which instance types an environment may run. The lists are the provider's: change them here (with a test)
# to allow a type; the engine needs no change.
package engine.policy.instance_types

import data.engine.lib

# Production: current-generation families, small to xlarge. 2xlarge needs the provider's approval (add it here).
allowed := {
	"production": {
		"families": {"t3", "t3a", "t4g", "m6i", "m7g", "c6i", "r6i"},
		"sizes": {"small", "medium", "large", "xlarge"},
	},
	"default": {
		"families": {"t3", "t3a", "t4g", "m5", "m6i", "m7g", "c5", "c6i", "r5", "r6i"},
		"sizes": {"nano", "micro", "small", "medium", "large"},
	},
}

previous_generation := {"m5", "c5", "r5"}

rules := allowed[input.environment]

rules := allowed["default"] if not allowed[input.environment]

deny contains msg if {
	some r in lib.planned
	r.type == "instance"
	[family, size] := split(r.after.instance_type, ".")
	not family in rules.families
	msg := sprintf("%s: instance family %s is not allowed in %s (allowed: %s)", [r.address, family, input.environment, concat(", ", sort(rules.families))])
}

deny contains msg if {
	some r in lib.planned
	r.type == "instance"
	[family, size] := split(r.after.instance_type, ".")
	family in rules.families
	not size in rules.sizes
	msg := sprintf("%s: instance size %s (%s) is not allowed in %s (allowed sizes: %s)", [r.address, size, r.after.instance_type, input.environment, concat(", ", sort(rules.sizes))])
}

warn contains msg if {
	some r in lib.planned
	r.type == "instance"
	[family, _] := split(r.after.instance_type, ".")
	family in previous_generation
	family in rules.families
	msg := sprintf("%s: %s is a previous-generation family; %s6i costs the same and is faster", [r.address, family, trim_suffix(family, "5")])
}
