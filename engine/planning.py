"""Target planning: configuration in, stack targets out.  Pure — no I/O, no tools.

A *target* is one customer × environment: which tool runs it, which program,
which backend holds its state, and the exact stack configuration.  Everything the
runners need is decided here, so it can be tested in milliseconds and reviewed as
data (``engine plan-targets`` prints it).
"""

from __future__ import annotations

import functools
import ipaddress
import posixpath
import re
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import SplitResult, quote, urlsplit, urlunsplit

from engine.config import (INSTANCE_SHAPES, REVIEW_ENVIRONMENT_PATTERN, REVIEW_SLOTS, CustomerConfig, Database, Monitoring, TenantRecord,
                           network_slot, state_url_problem)
from engine import clouds, sizing
from engine.documents import format_key_path
from engine.errors import ConfigError, InputError, Problem

MANAGED_BY = "managed-infra-engine"
_FLEET_NET = ipaddress.ip_network("10.0.0.0/8")
_FLEET_BASE = int(_FLEET_NET.network_address)


@dataclass(frozen=True)
class Settings:
    """Where the engine keeps things on this machine (decided by the caller, not by planning)."""

    state_root: str  # default file:// state lives under here, one folder per customer
    local_root: str  # the local target's "cloud": real resources live under here


@dataclass(frozen=True)
class UpstreamRef:
    """One upstream stack: resolved by the engine (its outputs are read before this target runs)."""

    customer: str
    environment: str
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class StackTarget:
    """One customer × environment, fully resolved."""

    customer: str
    environment: str
    tool: str  # "pulumi" | "terraform"
    program: str  # the tenant's target: "local" | "aws" | "azure" | "gcp"
    project: str
    stack: str
    backend_url: str
    config: dict[str, Any] = field(hash=False)
    tool_version: str | None = None  # terraform_version for the Terraform path
    post_steps: tuple[str, ...] = ()  # run after a successful `up`, e.g. ("ansible",)
    upstreams: tuple[UpstreamRef, ...] = ()  # other tenants' stacks whose outputs this one receives

    @property
    def fqn(self) -> str:
        return f"{self.customer}/{self.environment}"

    def to_dict(self) -> dict:
        return asdict(self)


def backend_url(tenant: TenantRecord, settings: Settings) -> str:
    """The customer's own state location, ``<state root or the record's state.url>/<customer>``: never shared.

    The default is percent-encoded, because the tools decode it: a state root with a space, '%' or '?' in
    its name is read back as exactly that directory.  Raises ``InputError`` if the path, decoded, could
    lead anywhere but ``<base>/<customer>``.
    """
    if tenant.state is None:
        parts = _default_state_base(settings.state_root)
    else:
        parts = urlsplit(tenant.state.url)
    url = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + "/" + tenant.customer, parts.query, ""))
    problem = state_url_problem(url)
    if problem:
        raise InputError(f"the state location of {tenant.customer!r} is refused: {problem}",
                         hint="the state root (ENGINE_HOME) or the tenant record's state.url must be a plain directory path")
    return url


@functools.lru_cache(maxsize=16)
def _default_state_base(state_root: str) -> SplitResult:
    """``file://<state root, normalized and percent-encoded>``, split (the same for every tenant)."""
    root = posixpath.normpath(state_root)
    return urlsplit("file://" + quote(root if root != "/" else ""))


def network_plan(network_index: int, slot: int) -> dict[str, Any]:
    """CIDRs for one environment: tenant /18 of 10.0.0.0/8 by index, environment /22 by slot, four /24 subnets.

    Room for 1,023 tenants × 16 environments.  Distinct (index, slot) pairs never overlap, and the
    catalog guarantees index uniqueness.
    """
    base = _FLEET_BASE + network_index * 2**14 + slot * 2**10  # /18 = 2^14 addresses, /22 = 2^10
    subnets = [_cidr(base + i * 256, 24) for i in range(4)]
    return {
        "vpc_cidr": _cidr(base, 22),
        "public_subnets": subnets[:2],
        "private_subnets": subnets[2:],
    }


def tenant_network(network_index: int) -> str:
    """The tenant's whole /18: every environment's /22 (``network_plan``) lies inside it."""
    return _cidr(_FLEET_BASE + network_index * 2**14, 18)


def _cidr(address: int, prefix: int) -> str:
    """``a.b.c.d/prefix``; ``address`` is the network's first address (what ``str(ip_network((address, prefix)))``
    gives, without building the network)."""
    return f"{address >> 24}.{address >> 16 & 255}.{address >> 8 & 255}.{address & 255}/{prefix}"  # dotted quad, as ipaddress writes it


def _database(env_db: Database | None, default: Database | None) -> dict | None:
    db = env_db if env_db is not None else default
    if db is None or not db.enabled:
        return None
    return db.model_dump(exclude={"enabled"})


def _monitoring(env_mon: Monitoring | None, default: Monitoring | None) -> dict | None:
    mon = env_mon if env_mon is not None else default
    if mon is None or not mon.enabled:
        return None
    return mon.model_dump(exclude={"enabled"})


def select_tool(tenant: TenantRecord) -> str:
    """Terraform-tagged customers keep the Terraform path; everyone else gets Pulumi."""
    return "terraform" if "terraform" in tenant.properties.infrastructure_tools else "pulumi"


def plan_targets(
    tenant: TenantRecord,
    customer: CustomerConfig,
    settings: Settings,
    environments: list[str] | None = None,
) -> list[StackTarget]:
    """Resolve the stack targets for ``tenant``.

    ``environments`` selects a subset (in the customer file's order); an unknown name
    raises ``InputError``.
    """
    names = list(customer.environments)
    if environments:
        unknown = [e for e in environments if e not in customer.environments]
        if unknown:
            raise InputError(
                f"customer {tenant.customer!r} has no environment {unknown[0]!r}",
                hint=f"its environments are: {', '.join(names)}",
            )
        names = [n for n in names if n in environments]

    unplannable = clouds.problems(customer, tenant.target)
    if unplannable:  # reading the file with the tenant's target refuses these with their lines first; this is the backstop
        raise ConfigError([Problem(tenant.config_path, None, format_key_path(path), reason) for path, reason in unplannable])
    tool = select_tool(tenant)
    url = backend_url(tenant, settings)
    targets = []
    for name in names:
        env = customer.environments[name]
        slot = network_slot(name, env)
        assert slot is not None  # guaranteed by CustomerConfig validation
        if tenant.review_stacks and slot in REVIEW_SLOTS and not re.fullmatch(REVIEW_ENVIRONMENT_PATTERN, name):
            raise InputError(
                f"environment {name!r} of {tenant.customer!r} uses network slot {slot}, which is reserved for review stacks "
                f"(slots {REVIEW_SLOTS[0]}-{REVIEW_SLOTS[-1]}: review_stacks is on in stacks/{tenant.customer}.yml)",
                hint=f"give it a network_slot below {REVIEW_SLOTS[0]} in the customer file, or turn review_stacks off",
            )
        vcpu, memory = INSTANCE_SHAPES[sizing.size_of(env.instance_type)]  # the requested shape, the same on every target
        tags = {**customer.tags, "customer": tenant.customer, "environment": name, "managed-by": MANAGED_BY}
        config = {
            "upstream": {},  # filled by the engine with the upstream stacks' outputs just before the run
            "customer": tenant.customer,
            "environment": name,
            "project_name": customer.project_name,
            "region": tenant.region,
            **clouds.instance_settings(tenant.target, env.instance_type),  # the target's size for the customer's word
            "instance_count": env.instance_count,
            "instance_vcpu": vcpu,
            "instance_memory_mib": memory,
            "volume_size_gb": env.volume_size_gb,
            "network": network_plan(tenant.network_index, slot),
            "database": clouds.database_settings(tenant.target, _database(env.database, customer.database)),
            "monitoring": _monitoring(env.monitoring, customer.monitoring),
            "tags": clouds.cloud_tags(tenant.target, dict(sorted(tags.items()))),
        }
        if tenant.target == "local":
            config["local_root"] = f"{settings.local_root.rstrip('/')}/{tenant.customer}/{name}"
        targets.append(
            StackTarget(
                customer=tenant.customer,
                environment=name,
                tool=tool,
                program=tenant.target,
                project=tenant.customer,
                stack=name,
                backend_url=url,
                config=config,
                tool_version=tenant.properties.terraform_version if tool == "terraform" else None,
                post_steps=("ansible",) if "ansible" in tenant.properties.infrastructure_tools else (),
                upstreams=tuple(UpstreamRef(u.customer, u.environment or name, tuple(u.outputs)) for u in tenant.consumes),
            )
        )
    return targets

