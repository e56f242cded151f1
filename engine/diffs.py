"""Differences between two values, with everything sensitive masked — the one diff walker.

Used for Terraform plans (``engine/tfplan.py``: markers in ``before_/after_sensitive``) and
Pulumi engine events (``engine/runners/pulumi.py``: secret envelopes).  Two views of a change:
``changed_paths`` (names only, for plan summaries) and ``value_diffs`` (old → new, for drift).
Neither ever shows a sensitive value, nor the keys of a wholly sensitive map.
"""

from __future__ import annotations

import json
from typing import Any

from engine.results import SECRET_MASK

SECRET_SIG = "4dabf18193072939515e22adb298388d"  # Pulumi's marker for a secret value in serialized state


def marks_all(marker: object) -> bool:
    """The sensitivity marker says: this whole value is sensitive (``true``, in any spelling but a container)."""
    return not isinstance(marker, (dict, list)) and bool(marker)


def marks_any(marker: object) -> bool:
    """Anything at all is marked sensitive, at any depth of the marker."""
    if isinstance(marker, dict):
        return any(marks_any(v) for v in marker.values())
    if isinstance(marker, list):
        return any(marks_any(v) for v in marker)
    return marks_all(marker)


def child_marker(marker: object, key: object) -> object:
    """The marker of one element (``key``: a map key or a list index), by the marker's shape.

    Terraform shapes the marker like the value: ``true``, a map of markers (``false``
    entries omitted) or a list of markers.  Where the shapes disagree, the child counts
    as sensitive if the marker marks anything: masking too much is safe, too little is not.
    """
    if isinstance(marker, dict):
        return marker.get(key, False) if isinstance(key, str) else marks_any(marker)
    if isinstance(marker, list):
        return marker[key] if isinstance(key, int) and 0 <= key < len(marker) else marks_any(marker)
    return marks_all(marker)


def _fits(value: object, marker: object) -> bool:
    """Can ``marker`` be applied element by element to the container ``value``?"""
    if not marks_any(marker):
        return True
    return isinstance(value, dict) and isinstance(marker, dict) or isinstance(value, list) and isinstance(marker, list)


def _is_secret(value: object) -> bool:
    return value == SECRET_MASK or (isinstance(value, dict) and SECRET_SIG in value)


def _names_secret(value: object, secrets: frozenset[str]) -> bool:
    """``value`` is, or (for longer secrets) contains, a value known to be secret elsewhere."""
    if not secrets or not isinstance(value, str):
        return False
    return value in secrets or any(len(s) >= 8 and s in value for s in secrets)


def redact(value: object, sensitive: object = False, secrets: frozenset[str] = frozenset()) -> object:
    """A copy of ``value`` with every sensitive part replaced by ``SECRET_MASK``.

    ``sensitive`` is a Terraform-style marker (``true``, map or list of markers, nested);
    Pulumi secrets (``SECRET_SIG`` objects) are masked wherever they are.  A wholly
    sensitive map becomes one mask: its keys are not shown either.  ``secrets`` are values
    known to be sensitive from elsewhere (a tool may copy a sensitive value into an
    attribute it does not mark): a string equal to one, or containing a longer one, is masked.
    """
    if marks_all(sensitive) or _is_secret(value) or _names_secret(value, secrets):
        return SECRET_MASK
    if isinstance(value, (dict, list)) and not _fits(value, sensitive):
        return SECRET_MASK
    if isinstance(value, dict):
        if any(_names_secret(k, secrets) for k in value):
            return SECRET_MASK
        return {k: redact(v, child_marker(sensitive, k), secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, child_marker(sensitive, i), secrets) for i, v in enumerate(value)]
    return SECRET_MASK if marks_any(sensitive) else value


def value_diffs(old: object, new: object, prefix: str = "", limit: int = 20, sensitive: object = False,
                secrets: frozenset[str] = frozenset()) -> list[dict]:
    """Leaf paths whose values differ, with old → new; secret or sensitive values masked.

    ``sensitive`` marks what is sensitive in the shape of the values and ``secrets`` are
    values known to be sensitive (see ``redact``); diffs go down through maps and through
    lists of the same length (``path[i]``), but never into anything wholly sensitive, so
    neither its values nor its keys show.
    """
    out: list[dict] = []
    _value_diffs(old, new, prefix, sensitive, secrets, out, limit)
    return out[:limit]


def _value_diffs(old: object, new: object, path: str, marker: object, secrets: frozenset[str], out: list[dict], limit: int) -> None:
    if isinstance(old, str) and isinstance(new, str) and old.startswith("{") and new.startswith("{") and not marks_any(marker):
        try:  # a JSON document held in one attribute (e.g. a file's content): diff inside it
            old, new = json.loads(old), json.loads(new)
        except ValueError:
            pass
    if not marks_all(marker) and not _is_secret(old) and not _is_secret(new):
        if isinstance(old, dict) and isinstance(new, dict) and _fits(old, marker) and not any(_names_secret(k, secrets) for k in (*old, *new)):
            for key in sorted(set(old) | set(new), key=str):
                if str(key).startswith("__"):
                    continue
                _value_diffs(old.get(key), new.get(key), f"{path}.{key}" if path else str(key), child_marker(marker, key), secrets, out, limit)
                if len(out) >= limit:
                    return
            return
        if isinstance(old, list) and isinstance(new, list) and len(old) == len(new) and _fits(old, marker):
            for i, (o, n) in enumerate(zip(old, new)):
                _value_diffs(o, n, f"{path}[{i}]", child_marker(marker, i), secrets, out, limit)
                if len(out) >= limit:
                    return
            return
    if old != new:
        out.append({"path": path or "(value)", "old": redact(old, marker, secrets), "new": redact(new, marker, secrets)})


def changed_paths(before: Any, after: Any, unknown: Any = None, sensitive: Any = False, prefix: str = "", limit: int = 20) -> list[str]:
    """Names of attributes whose values differ; never the values.

    ``unknown`` (Terraform's ``after_unknown``) marks values computed after apply (ids, hashes):
    not something the user changed, so not listed.  A wholly sensitive map, or a Pulumi secret,
    is one name: its keys can be as secret as its values.  Keys starting with ``__`` are the
    tools' bookkeeping.
    """
    out: list[str] = []
    descend = not marks_all(sensitive) and (not marks_any(sensitive) or isinstance(sensitive, dict))
    if (isinstance(before, dict) or isinstance(after, dict)) and descend and not _is_secret(before) and not _is_secret(after):
        before = before if isinstance(before, dict) else {}
        after = after if isinstance(after, dict) else {}
        unknown = unknown if isinstance(unknown, dict) else {}
        for key in sorted(set(before) | set(after) | set(unknown), key=str):
            if str(key).startswith("__") or unknown.get(key) is True:
                continue
            path = f"{prefix}.{key}" if prefix else str(key)
            out.extend(changed_paths(before.get(key), after.get(key), unknown.get(key), child_marker(sensitive, key), path, limit))
            if len(out) >= limit:
                break
        return out[:limit]
    if before != after:
        return [prefix or "(value)"]
    return []
