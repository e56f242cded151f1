"""Normalize OpenTofu/Terraform ``show -json`` output into the engine's change summary.

Pure: a parsed plan in, ``Changes`` and ``ResourceChange``s out.  The same shape as a
Pulumi preview, so reporters never care which tool ran.  ``show -json`` carries
sensitive values in clear text (only flagged in ``*_sensitive``); nothing here ever
copies a value out of the plan — only addresses, actions and property *names* (and,
for drift, values masked wherever the markers say so, at every depth).

Sensitivity markers come in the shape of the value: ``true``, a map of markers, or a
list of markers (``{"tags": [false, true]}``, ``{"block": [{"token": true}]}``).
"""

from __future__ import annotations

from typing import Any

from engine.diffs import changed_paths, child_marker, marks_all, marks_any, value_diffs
from engine.results import Changes, ResourceChange

_ACTIONS = {
    ("no-op",): "same",
    ("read",): "same",
    ("create",): "create",
    ("update",): "update",
    ("delete",): "delete",
    ("delete", "create"): "replace",
    ("create", "delete"): "replace",
    ("forget",): "delete",
}


def _action(actions: list[str]) -> str:
    return _ACTIONS.get(tuple(actions), "update")


def _replace_path(path: list, sensitive: Any) -> str:
    """A path that forces replacement, cut where it enters something sensitive: keys inside it can be secret too."""
    shown: list[str] = []
    marker = sensitive
    for step in path:
        fits = isinstance(marker, dict) and isinstance(step, str) or isinstance(marker, list) and isinstance(step, int)
        if marks_all(marker) or (marks_any(marker) and not fits):
            break
        shown.append(str(step))
        marker = child_marker(marker, step)
    return ".".join(shown) or "(value)"


def summarize(plan: dict, *, drift: bool = False) -> tuple[Changes, list[ResourceChange]]:
    """Counts and a resource list from a plan.

    ``drift=True`` reads ``resource_drift`` (what a refresh found changed outside the
    tool) instead of ``resource_changes``.
    """
    entries = plan.get("resource_drift" if drift else "resource_changes") or []
    secrets = known_secrets(plan) if drift else frozenset()
    counts: dict[str, int] = {}
    resources: list[ResourceChange] = []
    for entry in entries:
        if entry.get("mode") == "data":
            continue
        change = entry.get("change") or {}
        action = _action(change.get("actions") or ["no-op"])
        counts[action] = counts.get(action, 0) + 1
        moved_from = entry.get("previous_address")
        if action == "same" and not moved_from:
            continue
        sensitive = _merge_sensitive(change.get("before_sensitive"), change.get("after_sensitive"))
        properties: list[str] = []
        if action in ("update", "replace"):
            properties = changed_paths(change.get("before"), change.get("after"), change.get("after_unknown"), sensitive)
        if action == "replace" and change.get("replace_paths"):
            forcing = [_replace_path(path, sensitive) for path in change["replace_paths"] if isinstance(path, list)]
            properties = sorted(set(properties) | set(forcing))
        diffs: list[dict] = []
        if drift and action == "update":
            diffs = value_diffs(change.get("before"), change.get("after"), sensitive=sensitive, secrets=secrets)
        reason = entry.get("action_reason")
        resources.append(ResourceChange(
            urn_name=entry.get("address", "?"),
            type=entry.get("type", "?"),
            action="move" if action == "same" and moved_from else action,
            properties=properties,
            moved_from=moved_from,
            diffs=diffs,
            action_reason=reason if isinstance(reason, str) and reason else None,
        ))
    return Changes.from_counts(counts), resources


def _merge_sensitive(a: Any, b: Any) -> Any:
    """Sensitive wherever either side says so, in the shape of ``before_sensitive``/``after_sensitive``.

    Maps merge key by key and lists element by element (the longer list's extra markers
    kept); where one side is a map and the other a list (the value changed type), the
    whole value is sensitive if either marks anything.
    """
    if marks_all(a) or marks_all(b):
        return True
    if not marks_any(a) and not marks_any(b):
        return False
    if not marks_any(a) or not marks_any(b):
        return a if marks_any(a) else b
    if isinstance(a, dict) and isinstance(b, dict):
        return {k: _merge_sensitive(a.get(k), b.get(k)) for k in set(a) | set(b)}
    if isinstance(a, list) and isinstance(b, list):
        return [_merge_sensitive(a[i] if i < len(a) else False, b[i] if i < len(b) else False) for i in range(max(len(a), len(b)))]
    return True


def known_secrets(plan: dict) -> frozenset[str]:
    """Every string the plan marks sensitive anywhere, and the values of sensitive variables.

    A provider may copy a sensitive value into an attribute it does not mark (OpenTofu's
    ``terraform_data.output`` holds ``input`` unmarked in the prior state): values found
    here are masked wherever they turn up.
    """
    found: set[str] = set()

    def collect(value: Any, marker: Any, inside: bool = False) -> None:
        inside = inside or marks_all(marker) or (marks_any(marker) and not (
            isinstance(value, dict) and isinstance(marker, dict) or isinstance(value, list) and isinstance(marker, list)))
        if isinstance(value, dict):  # keys are not collected: common words ("Name") would mask far too much
            for k, v in value.items():
                collect(v, child_marker(marker, k), inside)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                collect(v, child_marker(marker, i), inside)
        elif inside and isinstance(value, str) and len(value) >= 3:
            found.add(value)

    for kind in ("resource_changes", "resource_drift"):
        for entry in plan.get(kind) or []:
            change = entry.get("change") or {}
            merged = _merge_sensitive(change.get("before_sensitive"), change.get("after_sensitive"))
            collect(change.get("before"), merged)
            collect(change.get("after"), merged)
    for change in (plan.get("output_changes") or {}).values():
        merged = _merge_sensitive(change.get("before_sensitive"), change.get("after_sensitive"))
        collect(change.get("before"), merged)
        collect(change.get("after"), merged)
    def modules(module: Any) -> None:  # prior_state / planned_values: resources with their sensitive_values, nested modules
        if isinstance(module, dict):
            for resource in module.get("resources") or []:
                if isinstance(resource, dict):
                    collect(resource.get("values"), resource.get("sensitive_values"))
            for child in module.get("child_modules") or []:
                modules(child)

    modules(((plan.get("prior_state") or {}).get("values") or {}).get("root_module"))
    modules((plan.get("planned_values") or {}).get("root_module"))
    declared = ((plan.get("configuration") or {}).get("root_module") or {}).get("variables") or {}
    for name, variable in (plan.get("variables") or {}).items():
        if (declared.get(name) or {}).get("sensitive"):
            collect((variable or {}).get("value"), True)
    return frozenset(s for s in found if len(s) >= 3)


def has_changes(plan: dict) -> bool:
    changes, resources = summarize(plan)
    output_changes = any(_action(o.get("actions") or ["no-op"]) != "same" for o in (plan.get("output_changes") or {}).values())
    return bool(changes.total_changes or any(r.action == "move" for r in resources) or output_changes)


def outputs(state_outputs: dict, mask: str) -> dict:
    """``tofu output -json`` → plain values, sensitive ones masked."""
    return {name: (mask if item.get("sensitive") else item.get("value")) for name, item in (state_outputs or {}).items()}
