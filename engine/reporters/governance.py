"""Console renderings of policy decisions and cost estimates (``engine policy``, ``engine cost``).

Pure functions of the results.  Addresses, tag values and policy messages can hold customer text, so every piece
goes through ``escape_inline``.
"""

from __future__ import annotations

from engine.cost import CostEstimate
from engine.governance import FleetCost, StackGovernance
from engine.policy import PolicyResult, TestReport
from engine.untrusted import escape_inline, escape_lines


def money(value: float | None, currency: str = "USD", signed: bool = False) -> str:
    if value is None:
        return "not priced"
    text = f"{abs(value):,.2f}"
    sign = ("+" if value > 0 else "-" if value < 0 else "±") if signed else ("-" if value < 0 else "")
    return f"{sign}{currency} {text}" if not signed else f"{sign}{text}"


def render_decisions(result: PolicyResult) -> list[str]:
    if not result.decisions:
        return ["  policy: allowed (no denies, no warnings)"]
    head = f"  policy: {'DENIED' if result.denied else 'allowed'} ({len(result.denies)} deny, {len(result.warnings)} warn)"
    return [head] + [f"    {d.level:<4}  {escape_inline(d.rule)}: {escape_inline(d.message)}" for d in result.decisions]


def render_cost(estimate: CostEstimate, *, lines: bool = True) -> list[str]:
    c = estimate.currency
    out = [f"  cost/month: {money(estimate.monthly_before, c)} -> {money(estimate.monthly_after, c)} "
           f"({money(estimate.monthly_delta, c, signed=True)})  [{escape_inline(estimate.region)} prices as of {escape_inline(estimate.catalog_as_of)}]"]
    if lines:
        for r in estimate.resources:
            if r.priced and not r.monthly_before and not r.monthly_after:
                continue  # free resources: listed in --json
            delta = money(r.monthly_delta, signed=True) if r.priced else escape_inline(r.reason)
            out.append(f"    {r.action:<8} {escape_inline(r.address):<48} {money(r.monthly_after) if r.priced else 'not priced':>12}  {delta}")
    if estimate.not_priced:
        out.append(f"  not priced ({len(estimate.not_priced)}), not in the totals: "
                   + ", ".join(f"{escape_inline(r.address)} ({escape_inline(r.reason)})" for r in estimate.not_priced))
    return out


def render_governance(customer: str, stacks: list[StackGovernance], *, decisions: bool = True) -> str:
    out: list[str] = []
    for item in stacks:
        out.append(f"{escape_inline(customer)}/{escape_inline(item.environment)} ({item.result.tool})")
        if item.problem:
            out.append(f"  no assessment: {escape_inline(item.problem)}")
            continue
        if item.estimate is not None:
            out += render_cost(item.estimate)
        if item.budget.max_monthly_cost is not None:
            out.append(f"  budget: {money(item.budget.max_monthly_cost, item.estimate.currency if item.estimate else 'USD')}/month")
        if decisions and item.decisions is not None:
            out += render_decisions(item.decisions)
    return "\n".join(out)


def render_fleet_cost(fleet: FleetCost) -> str:
    data = fleet.to_dict()
    c = data["currency"]
    out = [f"{'customer':<24} {'environments':<40} {'monthly':>14}"]
    for customer, row in data["customers"].items():
        envs = ", ".join(f"{escape_inline(n)} {v['monthly']:,.2f}" + ("" if v["complete"] else "*") for n, v in row["environments"].items())
        out.append(f"{escape_inline(customer):<24} {envs:<40} {money(row['monthly'], c):>14}")
    out.append(f"{'fleet':<24} {'':<40} {money(data['monthly_total'], c):>14}")
    if any(not row["complete"] for row in data["customers"].values()):
        out.append("* some resources are not priced and not in the total (see --json)")
    for customer, error in data["errors"].items():
        out.append(f"{escape_inline(customer)}: not priced: {escape_inline(error)}")
    out.append("(desired state from the customer files: what they ask for, priced without running a tool)")
    return "\n".join(out)


def render_tests(report: TestReport) -> str:
    if report.ok:
        return f"policy tests: {report.passed} passed"
    failed = [f"  FAIL {escape_inline(t['package'])}.{escape_inline(t['name'])}" for t in report.tests if not t["passed"]]
    return "\n".join([f"policy tests: {report.passed} passed, {report.failed} failed", *failed, "", escape_lines(report.output)])
