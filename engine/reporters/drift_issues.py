"""Drift as a lifecycle in the customer's (or the manager's) repository: one issue per drifted stack,
opened, updated on each scan, closed when the drift is gone."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from engine.github import GitHubAPI
# the comment rendering helpers this package shares (cells, templates, the too-long fallback)
from engine.reporters.github import _TEMPLATES, COMMENT_LIMIT, _cell, _too_long
from engine.results import StackResult

DRIFT_LABEL = "infra-drift"
_HIGH_KINDS = ("network", "vpc", "subnet", "route", "database", "db_instance", "rds", "security", "firewall")


def drift_marker(customer: str, environment: str) -> str:
    return f"<!-- managed-infra-engine:drift:{customer}/{environment} -->"


def drift_severity(result: StackResult) -> str:
    """high: something was deleted, or networking/database/security changed; medium: other updates; low: nothing."""
    severity = "low"
    for change in result.resources:
        kind = f"{change.type} {change.urn_name}".lower()
        if change.action == "delete" or any(k in kind for k in _HIGH_KINDS):
            return "high"
        severity = "medium"
    return severity


DRIFT_DIFFS_PER_RESOURCE = 10


def render_drift_issue(result: StackResult, *, resolved: bool, run_url: str | None, now: str | None = None) -> dict:
    """The drift issue: one row per drifted property (values masked where sensitive), as many resources as fit the body."""
    severity = drift_severity(result) if not resolved else "none"
    state_line = "✅ Drift resolved" if resolved else f"⚠️ Drift detected in {len(result.resources)} resource{'s' if len(result.resources) != 1 else ''}"
    resources = [] if resolved else result.resources
    shown = list(resources)
    while True:
        body = _TEMPLATES.get_template("drift_issue.md.j2").render(
            marker=drift_marker(result.customer, result.environment), r=result, severity=severity, state_line=state_line,
            resources=resources, shown=shown, hidden=len(resources) - len(shown), per_resource=DRIFT_DIFFS_PER_RESOURCE,
            checked=now or time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), run_url=run_url)
        if len(body) <= COMMENT_LIMIT:
            break
        if not shown:
            body = _too_long(drift_marker(result.customer, result.environment), f"**{state_line}** · `{_cell(result.customer, 100)}` / "
                             f"`{_cell(result.environment, 100)}`", f"severity **{severity}**")
            break
        shown = shown[: len(shown) * 3 // 4]
    return {"title": f"Infrastructure drift: {result.customer}/{result.environment}", "body": body,
            "labels": [DRIFT_LABEL] + ([f"severity:{severity}"] if not resolved else [])}


@dataclass
class DriftIssues:
    """Opens, updates and closes drift issues.  Best effort, like all feedback."""

    api: GitHubAPI
    run_url: str | None = None
    log: list[str] = field(default_factory=list)
    actions: list[dict] = field(default_factory=list)
    _open: dict[str, list[dict]] = field(default_factory=dict)

    def _open_issues(self, repository: str) -> list[dict]:
        if repository not in self._open:
            self._open[repository] = self.api.issues(repository, DRIFT_LABEL)
        return self._open[repository]

    def sync(self, repository: str, result: StackResult, drifted: bool) -> None:
        try:
            mark = drift_marker(result.customer, result.environment)
            existing = next((i for i in self._open_issues(repository) if (i.get("body") or "").startswith(mark)), None)
            if drifted:
                issue = render_drift_issue(result, resolved=False, run_url=self.run_url)
                if existing:
                    self.api.update_issue(repository, existing["number"], {"body": issue["body"], "labels": issue["labels"], "title": issue["title"]})
                    self.actions.append({"stack": f"{result.customer}/{result.environment}", "action": "updated", "issue": existing["number"]})
                else:
                    created = self.api.create_issue(repository, issue)
                    number = getattr(getattr(created, "parsed_data", None), "number", None)
                    self.actions.append({"stack": f"{result.customer}/{result.environment}", "action": "opened", "issue": number})
            elif existing:
                issue = render_drift_issue(result, resolved=True, run_url=self.run_url)
                self.api.update_issue(repository, existing["number"], {"body": issue["body"], "state": "closed", "state_reason": "completed",
                                                                       "labels": issue["labels"]})
                self.actions.append({"stack": f"{result.customer}/{result.environment}", "action": "closed", "issue": existing["number"]})
        except Exception as exc:  # noqa: BLE001 - reporting never changes the scan's outcome
            self.log.append(f"drift issue {result.customer}/{result.environment}: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")
