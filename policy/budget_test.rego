package engine.policy.budget_test

import data.engine.policy.budget
import data.engine.testing

costing(after, cap) := object.union(testing.plan("production", []), {
	"cost": {"currency": "USD", "monthly_before": 0, "monthly_after": after, "monthly_delta": after, "complete": true, "not_priced": []},
	"budget": {"max_monthly_cost": cap},
})

test_no_budget_no_decision if {
	count(budget.deny) == 0 with input as costing(1000000, null)
	count(budget.warn) == 0 with input as costing(1000000, null)
}

test_over_budget_is_denied_with_both_numbers if {
	budget.deny == {"estimated USD 250.50/month after this change exceeds the budget of 200.00/month for production"} with input as costing(250.5, 200)
}

test_close_to_the_budget_is_a_warning if {
	count(budget.deny) == 0 with input as costing(170, 200)
	budget.warn == {"estimated USD 170.00/month is over 80% of the budget of 200.00/month for production"} with input as costing(170, 200)
}

test_within_budget_passes if {
	count(budget.deny) == 0 with input as costing(100, 200)
	count(budget.warn) == 0 with input as costing(100, 200)
}

test_unpriced_resources_weaken_the_check_and_say_so if {
	i := object.union(costing(100, 200), {"cost": object.union(costing(100, 200).cost, {"not_priced": [{"address": "x"}], "complete": false})})
	budget.warn == {"1 resource(s) are not priced, so the budget check counts without them"} with input as i
}
