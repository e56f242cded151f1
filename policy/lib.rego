# Helpers the policies share. Not a policy itself: only packages under engine.policy decide.
package engine.lib

# Resources that exist after the change (created, updated, replaced or unchanged), with their normalized attributes.
planned contains r if {
	some r in input.resources
	r.after != null
}

production if input.environment in {"production", "prod"}

# 1234.5 -> "1234.50", -3.456 -> "-3.46" (sprintf's %f refuses whole numbers, which JSON input often holds).
money(x) := sprintf("%s%d.%02d", [sign, floor(cents / 100), cents % 100]) if {
	sign := {true: "-", false: ""}[x < 0]
	cents := round(abs(x) * 100)
}
