"""The SLA report: DORA's four measures, drift resolution and pipeline availability, from the run history. Pure.

Definitions (docs/PORTAL.md has them with an example):

- **deployment** — an ``up`` of a stack that succeeded or failed (skipped stacks never ran).
- **deployment frequency** — successful deployments per week of the period.
- **lead time** — from the deployed commit's time (``committed_at``, recorded by ``engine event``) to the end of
  the successful deployment; the median of the period's deployments that know their commit.
- **change failure rate** — failed deployments / all deployments in the period.
- **time to restore** — from a failed deployment (the first of a run of failures of one stack) to the end of that
  stack's next successful deployment; the median over the failures that started in the period and are restored
  (the unrestored are counted apart).
- **drift detection-to-resolution** — from the first drift scan that found a stack ``drifted`` to the first later
  scan that found it ``in-sync`` or ``remediated``; the median, like time to restore.
- **pipeline availability** — the share of the period during which each stack's last deployment had not failed,
  averaged over the stacks deployed before the period ended: a stack is "down" from a failed deployment to its
  next successful one.

Targets come from the provider's ``policy/sla.yml`` (fleet-wide, with per-customer overrides).
"""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Iterable

from pydantic import BaseModel, ConfigDict, Field


DEPLOY, DRIFT = "up", "drift"
RESOLVED_DRIFT = ("in-sync", "remediated")
LOOKBACK_DAYS = 90  # history read before the period: is a stack failing or drifted when the period starts?

# measure -> (label, unit, which way is good)
MEASURES: dict[str, tuple[str, str, str]] = {
    "deployment_frequency_per_week": ("Deployment frequency", "per week", "min"),
    "lead_time_hours": ("Lead time (median)", "hours", "max"),
    "change_failure_rate": ("Change failure rate", "ratio", "max"),
    "time_to_restore_hours": ("Time to restore (median)", "hours", "max"),
    "drift_resolution_hours": ("Drift detection to resolution (median)", "hours", "max"),
    "pipeline_availability": ("Pipeline availability", "ratio", "min"),
}

_Positive = Annotated[float, Field(ge=0)]
_Ratio = Annotated[float, Field(ge=0, le=1)]


class Targets(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    deployment_frequency_per_week: _Positive | None = None
    lead_time_hours: _Positive | None = None
    change_failure_rate: _Ratio | None = None
    time_to_restore_hours: _Positive | None = None
    drift_resolution_hours: _Positive | None = None
    pipeline_availability: _Ratio | None = None


class SlaPolicy(BaseModel):
    """``policy/sla.yml``: the provider's targets, fleet-wide and per customer."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    targets: Targets = Targets()
    customers: dict[str, Targets] = Field(default_factory=dict)

    def for_customer(self, customer: str | None) -> Targets:
        own = self.customers.get(customer or "")
        if own is None:
            return self.targets
        return self.targets.model_copy(update=own.model_dump(exclude_none=True))


def load_policy(path: Path) -> SlaPolicy:
    """The targets in ``path``; none when the file does not exist; ``ConfigError`` (file, line, key) when malformed."""
    from engine.documents import load_file
    from engine.validation import validate_document

    if not Path(path).is_file():
        return SlaPolicy()
    return validate_document(load_file(path), SlaPolicy)


def parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class Period:
    start: dt.datetime
    end: dt.datetime

    @property
    def seconds(self) -> float:
        return max((self.end - self.start).total_seconds(), 1.0)

    @property
    def weeks(self) -> float:
        return self.seconds / (7 * 86400)

    def contains(self, moment: dt.datetime) -> bool:
        return self.start <= moment < self.end

    def to_dict(self) -> dict:
        return {"from": self.start.strftime("%Y-%m-%dT%H:%M:%SZ"), "to": self.end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "days": round(self.seconds / 86400, 2)}


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def _hours(a: dt.datetime, b: dt.datetime) -> float:
    return (b - a).total_seconds() / 3600


def _incidents(rows: list[dict], bad, good, now: dt.datetime) -> list[tuple[dt.datetime, dt.datetime | None]]:
    """(start, end or None) of each run of ``bad`` rows of one stack, ended by the first ``good`` row after it."""
    out: list[tuple[dt.datetime, dt.datetime | None]] = []
    start = None
    for row in rows:
        when = row["_at"]
        if bad(row) and start is None:
            start = when
        elif good(row) and start is not None:
            out.append((start, when))
            start = None
    if start is not None:
        out.append((start, None))
    return out


def measure(rows: Iterable[dict], period: Period, targets: Targets, now: dt.datetime | None = None) -> dict:
    """Every measure over ``rows`` (runs of any stacks, any order, including up to LOOKBACK_DAYS before the period)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    by_stack: dict[tuple[str, str], dict[str, list[dict]]] = {}
    for row in rows:
        at = parse_time(row.get("finished_at"))
        if at is None or at >= period.end or row.get("operation") not in (DEPLOY, DRIFT):
            continue
        if row["operation"] == DEPLOY and row.get("status") not in ("succeeded", "failed"):
            continue
        by_stack.setdefault((row["customer"], row["environment"]), {DEPLOY: [], DRIFT: []})[row["operation"]].append({**row, "_at": at})

    deployed = failed = 0
    lead: list[float] = []
    restore: list[float] = []
    unrestored = 0
    drift: list[float] = []
    drift_incidents = drift_open = 0
    down_seconds = 0.0
    stacks = 0
    horizon = min(now, period.end)
    for runs in by_stack.values():
        deploys = sorted(runs[DEPLOY], key=lambda r: (r["_at"], r.get("id") or 0))
        for row in deploys:
            if not period.contains(row["_at"]):
                continue
            if row["status"] == "succeeded":
                deployed += 1
                committed = parse_time(row.get("committed_at"))
                if committed is not None and committed <= row["_at"]:
                    lead.append(_hours(committed, row["_at"]))
            else:
                failed += 1
        for start, end in _incidents(deploys, lambda r: r["status"] == "failed", lambda r: r["status"] == "succeeded", now):
            if period.contains(start):
                if end is None:
                    unrestored += 1
                else:
                    restore.append(_hours(start, end))
            down_from, down_to = max(start, period.start), min(end or horizon, horizon)
            down_seconds += max(0.0, (down_to - down_from).total_seconds())
        if deploys:
            stacks += 1
        scans = sorted(runs[DRIFT], key=lambda r: (r["_at"], r.get("id") or 0))
        for start, end in _incidents(scans, lambda r: r["status"] == "drifted", lambda r: r["status"] in RESOLVED_DRIFT, now):
            if period.contains(start):
                drift_incidents += 1
                if end is None:
                    drift_open += 1
                else:
                    drift.append(_hours(start, end))

    observed = max((horizon - period.start).total_seconds(), 1.0)
    values = {
        "deployment_frequency_per_week": round(deployed / period.weeks, 2),
        "lead_time_hours": _median(lead),
        "change_failure_rate": round(failed / (deployed + failed), 4) if deployed + failed else None,
        "time_to_restore_hours": _median(restore),
        "drift_resolution_hours": _median(drift),
        "pipeline_availability": round(1 - down_seconds / (stacks * observed), 4) if stacks else None,
    }
    met = {}
    for name, (_label, _unit, good) in MEASURES.items():
        target, value = getattr(targets, name), values[name]
        met[name] = None if target is None or value is None else (value >= target if good == "min" else value <= target)
    return {**values, "deployments": deployed, "failed_deployments": failed, "lead_time_samples": len(lead),
            "restores": len(restore), "unrestored": unrestored, "drift_incidents": drift_incidents, "drift_unresolved": drift_open,
            "stacks": stacks, "targets": targets.model_dump(), "met": met}


def weekly(rows: Iterable[dict], period: Period) -> list[dict]:
    """Per week of the period (weeks counted from its start): deployments, failures, median lead time."""
    weeks = max(1, int(-(-period.seconds // (7 * 86400))))
    out = [{"week": i, "from": (period.start + dt.timedelta(days=7 * i)).strftime("%Y-%m-%d"), "deployments": 0, "failed": 0, "_lead": []}
           for i in range(weeks)]
    for row in rows:
        at = parse_time(row.get("finished_at"))
        if row.get("operation") != DEPLOY or at is None or not period.contains(at) or row.get("status") not in ("succeeded", "failed"):
            continue
        bucket = out[min(weeks - 1, int((at - period.start).total_seconds() // (7 * 86400)))]
        if row["status"] == "failed":
            bucket["failed"] += 1
        else:
            bucket["deployments"] += 1
            committed = parse_time(row.get("committed_at"))
            if committed is not None and committed <= at:
                bucket["_lead"].append(_hours(committed, at))
    for bucket in out:
        bucket["lead_time_hours"] = _median(bucket.pop("_lead"))
    return out


def report(rows: list[dict], period: Period, policy: SlaPolicy, customers: list[str], fleet: bool,
           now: dt.datetime | None = None) -> dict:
    """The SLA report: per customer (those listed), and fleet-wide when ``fleet`` (the provider's view)."""
    mine = [r for r in rows if r["customer"] in set(customers)]
    per = {c: [] for c in customers}
    for row in mine:
        per[row["customer"]].append(row)
    out = {"period": period.to_dict(), "measures": {k: {"label": v[0], "unit": v[1], "good": v[2]} for k, v in MEASURES.items()},
           "customers": {c: measure(per[c], period, policy.for_customer(c), now) for c in customers},
           "weekly": weekly(mine, period)}
    if fleet:
        out["fleet"] = measure(mine, period, policy.targets, now)
    return out

