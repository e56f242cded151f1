"""``engine compliance``: every customer repository's custom properties against the policy (and a source of truth).

Exit 0 compliant, 3 property drift, 1 errors.
"""

from __future__ import annotations

from pathlib import Path

from engine import compliance as comp
from engine.commands import Outcome
from engine.reporters.compliance import render_console
from engine.reporters.dry_run import render_compliance as render_dry_run
from engine.stream import ComplianceViolation
from engine.wiring import Wiring
from engine.commands.options import DRY_RUN, FILE, JSON, Verb, opt


def run(w: Wiring, policy_path: Path | None, source: str | None, remediate: bool, dry_run: bool) -> Outcome:
    w.dry_run = dry_run  # nothing is written: GitHub writes are listed, notifications printed instead of sent
    engine = w.engine()
    policy = comp.Policy.load(policy_path or engine.catalog.root / "policy" / "properties.yml")
    truth = comp.load_source(source) if source else None
    tenants = [(r.customer, r.repository) for r in engine.catalog.all_records()]
    audit_log = w.home.root / "audit" / "compliance.jsonl"
    report = comp.scan(w.github(dry_run=dry_run), tenants, policy, truth, remediate, audit_log)
    for repo in report.repos:  # notifications (engine/notify) subscribe to these
        if repo.findings and repo.state in ("drifted", "remediated"):
            w.stream.publish(ComplianceViolation(repo.customer, repo.repository, tuple(f.to_dict() for f in repo.findings),
                                                 remediated=repo.state == "remediated"))
    data = report.to_dict()
    if not dry_run:
        for repo in report.repos:  # the portal shows each customer's latest findings (best effort, like all history)
            w.history.compliance_done(repo)
        return Outcome(data, lambda: render_console(report), report.exit_code)
    # what a real --remediate would also have written: one audit record per repository it fixes
    would_append = [{"repository": r.repository, "customer": r.customer,
                     "changes": [{"property": f.property, "from": f.actual, "to": f.expected} for f in r.findings if f.expected is not None]}
                    for r in report.repos if remediate and not r.error and any(f.expected is not None for f in r.findings)]
    data["dry_run"] = {"remediate": remediate, "audit_log": str(audit_log), "would_append_audit": would_append,
                       "would_write": {"github": report.planned_writes, "audit_log": len(would_append)}}
    return Outcome(data, lambda: "\n".join(filter(None, [render_console(report), render_dry_run(data["dry_run"])])), report.exit_code)


VERBS = (
    Verb("compliance", run, (DRY_RUN, JSON, opt("--policy", "policy_path", type=FILE, help="Property policy (default: policy/properties.yml in the catalog)."),
                             opt("--source", help="Source of truth: a CMDB export (CSV, JSON or YAML), a file path or an http(s) URL."),
                             opt("--remediate", is_flag=True, help="Write the source of truth's values back to repositories that differ.")),
         "Check every customer repository's custom properties. Exit 0 compliant, 3 property drift, 1 errors."),
)
