"""Spacelift compliance: tenants whose stack is missing, stacks that match no tenant, stacks changed in Spacelift.

The same comparison as ``engine spacelift sync`` over the whole catalog, reported as findings and never
written: ``engine spacelift compliance`` exits 3 when there is any (like ``engine compliance``).
"""

from __future__ import annotations

from typing import Any

from engine.spacelift.client import SpaceliftAPI
from engine.spacelift.settings import SpaceliftSettings
from engine.spacelift.sync import desired_for, plan_sync


def check(engine: Any, settings: SpaceliftSettings, api: SpaceliftAPI, *, tofu_version: str) -> dict[str, Any]:
    customers = sorted(r.customer for r in engine.catalog.all_records())
    desired, notes = desired_for(engine, settings, customers, tofu_version)
    plan = plan_sync(desired, api.stacks(), lambda customer: True, prune=False)

    def items(action: str) -> list[dict[str, Any]]:
        return [{"stack": s.stack, "customer": s.customer, "environment": s.environment, "fields": s.fields + s.variables_set}
                for s in plan.stacks if s.action == action]

    data = {"missing": items("create"), "unmatched": items("orphan"), "drifted": items("update"), "conflicts": items("conflict"),
            "in_sync": [s.stack for s in plan.stacks if s.action == "in-sync"], "notes": notes}
    data["findings"] = sum(len(data[k]) for k in ("missing", "unmatched", "drifted", "conflicts"))
    data["compliant"] = data["findings"] == 0
    return data
