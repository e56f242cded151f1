"""What differs between the targets a tenant deploys to (``local``, ``aws``, ``azure``, ``gcp``), in one place.

Regions (their shape and default), the provider's Terraform module and Pulumi program for each target,
how the provider's tags become each cloud's tags or labels, and what a customer file needs to be
deployable on a target (``problems``: every size mappable, the database engine offered, tags the cloud
accepts).  Sizes themselves are ``engine/sizing.py``.  Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine import sizing

if TYPE_CHECKING:  # engine.config imports this module
    from engine.config import CustomerConfig, Database

TARGETS = ("local", "aws", "azure", "gcp")


@dataclass(frozen=True)
class Target:
    name: str
    region_pattern: str  # what a region of this target looks like (the tenant record's `region`)
    default_region: str
    region_example: str
    terraform_module: str  # the provider's module for it, under terraform/
    tag_word: str  # what the cloud calls them


TARGET_FACTS: dict[str, Target] = {
    # The local target stands in for AWS: its regions are AWS's (the cost estimate prices it there).
    "local": Target("local", r"^[a-z]{2}-[a-z]+-[0-9]$", "eu-west-1", "eu-west-1", "local", "tags"),
    "aws": Target("aws", r"^[a-z]{2}-[a-z]+-[0-9]$", "eu-west-1", "eu-west-1", ".", "tags"),
    "azure": Target("azure", r"^[a-z]{4,20}[0-9]?$", "westeurope", "westeurope", "azure", "tags"),
    "gcp": Target("gcp", r"^[a-z]{2,12}-[a-z]{3,10}[0-9]{1,2}$", "europe-west4", "europe-west4", "gcp", "labels"),
}


def region_problem(target: str, region: str) -> str | None:
    facts = TARGET_FACTS[target]
    if re.fullmatch(facts.region_pattern.removesuffix("$") + r"\Z", region):
        return None
    return f"{region!r} is not a {target} region: {target} regions look like {facts.region_example}"


def terraform_module(target: str) -> str:
    """The module directory (relative to terraform/) that deploys ``target``."""
    return TARGET_FACTS[target].terraform_module


# --- tags and labels -------------------------------------------------------------------------------------------------

_AZURE_FORBIDDEN = re.compile(r"[<>%&\\?/]")  # characters Azure refuses in a tag name
_GCP_LABEL_CHAR = re.compile(r"[^a-z0-9_-]")


def gcp_label(text: str) -> str:
    """``text`` as a GCP label key or value: lower case, letters, digits, '_' and '-' (others become '_'), ≤ 63."""
    return _GCP_LABEL_CHAR.sub("_", text.lower())[:63]


def cloud_tags(target: str, tags: dict[str, str]) -> dict[str, str]:
    """The provider's tags (customer's plus customer/environment/managed-by) as ``target`` takes them.

    GCP labels allow lower-case letters, digits, '_' and '-' only, so ``team: Platform Team`` is the label
    ``team: platform_team``; keys that would collide are refused up front (``problems``)."""
    if target != "gcp":
        return dict(tags)
    return dict(sorted((gcp_label(k), gcp_label(v)) for k, v in tags.items()))


# --- settings the planner adds for a target -------------------------------------------------------------------------

def instance_settings(target: str, word: str) -> dict[str, Any]:
    """``instance_type`` as the target names it, plus what the cloud programs need to know about it."""
    resolved = sizing.resolve("instance", word, target)
    out: dict[str, Any] = {"instance_type": resolved.name}
    if target in ("azure", "gcp"):
        assert resolved.shape is not None
        out["instance_architecture"] = resolved.shape.arch  # the image to boot: arm64 or x86_64
    return out


def database_settings(target: str, db: dict | None) -> dict | None:
    """The planner's database settings with the class, storage and backup retention the target provides."""
    if db is None:
        return None
    resolved = sizing.resolve("database", db["instance_class"], target)
    cloud = sizing.cloud_of(target)
    out = {**db, "instance_class": resolved.name}
    if target in ("azure", "gcp"):
        out["storage_gb"] = sizing.database_storage_gb(cloud, db["storage_gb"])
        out["backup_retention_days"] = sizing.backup_retention_days(cloud, db["backup_retention_days"])
    if target == "azure":
        assert resolved.shape is not None
        out["tier"] = resolved.shape.tier
    return out


# --- is a customer file deployable on a target? ------------------------------------------------------------------

def problems(config: "CustomerConfig", target: str) -> list[tuple[tuple, str]]:
    """(key path, reason) for everything in ``config`` that ``target`` cannot provide; empty when it can all be planned.

    Every path is one the customer wrote (or the nearest one: a default engine is reported at its database)."""
    found: dict[tuple, str] = {}
    for name, env in config.environments.items():
        try:
            sizing.resolve("instance", env.instance_type, target)
        except sizing.Unmappable as exc:
            found[("environments", name, "instance_type")] = str(exc)
        db, where = (env.database, ("environments", name, "database")) if env.database is not None else (config.database, ("database",))
        if db is not None and db.enabled:
            for key, reason in _database_problems(db, target):
                found.setdefault((*where, key), reason)
    for key, reason in _tag_problems(config.tags, target):
        found.setdefault(("tags", key), reason)
    return list(found.items())


def _database_problems(db: "Database", target: str) -> list[tuple[str, str]]:
    out = []
    cloud = sizing.cloud_of(target)
    if target != "local" and db.engine not in sizing.DATABASE_ENGINES[cloud]:
        out.append(("engine", f"database engine {db.engine!r} is not offered on {target}; engine on {target} takes: "
                              f"{', '.join(sizing.DATABASE_ENGINES[cloud])}"))
    try:
        resolved = sizing.resolve("database", db.instance_class, target)
    except sizing.Unmappable as exc:
        out.append(("instance_class", str(exc)))
        return out
    if target == "azure" and db.multi_az and resolved.shape is not None and resolved.shape.tier == "Burstable":
        with_ha = [w for w in sizing.allowed("database", "azure") if _azure_tier(w) != "Burstable"]
        out.append(("multi_az", f"on azure, multi_az (zone-redundant high availability) needs a General Purpose or Memory Optimized "
                                f"class; {db.instance_class!r} is {resolved.name} (Burstable). Classes with it: {sizing.describe(with_ha)}"))
    return out


def _azure_tier(word: str) -> str | None:
    shape = sizing.resolve("database", word, "azure").shape
    return shape.tier if shape else None


def _tag_problems(tags: dict[str, str], target: str) -> list[tuple[str, str]]:
    out = []
    if target == "azure":
        seen: dict[str, str] = {}
        for key in tags:
            if _AZURE_FORBIDDEN.search(key):
                out.append((key, f"azure tag names cannot contain < > % & \\ ? or /: rename tag {key!r}"))
            elif key.lower() in seen:
                out.append((key, f"azure tag names ignore case: {key!r} and {seen[key.lower()]!r} are the same tag"))
            seen.setdefault(key.lower(), key)
    if target == "gcp":
        labels: dict[str, str] = {"customer": "customer", "environment": "environment", "managed-by": "managed-by"}
        for key in tags:
            label = gcp_label(key)
            if label in labels:
                out.append((key, f"on gcp, tag {key!r} becomes the label {label!r}, which {labels[label]!r} already is "
                                 "(labels are lower case: letters, digits, '_' and '-')"))
            labels.setdefault(label, key)
    return out
