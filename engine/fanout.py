"""Fleet fan-out: one operation over many customers, a bounded number at a time.

Each customer runs in its own ``engine`` process (its environments in order, so a
failed staging still stops its production): Pulumi's inline programs keep global state
in the Python process, and its workspace files race when shared (pulumi#6052, #8186), so a
process per customer — each stack with its own work dir — is the safe unit.  Tools are
resolved once in the parent before anything starts, so children never race on installs.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from engine import process
from engine.catalog import Catalog
from engine.clouds import terraform_module
from engine.planning import select_tool



@dataclass
class CustomerRun:
    customer: str
    exit_code: int
    result: dict | None  # the child's --json result
    error: str | None = None
    duration_s: float = 0.0

    @property
    def stacks(self) -> list[dict]:
        return list((self.result or {}).get("environments", {}).values())


@dataclass
class FleetResult:
    operation: str
    parallel: int
    runs: list[CustomerRun] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def exit_code(self) -> int:
        codes = {r.exit_code for r in self.runs}
        if codes <= {0}:
            return 0
        return next((c for c in (2, 4) if codes <= {0, c} and c in codes), 1)  # all bad input: 2; only policy blocks: 4; else 1

    def to_dict(self) -> dict:
        stacks = [s for r in self.runs for s in r.stacks]
        summary = {"customers": len(self.runs), "stacks": len(stacks),
                   "succeeded": sum(1 for s in stacks if s["status"] == "succeeded"),
                   "failed": sum(1 for s in stacks if s["status"] == "failed") + sum(1 for r in self.runs if r.result is None),
                   "skipped": sum(1 for s in stacks if s["status"] == "skipped"),
                   "blocked": sum(1 for s in stacks if s["status"] == "blocked")}
        return {"operation": self.operation, "ok": self.exit_code == 0, "parallel": self.parallel,
                "duration_s": round(self.duration_s, 2), "summary": summary,
                "customers": {r.customer: (r.result or {"ok": False, "error": r.error, "exit_code": r.exit_code}) for r in self.runs}}


def _in_module(path: str, target: str) -> bool:
    """Whether ``path`` is part of the Terraform module ``target``'s stacks run (``engine/clouds.py``)."""
    module = terraform_module(target)
    if module == ".":  # the AWS module is terraform/'s own files; its folders are the other targets' modules
        return path.startswith("terraform/") and "/" not in path[len("terraform/"):]
    return path.startswith((f"terraform/{module}/", *(("terraform/provider/",) if target == "local" else ())))


def changed_customers(catalog: Catalog, paths: list[str]) -> list[str]:
    """Customers affected by changed files: their tenant record, their customer file, or a
    provider program/module that their stacks use (a program change affects every customer on it)."""
    records = catalog.all_records()
    affected: set[str] = set()
    for raw in paths:
        path = raw.strip().lstrip("./")
        if not path:
            continue
        for record in records:
            source = f"{record.source}/" if record.source else None
            tool = select_tool(record)
            if (path == f"stacks/{record.customer}.yml"
                    or (source and path.startswith(source))
                    or (tool == "pulumi" and path.startswith(f"programs/{record.target}/"))
                    or (tool == "terraform" and _in_module(path, record.target))
                    or ("ansible" in record.properties.infrastructure_tools and path.startswith("ansible/"))):
                affected.add(record.customer)
    return sorted(affected)


def run_worker(args: list[str], settings: Mapping[str, str], cwd: Path) -> "CustomerRun":
    """One ``engine ARGS --json --quiet`` worker process with the engine's environment plus ``settings``.

    The worker's JSON result, or the reason there is none (its last line on stderr)."""
    t0 = time.monotonic()
    env = process.engine_env(settings, drop=("ENGINE_PROGRESS",))
    proc = process.run([sys.executable, "-m", "cli", *args, "--json", "--quiet"], env=env, cwd=cwd, own_group=False)
    try:
        result = json.loads(proc.stdout) if proc.stdout.strip() else None
    except ValueError:
        result = None
    error = None
    if result is None or "environments" not in result:
        error = (result or {}).get("message") or (proc.stderr.strip().splitlines() or ["no output"])[-1]
        result = None
    return CustomerRun(args[1] if len(args) > 1 else "", proc.returncode, result, error, time.monotonic() - t0)


def run_fleet(customers: list[str], operation: str, *, parallel: int, extra_args: list[str], settings: Mapping[str, str],
              cwd: Path, progress: Callable[[int, "CustomerRun"], None] = lambda _n, _r: None) -> FleetResult:
    """Run ``engine OPERATION CUSTOMER --json`` for every customer, ``parallel`` at a time.

    Each worker gets the engine's environment plus ``settings``; ``progress(done, run)`` is
    called as each customer finishes.
    """
    started = time.monotonic()
    done = [0]
    lock = threading.Lock()

    def one(customer: str) -> CustomerRun:
        run = run_worker([operation, customer, *extra_args], settings, cwd)
        with lock:
            done[0] += 1
            progress(done[0], run)
        return run

    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="fleet") as pool:
        runs = list(pool.map(one, customers))
    return FleetResult(operation=operation, parallel=parallel, runs=runs, duration_s=time.monotonic() - started)


def matrix(catalog_targets: list[tuple[str, str, str]]) -> dict:
    """A GitHub Actions job matrix: one job per customer × environment."""
    return {"include": [{"customer": c, "environment": e, "tool": t} for c, e, t in catalog_targets]}


# Environments whose GitHub deployment is a production one (and whose GitHub environment must have reviewers).
PRODUCTION_ENVIRONMENTS = ("production", "prod")


MATRIX_LIMIT = 256  # GitHub runs at most 256 jobs from one matrix


def waves(catalog_targets: list[tuple[str, str, str]], max_jobs: int = MATRIX_LIMIT) -> dict:
    """The job matrix cut into waves for a rollout across runners: wave *i* holds every customer's *i*-th
    environment (file order), so each customer's staging is applied a whole wave before its production.
    A wave bigger than ``max_jobs`` (GitHub's matrix limit) becomes several consecutive waves.

    Each entry names the environment it must wait for (``after``, empty for a customer's first) and whether
    it is a production environment.  ``{"count": N, "waves": [{"include": [...]}, ...]}``.
    """
    by_position: list[list[dict]] = []
    previous: dict[str, str] = {}
    seen: dict[str, int] = {}
    for customer, environment, tool in catalog_targets:
        position = seen[customer] = seen.get(customer, -1) + 1
        while len(by_position) <= position:
            by_position.append([])
        by_position[position].append({"customer": customer, "environment": environment, "tool": tool,
                                      "after": previous.get(customer, ""), "production": environment in PRODUCTION_ENVIRONMENTS})
        previous[customer] = environment
    out = [{"include": entries[i:i + max_jobs]} for entries in by_position for i in range(0, len(entries), max_jobs)]
    return {"count": len(out), "waves": out}


def result_file(customer: str, environment: str) -> str:
    """The file a rollout job writes its ``--json`` result to (``_`` is in no customer id or environment name)."""
    return f"{customer}_{environment}.json"


def stack_results(results_dir: Path) -> dict[tuple[str, str], dict]:
    """The per-stack results a rollout's jobs left in ``results_dir`` (``result_file`` names), by (customer, environment).

    A file holding an engine error instead of a result (bad input, a crash) becomes a failed stack with its message;
    an unreadable one too.
    """
    found: dict[tuple[str, str], dict] = {}
    for path in sorted(results_dir.glob("*_*.json")) if results_dir.is_dir() else []:
        customer, _, environment = path.stem.partition("_")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            data = {"ok": False, "message": f"unreadable result {path.name}: {type(exc).__name__}"}
        stack = ((data.get("environments") or {}).get(environment) if isinstance(data, dict) else None)
        if not isinstance(stack, dict) or stack.get("customer") != customer:
            message = data.get("message") if isinstance(data, dict) else None
            stack = {"customer": customer, "environment": environment, "stack": f"{customer}/{environment}", "tool": "-",
                     "operation": "up", "status": "failed", "changes": dict.fromkeys(("create", "update", "delete", "replace", "same"), 0),
                     "outputs": {}, "resources": [], "error": str(message or "the job printed no result"), "duration_s": 0.0, "details": {}}
        found[(customer, environment)] = stack
    return found


NO_RESULT = ("no result: its job did not finish (cancelled, its approval was rejected or timed out, "
             "or it failed before the engine ran); see the workflow run")


def fleet_from_results(operation: str, expected: list[tuple[str, str, str]], results: dict[tuple[str, str], dict],
                       parallel: int = 0) -> FleetResult:
    """One ``FleetResult`` from per-stack results (one job per customer × environment), in ``expected``'s order.

    A stack of ``expected`` without a result is failed with ``NO_RESULT``: the rollout did not complete there.
    """
    runs: dict[str, CustomerRun] = {}
    for customer, environment, tool in expected:
        stack = results.get((customer, environment)) or {
            "customer": customer, "environment": environment, "stack": f"{customer}/{environment}", "tool": tool, "operation": operation,
            "status": "failed", "changes": dict.fromkeys(("create", "update", "delete", "replace", "same"), 0), "outputs": {},
            "resources": [], "error": NO_RESULT, "duration_s": 0.0, "details": {}}
        run = runs.setdefault(customer, CustomerRun(customer, 0, {"customer": customer, "operation": operation, "ok": True, "environments": {}}))
        run.result["environments"][environment] = stack  # type: ignore[index]
        run.duration_s += float(stack.get("duration_s") or 0)
        if stack["status"] == "failed":
            run.exit_code = 1
            run.result["ok"] = False  # type: ignore[index]
        elif stack["status"] == "blocked":
            run.exit_code = run.exit_code or 4
            run.result["ok"] = False  # type: ignore[index]
        elif stack["status"] == "skipped":
            run.result["ok"] = False  # type: ignore[index]
    return FleetResult(operation=operation, parallel=parallel, runs=list(runs.values()),
                       duration_s=sum(r.duration_s for r in runs.values()))
