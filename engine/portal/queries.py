"""Every read the portal makes.  A page and its ``/api`` route call the same function here.

Sources: the run history (``HistoryStore.select``: one SQL text for SQLite and PostgreSQL), the tenant catalog
and the fleet's desired state (environments and monthly cost, read in the background every few minutes: planning
a thousand customers takes seconds, a page must not wait for it), and stack outputs read through the runners
(masked by them: a secret value never reaches the portal; kept a minute; never stored).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from engine.history import COLUMNS, HistoryStore, read_details, to_public
from engine.portal import sla

DEPLOY_OPERATIONS = ("up", "destroy", "remediate")
RUN_OPERATIONS = ("up", "preview", "refresh", "destroy", "outputs", "drift", "remediate", "compliance")
USAGE_WEEKS = 4
OUTPUTS_TTL_S = 60.0
SELECT_RUNS = f"SELECT id, {', '.join(COLUMNS)} FROM runs"


def _in(values: tuple[str, ...]) -> str:  # noqa: D103
    return "(" + ", ".join("?" for _ in values) + ")"


def _latest(kind: str, customer: str | None) -> tuple[str, tuple]:
    """Each stack's latest run of ``kind`` (``engine/history.py`` keeps the pointers on every insert): read by key."""
    text = (f"SELECT {', '.join('r.' + c for c in ('id', *COLUMNS))} FROM latest_runs l JOIN runs r ON r.id = l.run_id "
            "WHERE l.kind = ?" + (" AND l.customer = ?" if customer else ""))
    return text, (kind, customer) if customer else (kind,)


@dataclass(frozen=True)
class TenantInfo:
    customer: str
    display_name: str | None
    repository: str
    environments: tuple[str, ...] = ()  # from the customer file when it is local; else what the history has seen
    monthly_cost: float | None = None  # desired state, policy/pricing.yml; None: not known
    cost_complete: bool = False


@dataclass
class Tenants:
    """The catalog as last read: who the customers are, their environments and cost."""

    by_id: dict[str, TenantInfo] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    currency: str = "USD"
    read_at: float = 0.0  # time.time(); 0: not read yet
    cost_read_at: float = 0.0

    def repository_owner(self) -> dict[str, str]:
        """repository (lower case) -> customer."""
        return {t.repository.lower(): t.customer for t in self.by_id.values()}


class TenantSource:
    """Reads the tenant catalog (fast, at start and when asked) and the desired state (slow, in the background)."""

    def __init__(self, catalog_root: Path, home_root: Path, refresh_s: float = 300.0, background: bool = True):
        self.catalog_root = Path(catalog_root)
        self.home_root = Path(home_root)
        self.refresh_s = refresh_s
        self._tenants = Tenants()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.read_catalog()
        if background:
            self._thread = threading.Thread(target=self._loop, name="portal-desired-state", daemon=True)
            self._thread.start()

    @property
    def tenants(self) -> Tenants:
        return self._tenants

    def read_catalog(self) -> Tenants:
        """Tenant records only: ids, names, repositories (the desired state's environments and cost kept)."""
        from engine.catalog import Catalog

        catalog = Catalog(self.catalog_root)
        old = self._tenants.by_id
        by_id, errors = {}, {}
        for customer in catalog.customer_ids():
            try:
                record = catalog.record(customer)
            except Exception as exc:  # noqa: BLE001 - one bad record must not hide the fleet
                errors[customer] = getattr(exc, "message", str(exc)).splitlines()[0][:300]
                continue
            known = old.get(customer)
            by_id[customer] = TenantInfo(customer, record.display_name, record.repository,
                                         known.environments if known else (), known.monthly_cost if known else None,
                                         known.cost_complete if known else False)
        with self._lock:
            self._tenants = Tenants(by_id, errors, self._tenants.currency, time.time(), self._tenants.cost_read_at)
        return self._tenants

    def read_desired_state(self) -> Tenants:
        """Environments and monthly cost of every customer whose customer file is local (no tool runs)."""
        from engine.catalog import Catalog
        from engine.governance import Sources, fleet_cost
        from engine.home import EngineHome
        from engine.operations import Engine, unsupported_tool

        catalog = Catalog(self.catalog_root)
        engine = Engine(catalog=catalog, home=EngineHome(self.home_root), runners=unsupported_tool)
        tenants = self.read_catalog()
        try:
            fleet = fleet_cost(engine, sorted(tenants.by_id), Sources.for_catalog(self.catalog_root))
        except Exception as exc:  # noqa: BLE001 - cost is "where known": the portal serves without it
            with self._lock:
                self._tenants.errors["*"] = f"desired state not read: {getattr(exc, 'message', exc)}"
            return self._tenants
        by_id = dict(tenants.by_id)
        for customer, envs in fleet.customers.items():
            if customer in by_id:
                info = by_id[customer]
                by_id[customer] = TenantInfo(customer, info.display_name, info.repository, tuple(envs),
                                             round(sum(e.monthly_after for e in envs.values()), 2), all(e.complete for e in envs.values()))
        currency = next((e.currency for envs in fleet.customers.values() for e in envs.values()), "USD")
        with self._lock:
            self._tenants = Tenants(by_id, {**tenants.errors}, currency, tenants.read_at, time.time())
        return self._tenants

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.read_desired_state()
            except Exception:  # noqa: BLE001 - the next round tries again
                pass
            self._stop.wait(self.refresh_s)

    def close(self) -> None:
        self._stop.set()


# -- history reads ----------------------------------------------------------------------------------


def _public(rows: list[dict]) -> list[dict]:
    return [to_public(r) for r in rows]


def latest_deploys(store: HistoryStore, customer: str | None = None) -> dict[tuple[str, str], dict]:
    """The last deployment of each stack that ran (up, destroy or remediate; succeeded or failed: a skipped one never started)."""
    return {(r["customer"], r["environment"]): r for r in _public(store.select(*_latest("deploy", customer)))}


def latest_drift(store: HistoryStore, customer: str | None = None) -> dict[tuple[str, str], dict]:
    return {(r["customer"], r["environment"]): r for r in _public(store.select(*_latest("drift", customer)))}


def latest_compliance(store: HistoryStore, customer: str | None = None) -> dict[str, dict]:
    return {r["customer"]: r for r in _public(store.select(*_latest("compliance", customer)))}


def resources_managed(store: HistoryStore, customer: str | None = None) -> dict[tuple[str, str], int]:
    """Resources per stack as its last successful deployment counted them (0 after a destroy)."""
    text = ("SELECT l.customer, l.environment, r.operation, r.create_count + r.update_count + r.replace_count + r.same_count AS n "
            "FROM latest_runs l JOIN runs r ON r.id = l.run_id WHERE l.kind = ?" + (" AND l.customer = ?" if customer else ""))
    rows = store.select(text, ("deployed", customer) if customer else ("deployed",))
    return {(r["customer"], r["environment"]): (0 if r["operation"] == "destroy" else int(r["n"] or 0)) for r in rows}


def deploy_counts(store: HistoryStore, since: dt.datetime, customer: str | None = None) -> dict[str, int]:
    """Deployments (``up`` that ran: succeeded or failed) started since ``since``, per customer."""
    extra, params = (" AND customer = ?", (customer,)) if customer else ("", ())
    rows = store.select("SELECT customer, COUNT(*) AS n FROM runs WHERE operation = ? AND status IN (?, ?) AND started_at >= ?" + extra +
                        " GROUP BY customer", ("up", "succeeded", "failed", _iso(since), *params))
    return {r["customer"]: int(r["n"]) for r in rows}


def _iso(moment: dt.datetime) -> str:
    from engine.history import utc_iso

    return utc_iso(moment)


STATE_ORDER = {"failing": 0, "drifted": 1, "error": 2, "never-deployed": 3, "destroyed": 4, "ok": 5}


def stack_state(deploy: dict | None, drift: dict | None) -> str:
    if deploy is not None and deploy["status"] == "failed":
        return "failing"
    if drift is not None and drift["status"] == "drifted":
        return "drifted"
    if drift is not None and drift["status"] == "error":
        return "error"
    if deploy is None:
        return "never-deployed"
    if deploy["operation"] == "destroy":
        return "destroyed"
    return "ok"


def _stack(customer: str, environment: str, deploy: dict | None, drift: dict | None, resources: int | None) -> dict:
    return {"customer": customer, "environment": environment, "state": stack_state(deploy, drift),
            "last_deploy": _run_summary(deploy), "drift": None if drift is None else
            {"status": drift["status"], "checked_at": drift["finished_at"], "resources": drift["details"].get("resources", [])},
            "resources": resources}


def _run_summary(row: dict | None) -> dict | None:
    if row is None:
        return None
    return {k: row.get(k) for k in ("id", "operation", "status", "started_at", "finished_at", "actor", "sha", "committed_at",
                                     "duration_s", "changes", "error", "run_url", "tool")}


FLEET_COLUMNS = ("id", "operation", "status", "started_at", "finished_at", "actor", "sha", "committed_at", "duration_s", "error",
                 "run_url", "tool", "create_count", "update_count", "delete_count", "replace_count", "same_count")
FLEET_STATES = "SELECT customer, environment, kind, operation, status FROM latest_runs WHERE kind IN (?, ?)"
FLEET_READ = (f"SELECT l.customer, l.environment, l.kind, {', '.join('r.' + c for c in FLEET_COLUMNS)} "
              "FROM latest_runs l JOIN runs r ON r.id = l.run_id WHERE l.kind IN (?, ?, ?)")


def _fleet_run(row: dict) -> dict:
    out = {c: row[c] for c in FLEET_COLUMNS[:12]}
    out["duration_s"] = round(float(out["duration_s"] or 0), 2)
    out["changes"] = {k: int(row[f"{k}_count"] or 0) for k in ("create", "update", "delete", "replace", "same")}
    return out


def fleet(store: HistoryStore, tenants: Tenants, now: dt.datetime | None = None, state: str | None = None, offset: int = 0,
          limit: int | None = None) -> dict:
    """Customers × environments, failing and drifted first (``state``: only customers in that state), per customer its usage;
    ``offset``/``limit`` pick a page — only that page's stacks are built (a fleet is thousands of stacks)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    latest: dict[tuple[str, str], dict[str, dict]] = {}  # every stack: its state only (operation and status of its latest runs)
    for row in store.select(FLEET_STATES, ("deploy", "drift")):
        latest.setdefault((row["customer"], row["environment"]), {})[row["kind"]] = row
    counts = deploy_counts(store, now - dt.timedelta(weeks=USAGE_WEEKS))
    envs: dict[str, list[str]] = {c: list(info.environments) for c, info in tenants.by_id.items()}
    for customer, env in sorted(latest):
        if customer in envs and env not in envs[customer]:
            envs[customer].append(env)
    order: list[tuple[int, str]] = []
    totals = dict.fromkeys(STATE_ORDER, 0)
    states: dict[tuple[str, str], str] = {}
    for customer, names in envs.items():
        worst = STATE_ORDER["never-deployed"] if not names else len(STATE_ORDER)
        for env in names:
            kinds = latest.get((customer, env), {})
            st = stack_state(kinds.get("deploy"), kinds.get("drift"))
            states[(customer, env)] = st
            totals[st] += 1
            worst = min(worst, STATE_ORDER[st])
        order.append((worst, customer))
    order.sort()
    names_by_rank = {v: k for k, v in STATE_ORDER.items()}
    picked = [(rank, c) for rank, c in order if state is None or names_by_rank[rank] == state]
    page = picked[offset: None if limit is None else offset + limit]
    full: dict[tuple[str, str], dict[str, dict]] = {}  # the page's stacks: their latest runs in full
    for chunk in range(0, len(page), 500):
        names = tuple(c for _rank, c in page[chunk: chunk + 500])
        for row in store.select(FLEET_READ + f" AND l.customer IN {_in(names)}", ("deploy", "drift", "deployed", *names)):
            full.setdefault((row["customer"], row["environment"]), {})[row["kind"]] = row
    customers = []
    for rank, customer in page:
        info = tenants.by_id[customer]
        rows = []
        for env in envs[customer]:
            kinds = full.get((customer, env), {})
            deploy, drift, deployed = kinds.get("deploy"), kinds.get("drift"), kinds.get("deployed")
            resources = None if deployed is None else (0 if deployed["operation"] == "destroy" else
                                                        sum(int(deployed[f"{k}_count"] or 0) for k in ("create", "update", "replace", "same")))
            rows.append({"customer": customer, "environment": env, "state": states[(customer, env)],
                         "last_deploy": None if deploy is None else _fleet_run(deploy),
                         "drift": None if drift is None else {"status": drift["status"], "checked_at": drift["finished_at"]},
                         "resources": resources})
        customers.append({"customer": customer, "display_name": info.display_name, "repository": info.repository,
                          "state": names_by_rank[rank], "environments": rows, "usage": _usage(info, rows, counts.get(customer, 0))})
    return {"generated_at": _iso(now), "currency": tenants.currency, "stacks": totals, "total": len(picked), "offset": offset,
            "customers": customers, "catalog_errors": tenants.errors,
            "cost_read_at": _iso(dt.datetime.fromtimestamp(tenants.cost_read_at, dt.timezone.utc)) if tenants.cost_read_at else None}


def _usage(info: TenantInfo, stacks: list[dict], deploys: int) -> dict:
    known = [s["resources"] for s in stacks if s["resources"] is not None]
    return {"deploys_per_week": round(deploys / USAGE_WEEKS, 2), "deploys_last_weeks": USAGE_WEEKS,
            "resources": sum(known) if known else None, "monthly_cost": info.monthly_cost, "cost_complete": info.cost_complete}


def customer(store: HistoryStore, tenants: Tenants, customer_id: str, now: dt.datetime | None = None) -> dict:
    """One customer: stacks per environment, open drift (since when), compliance findings, usage."""
    now = now or dt.datetime.now(dt.timezone.utc)
    info = tenants.by_id[customer_id]
    deploys, drifts = latest_deploys(store, customer_id), latest_drift(store, customer_id)
    resources = resources_managed(store, customer_id)
    envs = list(info.environments) + sorted({e for (_c, e) in set(deploys) | set(drifts)} - set(info.environments))
    stacks = [_stack(customer_id, env, deploys.get((customer_id, env)), drifts.get((customer_id, env)), resources.get((customer_id, env)))
              for env in envs]
    open_drift = [{"environment": s["environment"], "since": drift_since(store, customer_id, s["environment"]) or s["drift"]["checked_at"],
                   "checked_at": s["drift"]["checked_at"], "resources": s["drift"]["resources"]}
                  for s in stacks if s["drift"] and s["drift"]["status"] == "drifted"]
    compliance = latest_compliance(store, customer_id).get(customer_id)
    counts = deploy_counts(store, now - dt.timedelta(weeks=USAGE_WEEKS), customer_id)
    return {"customer": customer_id, "display_name": info.display_name, "repository": info.repository, "stacks": stacks,
            "open_drift": open_drift, "compliance": None if compliance is None else
            {"status": compliance["status"], "checked_at": compliance["finished_at"], "error": compliance["error"],
             "findings": compliance["details"].get("findings", [])},
            "usage": _usage(info, stacks, counts.get(customer_id, 0)), "currency": tenants.currency}


def drift_since(store: HistoryStore, customer_id: str, environment: str) -> str | None:
    """When the stack's current drift was first detected: the oldest scan of the latest run of ``drifted`` scans."""
    rows = store.select("SELECT status, finished_at FROM runs WHERE operation = ? AND customer = ? AND environment = ? "
                        "ORDER BY id DESC LIMIT 500", ("drift", customer_id, environment))
    since = None
    for row in rows:
        if row["status"] != "drifted":
            break
        since = row["finished_at"]
    return since


@dataclass(frozen=True)
class RunFilter:
    environment: str | None = None
    operation: str | None = None
    status: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def runs(store: HistoryStore, customer_id: str, flt: RunFilter, limit: int = 50, offset: int = 0) -> list[dict]:
    """The customer's runs, newest first, filtered."""
    conditions, params = ["customer = ?"], [customer_id]
    for column, value in (("environment", flt.environment), ("operation", flt.operation), ("status", flt.status)):
        if value:
            conditions.append(f"{column} = ?")
            params.append(value)
    if flt.since:
        conditions.append("started_at >= ?")
        params.append(_iso(flt.since))
    if flt.until:
        conditions.append("started_at < ?")
        params.append(_iso(flt.until))
    text = f"{SELECT_RUNS} WHERE {' AND '.join(conditions)} ORDER BY started_at DESC, id DESC LIMIT ? OFFSET ?"
    return _public(store.select(text, (*params, int(limit), int(offset))))


def run(store: HistoryStore, run_id: int) -> dict | None:
    rows = store.select(f"{SELECT_RUNS} WHERE id = ?", (int(run_id),))
    return _public(rows)[0] if rows else None


def stack_runs(store: HistoryStore, customer_id: str, environment: str, limit: int = 20) -> list[dict]:
    return runs(store, customer_id, RunFilter(environment=environment), limit)


def sla_rows(store: HistoryStore, period: sla.Period, customers: list[str] | None) -> list[dict]:
    """The period's deployments and drift scans, plus each stack's last one of each before the period (within
    LOOKBACK_DAYS): whether a stack was failing or drifted when the period began.  ``customers``: None for all."""
    if customers is not None and not customers:
        return []
    columns = "id, customer, environment, operation, status, finished_at, committed_at"
    relevant = "((operation = ? AND status IN (?, ?)) OR operation = ?)"
    who, names = ("", ()) if customers is None else (f" AND customer IN {_in(tuple(customers))}", tuple(customers))
    kinds = (sla.DEPLOY, "succeeded", "failed", sla.DRIFT)
    during = store.select(f"SELECT {columns} FROM runs WHERE {relevant} AND started_at >= ? AND started_at < ?{who}",
                          (*kinds, _iso(period.start), _iso(period.end), *names))
    before = store.select(f"SELECT {columns} FROM runs WHERE id IN (SELECT MAX(id) FROM runs WHERE {relevant} AND started_at >= ? "
                          f"AND started_at < ?{who} GROUP BY customer, environment, operation)",
                          (*kinds, _iso(period.start - dt.timedelta(days=sla.LOOKBACK_DAYS)), _iso(period.start), *names))
    return before + during


def usage(store: HistoryStore, tenants: Tenants, customers: list[str], now: dt.datetime | None = None) -> dict:
    data = fleet(store, Tenants({c: tenants.by_id[c] for c in customers if c in tenants.by_id}, {}, tenants.currency,
                                tenants.read_at, tenants.cost_read_at), now)
    return {"currency": data["currency"], "weeks": USAGE_WEEKS, "customers": [{"customer": c["customer"], "display_name": c["display_name"],
                                                                              "environments": len(c["environments"]), **c["usage"]}
                                                                             for c in sorted(data["customers"], key=lambda c: c["customer"])]}


# -- outputs, through the runners -------------------------------------------------------------------

OutputsReader = Callable[[str, str], dict]


class OutputsCache:
    """Stack outputs as the runner reads them (secrets already masked), kept ``ttl`` seconds, never written anywhere."""

    def __init__(self, read: OutputsReader, ttl: float = OUTPUTS_TTL_S):
        self._read = read
        self._ttl = ttl
        self._entries: dict[tuple[str, str], tuple[float, dict]] = {}
        self._lock = threading.Lock()

    def get(self, customer_id: str, environment: str) -> dict:
        key = (customer_id, environment)
        with self._lock:
            hit = self._entries.get(key)
        if hit and time.monotonic() - hit[0] < self._ttl:
            return hit[1]
        value = self._read(customer_id, environment)
        with self._lock:
            self._entries[key] = (time.monotonic(), value)
        return value


def engine_outputs(catalog_root: Path, home_root: Path) -> OutputsReader:
    """Reads outputs with the engine's runners (the same masking as ``engine outputs``); not recorded in the history."""
    from engine.catalog import Catalog
    from engine.errors import EngineError
    from engine.home import EngineHome
    from engine.operations import Engine
    from engine.results import Operation
    from engine.wiring import Wiring

    wiring = Wiring(catalog_root=Path(catalog_root), home=EngineHome(Path(home_root)))
    lock = threading.Lock()  # one tool command at a time from the portal

    def read(customer_id: str, environment: str) -> dict:
        engine = Engine(catalog=Catalog(wiring.catalog_root), home=wiring.home, runners=wiring.runner, steps=wiring.step,
                        stream=wiring.stream, executor=wiring.executor)
        try:
            with lock:
                result = engine.run(customer_id, Operation.OUTPUTS, [environment])
        except EngineError as exc:
            return {"available": False, "reason": exc.message, "outputs": {}}
        stack = next((s for s in result.stacks if s.environment == environment), None)
        if stack is None:
            return {"available": False, "reason": f"no environment {environment}", "outputs": {}}
        if stack.status != "succeeded":
            return {"available": False, "reason": f"{stack.status}: {stack.error or ''}".strip(": "), "outputs": {}}
        return {"available": True, "reason": None, "outputs": dict(stack.outputs)}

    return read


def details_of(row: dict) -> dict:
    return row.get("details") if isinstance(row.get("details"), dict) else read_details(row.get("details"))
