"""Policy and cost for one customer's stacks: preview → plan document → cost estimate → policy decisions.

What ``engine policy eval`` and ``engine cost`` run, and what ``preview``/``up`` will run after planning and before
applying (phase 2: the lead wires it into ``engine/operations.py``).  The provider's policies and prices come from
the catalog's ``policy/`` when it has them (an installed engine serving the provider's repository), else from the
engine checkout's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine import cost, policy
from engine.catalog import Tenant
from engine.errors import InputError
from engine.plan_document import PlanDocument, desired_document
from engine.planning import StackTarget
from engine.results import Operation, StackResult, Status


@dataclass(frozen=True)
class Sources:
    """Where the provider's policies and prices are."""

    policy_dir: Path
    pricing: Path

    @classmethod
    def for_catalog(cls, catalog_root: Path) -> "Sources":
        own = Path(catalog_root) / "policy"
        policy_dir = own if any(own.glob("*.rego")) else policy.POLICY_DIR
        pricing = own / "pricing.yml" if (own / "pricing.yml").is_file() else cost.CATALOG
        return cls(policy_dir=policy_dir.resolve(), pricing=pricing.resolve())


@dataclass
class StackGovernance:
    """One customer × environment: its plan document, what it costs, what the policies say."""

    environment: str
    result: StackResult  # the preview that produced the document (status, error)
    document: PlanDocument | None = None
    estimate: cost.CostEstimate | None = None
    budget: policy.Budget = policy.Budget()
    decisions: policy.PolicyResult | None = None
    problem: str | None = None  # why there is no document (the preview failed, the tool gives none yet)

    def to_dict(self, *, with_input: bool = False) -> dict:
        data: dict = {"environment": self.environment, "tool": self.result.tool, "status": str(self.result.status)}
        if self.problem:
            data["problem"] = self.problem
        if self.estimate is not None:
            data["cost"] = self.estimate.to_dict()
        if self.decisions is not None:
            data["policy"] = self.decisions.to_dict()
        if with_input and self.document is not None and self.estimate is not None:
            data["input"] = policy.policy_input(self.document, self.estimate, self.budget)
        return data


def _cap(value: object, environment: str) -> float | None:
    """A budget written as one number, or per environment ({production: 500, "*": 100})."""
    if isinstance(value, dict):
        value = value.get(environment, value.get("*"))
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def budget_for(tenant: Tenant, environment: str) -> policy.Budget:
    """The budget of ``tenant``'s ``environment``: the tenant record's ``max_monthly_cost``, lowered by the customer file's.

    Neither model has the field yet (phase 2: ``TenantRecord.max_monthly_cost`` and ``Environment.max_monthly_cost``);
    until then there is no budget and the budget policy decides nothing.
    """
    provider = _cap(getattr(tenant.record, "max_monthly_cost", None), environment)
    env = tenant.config.environments.get(environment)
    customer = _cap(getattr(env, "max_monthly_cost", None), environment) if env is not None else None
    if customer is None:
        customer = _cap(getattr(tenant.config, "max_monthly_cost", None), environment)
    return policy.Budget(provider_max=provider, customer_max=customer)


def assess(document: PlanDocument, sources: Sources, budget: policy.Budget = policy.Budget(), *, decide: bool = True
           ) -> tuple[cost.CostEstimate, policy.PolicyResult | None]:
    """Cost (and, with ``decide``, the policies' decisions) of one plan document."""
    estimate = cost.estimate(document, cost.load_catalog(sources.pricing))
    decisions = policy.evaluate(document, estimate, budget, sources.policy_dir) if decide else None
    return estimate, decisions


def govern(engine, customer: str, environments: list[str] | None, sources: Sources, *, decide: bool = True) -> list[StackGovernance]:
    """Preview ``customer``'s stacks and assess each plan (read-only: nothing is changed)."""
    tenant = engine.load(customer)
    properties = tenant.record.properties.model_dump()
    run = engine.run(customer, Operation.PREVIEW, environments)
    out: list[StackGovernance] = []
    for result in run.stacks:
        item = StackGovernance(environment=result.environment, result=result, budget=budget_for(tenant, result.environment))
        if result.status != Status.SUCCEEDED:
            item.problem = f"the preview {result.status}" + (f": {result.error}" if result.error else "")
        elif result.plan is None:
            item.problem = f"the {result.tool} runner gave no plan document for this preview"
        else:
            item.document = PlanDocument(**{**result.plan.__dict__, "properties": properties})
            item.estimate, item.decisions = assess(item.document, sources, item.budget, decide=decide)
        out.append(item)
    return out


@dataclass
class FleetCost:
    """The monthly cost of the fleet's desired state, per customer and environment (no tool runs)."""

    customers: dict[str, dict[str, cost.CostEstimate]]
    errors: dict[str, str]

    def to_dict(self) -> dict:
        rows = {}
        for customer, envs in self.customers.items():
            rows[customer] = {"monthly": round(sum(e.monthly_after for e in envs.values()), 2),
                              "complete": all(e.complete for e in envs.values()),
                              "environments": {name: {"tool": e.tool, "target": e.target, "region": e.region, "monthly": round(e.monthly_after, 2),
                                                      "complete": e.complete, "not_priced": [r.address for r in e.not_priced]}
                                               for name, e in envs.items()}}
        total = sum(r["monthly"] for r in rows.values())
        currency = next((e.currency for envs in self.customers.values() for e in envs.values()), "USD")
        return {"currency": currency, "basis": "desired state (plan-targets): what the customer files ask for, no tool run",
                "monthly_total": round(total, 2), "customers": rows, "errors": self.errors}


def fleet_cost(engine, customers: list[str], sources: Sources, environments: list[str] | None = None) -> FleetCost:
    """Price every customer's desired state from its plan targets.  A customer that cannot be planned is listed in ``errors``."""
    catalog = cost.load_catalog(sources.pricing)
    errors: dict[str, str] = {}
    targets: list[StackTarget] = engine.plan_many(customers, environments, on_error=lambda c, exc: errors.__setitem__(c, exc.message))
    out: dict[str, dict[str, cost.CostEstimate]] = {}
    for target in targets:
        out.setdefault(target.customer, {})[target.environment] = cost.estimate(desired_document(target), catalog)
    if not targets and not errors and customers:
        raise InputError("no customer has the selected environments")
    return FleetCost(out, errors)
