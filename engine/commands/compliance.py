"""``engine compliance``: every customer repository's custom properties against the policy (and a source of truth).

Exit 0 compliant, 3 property drift, 1 errors.
"""

from __future__ import annotations

from pathlib import Path

from engine import compliance as comp
from engine.commands import Outcome
from engine.reporters.compliance import render_console
from engine.wiring import Wiring


def run(w: Wiring, policy_path: Path | None, source: str | None, remediate: bool, dry_run: bool) -> Outcome:
    engine = w.engine()
    policy = comp.Policy.load(policy_path or engine.catalog.root / "policy" / "properties.yml")
    truth = comp.load_source(source) if source else None
    tenants = [(r.customer, r.repository) for r in engine.catalog.all_records()]
    report = comp.scan(w.github(dry_run=dry_run), tenants, policy, truth, remediate, w.home.root / "audit" / "compliance.jsonl")
    return Outcome(report.to_dict(), lambda: render_console(report), report.exit_code)
