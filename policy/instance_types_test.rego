package engine.policy.instance_types_test

import data.engine.policy.instance_types
import data.engine.testing

test_production_allows_current_generation_up_to_xlarge if {
	count(instance_types.deny) == 0 with input as testing.plan("production", [testing.instance("a", "m6i.xlarge")])
}

test_production_denies_2xlarge_naming_the_resource_and_the_allowed_sizes if {
	denies := instance_types.deny with input as testing.plan("production", [testing.instance("aws_instance.app[0]", "t3.2xlarge")])
	denies == {"aws_instance.app[0]: instance size 2xlarge (t3.2xlarge) is not allowed in production (allowed sizes: large, medium, small, xlarge)"}
}

test_production_denies_previous_generation_families if {
	denies := instance_types.deny with input as testing.plan("production", [testing.instance("a", "m5.large")])
	count(denies) == 1
	some msg in denies
	contains(msg, "instance family m5 is not allowed in production")
}

test_other_environments_use_the_default_list if {
	count(instance_types.deny) == 0 with input as testing.plan("staging", [testing.instance("a", "t3.micro")])
	count(instance_types.deny) == 1 with input as testing.plan("staging", [testing.instance("a", "t3.xlarge")])
}

test_previous_generation_outside_production_is_a_warning if {
	warns := instance_types.warn with input as testing.plan("staging", [testing.instance("a", "m5.large")])
	warns == {"a: m5 is a previous-generation family; m6i costs the same and is faster"}
	count(instance_types.deny) == 0 with input as testing.plan("staging", [testing.instance("a", "m5.large")])
}

test_deleted_instances_are_not_judged if {
	gone := object.union(testing.instance("a", "t3.2xlarge"), {"action": "delete", "after": null})
	count(instance_types.deny) == 0 with input as testing.plan("production", [gone])
}
