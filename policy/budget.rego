# The monthly cost after the change stays within the tenant's budget for the environment
# (input.budget.max_monthly_cost: the provider's cap, or the customer's lower one; null: no budget).
package engine.policy.budget

import data.engine.lib

warn_ratio := 0.8

deny contains msg if {
	cap := input.budget.max_monthly_cost
	cap != null
	input.cost.monthly_after > cap
	msg := sprintf("estimated %s %s/month after this change exceeds the budget of %s/month for %s", [input.cost.currency, lib.money(input.cost.monthly_after), lib.money(cap), input.environment])
}

warn contains msg if {
	cap := input.budget.max_monthly_cost
	cap != null
	input.cost.monthly_after <= cap
	input.cost.monthly_after > cap * warn_ratio
	msg := sprintf("estimated %s %s/month is over %d%% of the budget of %s/month for %s", [input.cost.currency, lib.money(input.cost.monthly_after), round(warn_ratio * 100), lib.money(cap), input.environment])
}

warn contains msg if {
	input.budget.max_monthly_cost != null
	count(input.cost.not_priced) > 0
	msg := sprintf("%d resource(s) are not priced, so the budget check counts without them", [count(input.cost.not_priced)])
}
