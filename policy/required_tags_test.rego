package engine.policy.required_tags_test

import data.engine.policy.required_tags
import data.engine.testing

test_the_provider_tags_pass if {
	count(required_tags.deny) == 0 with input as testing.plan("production", [testing.instance("a", "t3.small")])
	count(required_tags.warn) == 0 with input as testing.plan("production", [testing.instance("a", "t3.small")])
}

test_missing_required_tags_are_denied_by_name if {
	r := testing.with_tags(testing.instance("a", "t3.small"), {"customer": "acme"})
	required_tags.deny == {"a: missing required tags environment, managed-by"} with input as testing.plan("production", [r])
}

test_a_tag_naming_another_customer_is_denied if {
	r := testing.with_tags(testing.instance("a", "t3.small"), object.union(testing.tags, {"customer": "globex"}))
	required_tags.deny == {`a: tag customer is "globex", expected "acme"`} with input as testing.plan("production", [r])
}

test_no_cost_center_is_one_warning_for_all_resources if {
	t := object.remove(testing.tags, ["cost-center"])
	rs := [testing.with_tags(testing.instance("a", "t3.small"), t), testing.with_tags(testing.instance("b", "t3.small"), t)]
	required_tags.warn == {"resources have no cost-center tag (add it under tags: in the customer file)"} with input as testing.plan("production", rs)
}

test_resources_without_tags_are_not_judged if {
	assoc := {"address": "x", "type": "route_table_association", "action": "create", "before": null, "after": {"tags": null}}
	count(required_tags.deny) == 0 with input as testing.plan("production", [assoc])
}
