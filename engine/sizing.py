"""One sizing vocabulary for every cloud: what a customer writes, and what it is on AWS, Azure and GCP.

Customers size an environment with ``instance_type`` and a database with ``instance_class``, in the words
they have always written — AWS's (``t3.small``, ``db.t3.micro``) — or in portable words (``small``,
``medium``, …) when they don't think in one cloud's names.  This table is the one place that says what
each word is on each cloud; the planner puts the target's name into the stack settings (so programs and
Terraform modules receive it through the settings and ``terraform.tfvars.json``), the price catalog is
keyed by those names, ``engine schema`` offers the words as enums, and docs/CLOUDS.md shows the table
(``markdown_tables``; a unit test keeps the page and this module the same).

The rule every row follows (tests/unit/test_sizing.py checks it against the shapes below):

- **instances**: the same number of vCPUs on the same CPU architecture, at least the memory and at
  most twice it, in the cloud's family of the same kind (burstable, general purpose, compute or memory
  optimized).  No such size: the word is *unmappable* on that cloud.
- **databases**: memory first — at least the memory and at most twice it, vCPUs within a factor of two
  (managed databases are sized by memory; Cloud SQL and Azure's flexible servers offer other steps).

A word that has no size on the tenant's target is bad input (exit 2, naming the file, line, key and the
words that target takes); the local target stands in for AWS and takes every word of the vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

CLOUDS = ("aws", "azure", "gcp")
# The portable ladder: also the size part of every AWS-style word (t3.small, db.m6i.large, …).
SIZES = ("nano", "micro", "small", "medium", "large", "xlarge", "2xlarge")
# The families whose words the vocabulary holds (every family × every size: what the schema offers; the
# table below says which of them exist on which cloud).
INSTANCE_FAMILIES = ("t3", "t3a", "t4g", "m5", "m6i", "m7g", "c5", "c6i", "r5", "r6i")
DATABASE_FAMILIES = ("t3", "t4g", "m5", "m6i", "r5", "r6i")
PORTABLE_INSTANCE_FAMILY = "t3"  # "small" is t3.small: burstable general purpose, the cheapest ladder with every size
PORTABLE_DATABASE_FAMILY = "t3"


@dataclass(frozen=True)
class Shape:
    """What a cloud's size is: vCPUs (a shared-core size counts what the cloud advertises), memory, CPU architecture."""

    vcpu: int
    memory_mib: int
    arch: str = "x86_64"  # or arm64
    tier: str | None = None  # Azure Database flexible servers: the SKU's tier (Burstable, GeneralPurpose, MemoryOptimized)
    note: str = ""


ARM = "arm64"

# --- the clouds' sizes (from each cloud's published size tables; see docs/CLOUDS.md) --------------------------

_AWS_LADDER = {"nano": (2, 512), "micro": (2, 1024), "small": (2, 2048), "medium": (2, 4096), "large": (2, 8192),
               "xlarge": (4, 16384), "2xlarge": (8, 32768)}
_AWS_BIG = ("large", "xlarge", "2xlarge")  # the sizes AWS offers in its non-burstable families


def _aws_instances() -> dict[str, Shape]:
    out: dict[str, Shape] = {}
    for family in ("t3", "t3a", "t4g"):
        for size, (cpu, mem) in _AWS_LADDER.items():
            out[f"{family}.{size}"] = Shape(cpu, mem, ARM if family == "t4g" else "x86_64")
    for family in ("m5", "m6i", "m7g"):
        for size in _AWS_BIG:
            cpu, mem = _AWS_LADDER[size]
            out[f"{family}.{size}"] = Shape(cpu, mem, ARM if family == "m7g" else "x86_64")
    out["m7g.medium"] = Shape(1, 4096, ARM)
    for family in ("c5", "c6i"):
        for size in _AWS_BIG:
            cpu, mem = _AWS_LADDER[size]
            out[f"{family}.{size}"] = Shape(cpu, mem // 2)
    for family in ("r5", "r6i"):
        for size in _AWS_BIG:
            cpu, mem = _AWS_LADDER[size]
            out[f"{family}.{size}"] = Shape(cpu, mem * 2)
    return out


def _aws_databases() -> dict[str, Shape]:
    out: dict[str, Shape] = {}
    for family in ("t3", "t4g"):
        for size, (cpu, mem) in _AWS_LADDER.items():
            if size != "nano":
                out[f"db.{family}.{size}"] = Shape(cpu, mem, ARM if family == "t4g" else "x86_64")
    for family, factor in (("m5", 1), ("m6i", 1), ("r5", 2), ("r6i", 2)):
        for size in _AWS_BIG:
            cpu, mem = _AWS_LADDER[size]
            out[f"db.{family}.{size}"] = Shape(cpu, mem * factor)
    return out


OFFERED: dict[str, dict[str, dict[str, Shape]]] = {
    "instance": {
        "aws": _aws_instances(),
        "azure": {
            "Standard_B2ts_v2": Shape(2, 1024), "Standard_B2s": Shape(2, 4096), "Standard_B2ms": Shape(2, 8192),
            "Standard_B4ms": Shape(4, 16384), "Standard_B8ms": Shape(8, 32768),
            "Standard_B2pts_v2": Shape(2, 1024, ARM), "Standard_B2pls_v2": Shape(2, 4096, ARM), "Standard_B2ps_v2": Shape(2, 8192, ARM),
            "Standard_B4ps_v2": Shape(4, 16384, ARM), "Standard_B8ps_v2": Shape(8, 32768, ARM),
            "Standard_D2s_v5": Shape(2, 8192), "Standard_D4s_v5": Shape(4, 16384), "Standard_D8s_v5": Shape(8, 32768),
            "Standard_D2ps_v5": Shape(2, 8192, ARM), "Standard_D4ps_v5": Shape(4, 16384, ARM), "Standard_D8ps_v5": Shape(8, 32768, ARM),
            "Standard_F2s_v2": Shape(2, 4096), "Standard_F4s_v2": Shape(4, 8192), "Standard_F8s_v2": Shape(8, 16384),
            "Standard_E2s_v5": Shape(2, 16384), "Standard_E4s_v5": Shape(4, 32768), "Standard_E8s_v5": Shape(8, 65536),
        },
        "gcp": {
            "e2-micro": Shape(2, 1024, note="shared core"), "e2-small": Shape(2, 2048, note="shared core"),
            "e2-medium": Shape(2, 4096, note="shared core"),
            "e2-standard-2": Shape(2, 8192), "e2-standard-4": Shape(4, 16384), "e2-standard-8": Shape(8, 32768),
            "t2a-standard-1": Shape(1, 4096, ARM), "t2a-standard-2": Shape(2, 8192, ARM), "t2a-standard-4": Shape(4, 16384, ARM),
            "t2a-standard-8": Shape(8, 32768, ARM),
            "n2-standard-2": Shape(2, 8192), "n2-standard-4": Shape(4, 16384), "n2-standard-8": Shape(8, 32768),
            "c2d-highcpu-2": Shape(2, 4096), "c2d-highcpu-4": Shape(4, 8192), "c2d-highcpu-8": Shape(8, 16384),
            "n2-highmem-2": Shape(2, 16384), "n2-highmem-4": Shape(4, 32768), "n2-highmem-8": Shape(8, 65536),
        },
    },
    "database": {
        "aws": _aws_databases(),
        "azure": {  # Azure Database for PostgreSQL flexible server SKUs
            "Standard_B1ms": Shape(1, 2048, tier="Burstable"), "Standard_B2s": Shape(2, 4096, tier="Burstable"),
            "Standard_B2ms": Shape(2, 8192, tier="Burstable"), "Standard_B4ms": Shape(4, 16384, tier="Burstable"),
            "Standard_B8ms": Shape(8, 32768, tier="Burstable"),
            "Standard_D2ds_v5": Shape(2, 8192, tier="GeneralPurpose"), "Standard_D4ds_v5": Shape(4, 16384, tier="GeneralPurpose"),
            "Standard_D8ds_v5": Shape(8, 32768, tier="GeneralPurpose"),
            "Standard_E2ds_v5": Shape(2, 16384, tier="MemoryOptimized"), "Standard_E4ds_v5": Shape(4, 32768, tier="MemoryOptimized"),
            "Standard_E8ds_v5": Shape(8, 65536, tier="MemoryOptimized"),
        },
        "gcp": {  # Cloud SQL tiers: db-custom-<vCPUs>-<MiB> (0.9-6.5 GB per vCPU, at least 3,840 MiB) and a shared-core one
            "db-g1-small": Shape(1, 1740, note="shared core"), "db-custom-2-3840": Shape(2, 3840),
            "db-custom-2-4096": Shape(2, 4096), "db-custom-2-8192": Shape(2, 8192), "db-custom-4-16384": Shape(4, 16384),
            "db-custom-8-32768": Shape(8, 32768), "db-custom-6-32768": Shape(6, 32768), "db-custom-10-65536": Shape(10, 65536),
        },
    },
}

# --- the table: the customer's word -> each cloud's size ---------------------------------------------------------

_T3_AZURE = {"nano": "Standard_B2ts_v2", "micro": "Standard_B2ts_v2", "small": "Standard_B2s", "medium": "Standard_B2s",
             "large": "Standard_B2ms", "xlarge": "Standard_B4ms", "2xlarge": "Standard_B8ms"}
_T3_GCP = {"nano": "e2-micro", "micro": "e2-micro", "small": "e2-small", "medium": "e2-medium", "large": "e2-standard-2",
           "xlarge": "e2-standard-4", "2xlarge": "e2-standard-8"}
_T4G_AZURE = {"nano": "Standard_B2pts_v2", "micro": "Standard_B2pts_v2", "small": "Standard_B2pls_v2", "medium": "Standard_B2pls_v2",
              "large": "Standard_B2ps_v2", "xlarge": "Standard_B4ps_v2", "2xlarge": "Standard_B8ps_v2"}
# GCP's Arm machines start at 1 vCPU / 4 GiB (t2a-standard-1) and 2 vCPUs / 8 GiB: t4g.nano-small would get 4-16x the memory.
_T4G_GCP = {"medium": "t2a-standard-2", "large": "t2a-standard-2", "xlarge": "t2a-standard-4", "2xlarge": "t2a-standard-8"}
_BIG = {"large": 2, "xlarge": 4, "2xlarge": 8}  # size -> vCPUs


def _instance_table() -> dict[str, dict[str, str | None]]:
    rows: dict[str, dict[str, str | None]] = {}
    for family in ("t3", "t3a"):
        for size in SIZES:
            rows[f"{family}.{size}"] = {"azure": _T3_AZURE[size], "gcp": _T3_GCP[size]}
    for size in SIZES:
        rows[f"t4g.{size}"] = {"azure": _T4G_AZURE[size], "gcp": _T4G_GCP.get(size)}
    for size, cpu in _BIG.items():
        for family in ("m5", "m6i"):
            rows[f"{family}.{size}"] = {"azure": f"Standard_D{cpu}s_v5", "gcp": f"n2-standard-{cpu}"}
        rows[f"m7g.{size}"] = {"azure": f"Standard_D{cpu}ps_v5", "gcp": f"t2a-standard-{cpu}"}
        for family in ("c5", "c6i"):
            rows[f"{family}.{size}"] = {"azure": f"Standard_F{cpu}s_v2", "gcp": f"c2d-highcpu-{cpu}"}
        for family in ("r5", "r6i"):
            rows[f"{family}.{size}"] = {"azure": f"Standard_E{cpu}s_v5", "gcp": f"n2-highmem-{cpu}"}
    rows["m7g.medium"] = {"azure": None, "gcp": "t2a-standard-1"}  # Azure's Arm general-purpose sizes start at 2 vCPUs
    for word, row in rows.items():
        row["aws"] = word
    return rows


_DB_T_AZURE = {"micro": "Standard_B1ms", "small": "Standard_B2s", "medium": "Standard_B2s", "large": "Standard_B2ms",
               "xlarge": "Standard_B4ms", "2xlarge": "Standard_B8ms"}
_DB_T_GCP = {"micro": "db-g1-small", "small": "db-custom-2-3840", "medium": "db-custom-2-4096", "large": "db-custom-2-8192",
             "xlarge": "db-custom-4-16384", "2xlarge": "db-custom-8-32768"}
_DB_M_GCP = {"large": "db-custom-2-8192", "xlarge": "db-custom-4-16384", "2xlarge": "db-custom-8-32768"}
# Cloud SQL allows at most 6.5 GB per vCPU: memory-optimized classes take more vCPUs to get their memory.
_DB_R_GCP = {"large": "db-custom-4-16384", "xlarge": "db-custom-6-32768", "2xlarge": "db-custom-10-65536"}


def _database_table() -> dict[str, dict[str, str | None]]:
    rows: dict[str, dict[str, str | None]] = {}
    for family in ("t3", "t4g"):  # Azure and Cloud SQL have no Arm databases; a managed database's CPU is not the customer's code
        for size in SIZES[1:]:
            rows[f"db.{family}.{size}"] = {"azure": _DB_T_AZURE[size], "gcp": _DB_T_GCP[size]}
    for size, cpu in _BIG.items():
        for family in ("m5", "m6i"):
            rows[f"db.{family}.{size}"] = {"azure": f"Standard_D{cpu}ds_v5", "gcp": _DB_M_GCP[size]}
        for family in ("r5", "r6i"):
            rows[f"db.{family}.{size}"] = {"azure": f"Standard_E{cpu}ds_v5", "gcp": _DB_R_GCP[size]}
    for word, row in rows.items():
        row["aws"] = word
    return rows


# kind -> word -> cloud -> the cloud's size, or None (unmappable).  Words not in a table are unmappable everywhere but
# on the local target (the vocabulary is every family × size; m5.nano is a word, not a size anyone sells).
TABLE: dict[str, dict[str, dict[str, str | None]]] = {"instance": _instance_table(), "database": _database_table()}
KEYS = {"instance": "instance_type", "database": "instance_class"}

# Database engines each cloud's program and module create (Azure: the PostgreSQL flexible server only).
DATABASE_ENGINES = {"aws": ("postgres", "mysql"), "azure": ("postgres",), "gcp": ("postgres", "mysql")}


def vocabulary(kind: str) -> tuple[str, ...]:
    """Every word the customer file accepts for ``kind`` (``instance`` or ``database``): the JSON Schema's enum."""
    if kind == "instance":
        words = [f"{f}.{s}" for f in INSTANCE_FAMILIES for s in SIZES]
    else:
        words = [f"db.{f}.{s}" for f in DATABASE_FAMILIES for s in SIZES]
    return (*words, *SIZES)


def canonical(kind: str, word: str) -> str:
    """The AWS-style word for ``word``: a portable size is the portable family's (``small`` -> ``t3.small``)."""
    if word in SIZES:
        family = PORTABLE_INSTANCE_FAMILY if kind == "instance" else PORTABLE_DATABASE_FAMILY
        return f"{family}.{word}" if kind == "instance" else f"db.{family}.{word}"
    return word


def size_of(word: str) -> str:
    """The ladder step of a word: ``t3.small``, ``db.t3.small`` and ``small`` are all ``small``."""
    return word.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Resolved:
    """A customer's word on one cloud."""

    word: str  # as written
    canonical: str  # the AWS-style word
    name: str  # the cloud's size name
    shape: Shape | None  # None on the local target for a word no cloud sells


class Unmappable(ValueError):
    """A word with no size on a target; the message names what that target takes."""


def cloud_of(target: str) -> str:
    """The cloud whose sizes a target uses: the local target stands in for AWS."""
    return "aws" if target == "local" else target


def resolve(kind: str, word: str, target: str) -> Resolved:
    """``word`` (``instance`` or ``database`` kind) on ``target``; raises ``Unmappable`` naming the allowed words."""
    word_c = canonical(kind, word)
    cloud = cloud_of(target)
    name = TABLE[kind].get(word_c, {}).get(cloud)
    if name is None:
        if target == "local" and word in vocabulary(kind):
            return Resolved(word, word_c, word_c, None)  # the local target "provisions" any word of the vocabulary
        raise Unmappable(f"{word!r} has no {'instance size' if kind == 'instance' else 'database class'} on {target}"
                         f"{_why(kind, word_c, cloud)}; {KEYS[kind]} on {target} takes: {describe(allowed(kind, target))}")
    return Resolved(word, word_c, name, OFFERED[kind][cloud][name])


def _why(kind: str, word: str, cloud: str) -> str:
    if word not in TABLE[kind]:
        return f" (AWS sells no {word})" if word in vocabulary(kind) else ""
    return f" (no {cloud} size matches its vCPUs, CPU architecture and memory: see docs/CLOUDS.md)"


def allowed(kind: str, target: str) -> tuple[str, ...]:
    """The words ``kind`` takes on ``target``, in vocabulary order."""
    if target == "local":
        return vocabulary(kind)
    cloud = cloud_of(target)
    return tuple(w for w in vocabulary(kind) if TABLE[kind].get(canonical(kind, w), {}).get(cloud))


def describe(words: Iterable[str]) -> str:
    """Words grouped for a person: ``nano, micro, …; t3.{nano,micro,…}, m5.{large,xlarge}, …``."""
    portable = [w for w in words if w in SIZES]
    families: dict[str, list[str]] = {}
    for word in words:
        if word not in SIZES:
            family, size = word.rsplit(".", 1)
            families.setdefault(family, []).append(size)
    grouped = [f"{family}.{{{','.join(sizes)}}}" if len(sizes) > 1 else f"{family}.{sizes[0]}" for family, sizes in families.items()]
    return "; ".join(part for part in (", ".join(portable), ", ".join(grouped)) if part)


# --- database details that are sizes too (what the clouds accept for storage and backups) ----------------------

AZURE_STORAGE_STEPS_GB = (32, 64, 128, 256, 512, 1024, 2048)  # Azure Database for PostgreSQL flexible server's storage sizes
GCP_MIN_STORAGE_GB = 10  # Cloud SQL's smallest disk
AZURE_BACKUP_DAYS = (7, 35)  # a flexible server keeps backups 7-35 days (it cannot turn them off)


def database_storage_gb(cloud: str, gb: int) -> int:
    """The storage the target provisions for ``gb`` requested (rounded up to what the cloud offers)."""
    if cloud == "azure":
        return next(step for step in AZURE_STORAGE_STEPS_GB if step >= gb)
    if cloud == "gcp":
        return max(gb, GCP_MIN_STORAGE_GB)
    return gb


def backup_retention_days(cloud: str, days: int) -> int:
    if cloud == "azure":
        return min(max(days, AZURE_BACKUP_DAYS[0]), AZURE_BACKUP_DAYS[1])
    return days


# --- the docs' table -------------------------------------------------------------------------------------------------

def _cell(kind: str, cloud: str, name: str | None) -> str:
    if name is None:
        return "—"
    shape = OFFERED[kind][cloud][name]
    memory = f"{shape.memory_mib / 1024:g}"
    extra = ", Arm" if shape.arch == ARM else ""
    extra += f", {shape.note}" if shape.note else ""
    return f"`{name}` ({shape.vcpu}/{memory}{extra})"


def markdown_tables() -> str:
    """The table as docs/CLOUDS.md shows it (between its ``sizing-table`` markers); a unit test compares the two."""
    out = []
    for kind, title in (("instance", "`instance_type`"), ("database", "`database.instance_class`")):
        out += [f"**{title}** (vCPUs/GiB of memory; — = unmappable on that cloud: exit 2 naming what it takes)", "",
                "| Portable | Customer file | AWS | Azure | GCP |", "| --- | --- | --- | --- | --- |"]
        for word in (w for w in vocabulary(kind) if w in TABLE[kind]):
            row = TABLE[kind][word]
            family = PORTABLE_INSTANCE_FAMILY if kind == "instance" else f"db.{PORTABLE_DATABASE_FAMILY}"
            portable = f"`{size_of(word)}`" if word.rsplit(".", 1)[0] == family else ""
            out.append(f"| {portable} | `{word}` | " + " | ".join(_cell(kind, c, row.get(c)) for c in CLOUDS) + " |")
        out += ["", f"Any other word of the vocabulary ({'<family>.<size>' if kind == 'instance' else 'db.<family>.<size>'}: "
                f"{', '.join(m.removeprefix('db.') for m in sorted({w.rsplit('.', 1)[0] for w in vocabulary(kind) if '.' in w}))} × "
                f"{', '.join(SIZES)}) is a size no cloud sells: the local target takes it, every cloud refuses it.", ""]
    return "\n".join(out).rstrip() + "\n"
