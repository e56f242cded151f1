"""Policy and cost for one customer's stacks: preview → plan document → cost estimate → policy decisions.

What ``engine policy eval`` and ``engine cost`` run, and the gate ``preview``/``up`` pass every plan through after
planning and before applying (``Gate``: a deny blocks the environment, nothing is applied).  The provider's policies
and prices come from the catalog's ``policy/`` when it has them (an installed engine serving the provider's
repository), else from the engine checkout's.  The gate runs only for a catalog with policies of its own
(``policy/*.rego``); costs are attached to every plan that has a document.
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
    """The budget of ``tenant``'s ``environment``: the tenant record's ``max_monthly_cost`` (one number, or per
    environment), lowered — never raised — by the customer file's (the environment's, else the file's)."""
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
        if result.status not in (Status.SUCCEEDED, Status.BLOCKED) or (result.status == Status.BLOCKED and result.plan is None):
            item.problem = f"the preview {result.status}" + (f": {result.error}" if result.error else "")
        elif result.plan is None:
            item.problem = f"the {result.tool} runner gave no plan document for this preview"
        else:
            item.document = PlanDocument(**{**result.plan.__dict__, "properties": properties})
            item.estimate, item.decisions = assess(item.document, sources, item.budget, decide=decide)
        out.append(item)
    return out


@dataclass(frozen=True)
class Verdict:
    """What the gate decided about one plan: blocked (a deny), and the JSON-safe summaries kept on the result."""

    blocked: bool
    policy: dict | None
    cost: dict | None

    @property
    def reason(self) -> str:
        denies = [d["message"] for d in (self.policy or {}).get("decisions", []) if d["level"] == "deny"]
        return "blocked by policy: " + "; ".join(denies)

    def apply(self, result: StackResult) -> StackResult:
        """Record the verdict on ``result``; a deny makes it BLOCKED (the caller applies nothing)."""
        result.policy, result.cost = self.policy, self.cost
        if self.blocked:
            result.status, result.error = Status.BLOCKED, self.reason
        return result


class Gate:
    """Cost and (with the catalog's own policies) the policy decisions of one stack's plan, between plan and apply."""

    def __init__(self, sources: Sources, tenant: Tenant, environment: str, decide: bool):
        self.sources, self.tenant, self.environment, self.decide = sources, tenant, environment, decide

    def __call__(self, document: PlanDocument) -> Verdict:
        document = PlanDocument(**{**document.__dict__, "properties": self.tenant.record.properties.model_dump()})
        estimate, decisions = assess(document, self.sources, budget_for(self.tenant, self.environment), decide=self.decide)
        return Verdict(blocked=bool(decisions and decisions.denied), policy=decisions.to_dict() if decisions else None,
                       cost=estimate.summary())


def gate_for(catalog_root: Path, tenant: Tenant, environment: str) -> Gate:
    """The gate of one stack: costs always, decisions when the catalog has policies of its own."""
    own = Path(catalog_root) / "policy"
    return Gate(Sources.for_catalog(catalog_root), tenant, environment, decide=any(own.glob("*.rego")))


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
