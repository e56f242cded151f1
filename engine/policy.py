"""Policy as code: the provider's Rego policies (``policy/*.rego``) decide on every plan document, with real OPA.

The input is the plan document (``engine/plan_document.py``: normalized, secret-free) plus its cost
estimate's totals (``engine/cost.py``) and the budget; the policies are every package under
``engine.policy`` (one package per rule), each with ``deny contains msg if {…}`` and
``warn contains msg if {…}``.  One ``opa eval`` per plan (about 20 ms): a process per evaluation
is well inside the time budget, so no OPA server has to be kept running.

``Decision`` is what a rule said: its package's last name (the rule), its level (deny | warn)
and its message.  A deny blocks the environment; a warn is shown.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine import process
from engine.cost import CostEstimate
from engine.errors import InputError
from engine.plan_document import PlanDocument
from engine.toolchain import Tool

POLICY_DIR = Path(__file__).resolve().parent.parent / "policy"
QUERY = "data.engine.policy"
LEVELS = ("deny", "warn")
TIMEOUT_S = 60.0


class PolicyError(InputError):
    """The provider's policies cannot be evaluated (a syntax or type error, no policies): nothing is decided, nothing runs."""


@dataclass(frozen=True)
class Budget:
    """The monthly budget of one tenant × environment: the provider's cap, lowered (never raised) by the customer's."""

    provider_max: float | None = None  # tenant record: max_monthly_cost
    customer_max: float | None = None  # customer file: the customer's own, lower, cap

    @property
    def max_monthly_cost(self) -> float | None:
        caps = [c for c in (self.provider_max, self.customer_max) if c is not None]
        return min(caps) if caps else None

    def to_dict(self) -> dict:
        return {"max_monthly_cost": self.max_monthly_cost, "provider_max": self.provider_max, "customer_max": self.customer_max}


@dataclass(frozen=True)
class Decision:
    rule: str  # the policy package's last name: instance_types, budget, …
    level: str  # deny | warn
    message: str


@dataclass
class PolicyResult:
    decisions: list[Decision] = field(default_factory=list)

    @property
    def denied(self) -> bool:
        return any(d.level == "deny" for d in self.decisions)

    @property
    def denies(self) -> list[Decision]:
        return [d for d in self.decisions if d.level == "deny"]

    @property
    def warnings(self) -> list[Decision]:
        return [d for d in self.decisions if d.level == "warn"]

    def to_dict(self) -> dict:
        return {"denied": self.denied, "decisions": [asdict(d) for d in self.decisions]}


def policy_input(doc: PlanDocument, estimate: CostEstimate, budget: Budget = Budget()) -> dict:
    """What the policies see: the plan document, the cost totals and the budget (all secret-free)."""
    return {**doc.to_dict(), "cost": estimate.summary(), "budget": budget.to_dict()}


def policy_files(policy_dir: Path = POLICY_DIR, *, tests: bool = False) -> list[Path]:
    """The Rego files of ``policy_dir`` (``*_test.rego`` only with ``tests``).  Data files beside them (pricing.yml,
    properties.yml) are never handed to OPA: they are not the policies' input."""
    files = sorted(p for p in Path(policy_dir).glob("*.rego") if tests or not p.name.endswith("_test.rego"))
    if not files:
        raise PolicyError(f"no policies (*.rego) in {policy_dir}", hint="the provider repository keeps them under policy/")
    return files


def _opa(tool: Tool | None) -> Tool:
    if tool is not None:
        return tool
    from engine import opa

    return opa.ensure()


def evaluate_input(data: dict, policy_dir: Path = POLICY_DIR, tool: Tool | None = None) -> PolicyResult:
    """Every ``deny``/``warn`` the policies in ``policy_dir`` give for ``data`` (a ``policy_input``).

    Raises ``PolicyError`` when OPA cannot evaluate them (the message names file and line).
    """
    args = [str(_opa(tool).executable), "eval", "--format", "json", "--stdin-input"]
    for path in policy_files(policy_dir):
        args += ["--data", str(path)]
    done = process.run([*args, QUERY], env=process.tool_env(), timeout=TIMEOUT_S, input=json.dumps(data, default=str))
    if done.returncode != 0:
        raise PolicyError(f"the policies in {policy_dir} could not be evaluated:\n{_opa_errors(done.stdout or done.stderr)}",
                          hint="run `engine policy test` to see every problem")
    return decisions_from(json.loads(done.stdout))


def evaluate(doc: PlanDocument, estimate: CostEstimate, budget: Budget = Budget(), policy_dir: Path = POLICY_DIR,
             tool: Tool | None = None) -> PolicyResult:
    """The policies' decisions on one plan (see ``evaluate_input``)."""
    return evaluate_input(policy_input(doc, estimate, budget), policy_dir, tool)


def decisions_from(output: dict) -> PolicyResult:
    """Decisions from ``opa eval --format json`` of ``data.engine.policy``, sorted: denies first, then by rule."""
    results = output.get("result") or []
    tree = results[0]["expressions"][0]["value"] if results else {}
    decisions: list[Decision] = []
    for rule, verdicts in sorted((tree or {}).items()):
        if not isinstance(verdicts, dict):
            continue
        for level in LEVELS:
            for message in verdicts.get(level) or []:
                text = message if isinstance(message, str) else json.dumps(message, sort_keys=True)
                decisions.append(Decision(rule=str(rule), level=level, message=text))
    decisions.sort(key=lambda d: (LEVELS.index(d.level), d.rule, d.message))
    return PolicyResult(decisions)


def _opa_errors(text: str) -> str:
    """OPA's errors as ``file:line: message`` lines."""
    try:
        errors = json.loads(text).get("errors") or []
    except (ValueError, AttributeError):
        return text.strip()[-2000:]
    lines = []
    for err in errors:
        where = err.get("location") or {}
        lines.append(f"{where.get('file', '?')}:{where.get('row', '?')}: {err.get('message', err)}")
    return "\n".join(lines) or text.strip()[-2000:]


@dataclass
class TestReport:
    passed: int
    failed: int
    tests: list[dict]
    output: str  # OPA's own report (with the failing tests' traces), for people

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.passed > 0

    def to_dict(self) -> dict:
        return {"ok": self.ok, "passed": self.passed, "failed": self.failed, "tests": self.tests}


def run_tests(policy_dir: Path = POLICY_DIR, tool: Tool | None = None) -> TestReport:
    """``opa test`` over the policies and their ``*_test.rego`` files.  Raises ``PolicyError`` when they do not compile."""
    opa = str(_opa(tool).executable)
    files = [str(p) for p in policy_files(policy_dir, tests=True)]
    as_json = process.run([opa, "test", "--format", "json", *files], env=process.tool_env(), timeout=TIMEOUT_S)
    try:
        results = json.loads(as_json.stdout)
    except ValueError:
        raise PolicyError(f"the policies in {policy_dir} could not be tested:\n{_opa_errors(as_json.stdout or as_json.stderr)}") from None
    if isinstance(results, dict):  # compile errors come back as {"errors": […]}
        raise PolicyError(f"the policies in {policy_dir} could not be tested:\n{_opa_errors(as_json.stdout)}")
    tests = [{"package": r.get("package", "").removeprefix("data."), "name": r.get("name"), "passed": not r.get("fail") and not r.get("error"),
              "duration_ms": round((r.get("duration") or 0) / 1e6, 2)} for r in results]
    text = process.run([opa, "test", "-v", *files], env=process.tool_env(), timeout=TIMEOUT_S).stdout if any(not t["passed"] for t in tests) else ""
    passed = sum(t["passed"] for t in tests)
    return TestReport(passed=passed, failed=len(tests) - passed, tests=tests, output=text)
