"""Onboarding and offboarding a customer: the tenant record, its network, its repository's properties.

``plan`` decides everything before anything is written: the customer id and the repository must be
new to the catalog, the network index is the lowest free one (so networks never overlap), and the
record must validate.  ``write_record`` creates ``stacks/<customer>.yml`` atomically and never over
an existing file; a lock on the catalog keeps two onboardings from taking the same index.
GitHub is only read here; the command decides what to write there.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from pydantic import ValidationError

from engine.catalog import Catalog, check_customer_id
from engine.config import REPOSITORY_PATTERN, TenantRecord
from engine.planning import tenant_network
from engine.errors import ConfigError, EngineError, InputError
from engine.documents import dump_yaml, load_text
from engine.validation import validate_tenant_record, validation_problems

MAX_NETWORK_INDEX = 1023  # TenantRecord.network_index's bound: 1,023 /18 tenant networks in the fleet's range


@contextlib.contextmanager
def catalog_lock(catalog: Catalog, timeout: float = 30.0, *, writes: bool = True) -> Iterator[None]:
    """Held while a record is planned and written, so two onboardings never pick the same network index.
    A dry run (``writes=False``) takes no lock and leaves no lock file."""
    if not writes:
        yield
        return
    catalog.stacks_dir.mkdir(parents=True, exist_ok=True)
    with open(catalog.stacks_dir / ".onboard.lock", "w") as lock:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise InputError("another `engine onboard` holds the catalog", hint="try again when it has finished") from None
                time.sleep(0.1)
        yield


def next_network_index(records: list[TenantRecord]) -> int:
    """The lowest index no tenant uses; an ``InputError`` when the address plan is full."""
    used = {r.network_index for r in records}
    for index in range(1, MAX_NETWORK_INDEX + 1):
        if index not in used:
            return index
    raise InputError(f"the address plan is full: all {MAX_NETWORK_INDEX} network indexes are taken",
                     hint="offboard a customer, or give a tenant its own `state`/target outside the shared range")


@dataclass
class OnboardPlan:
    customer: str
    repository: str
    record: TenantRecord
    record_path: Path
    record_text: str
    properties: dict[str, Any]  # the repository's custom properties to set
    network: dict[str, str]

    def to_dict(self) -> dict:
        return {"customer": self.customer, "repository": self.repository, "record_path": str(self.record_path),
                "network_index": self.record.network_index, "network": self.network["cidr"],
                "record": self.record.model_dump(mode="json", exclude_defaults=True), "properties": self.properties}


def _record_text(data: dict[str, Any], actor: str) -> str:
    header = (f"# Tenant record of {data['customer']}: written by `engine onboard` ({actor}, "
              f"{time.strftime('%Y-%m-%d', time.gmtime())}). Reference: docs/CONFIGURATION.md.\n")
    return header + dump_yaml(data)


def plan(catalog: Catalog, customer: str, repository: str, *, tools: list[str], terraform_version: str | None = None,
         target: str = "local", region: str | None = None, config_path: str | None = None, source: str | None = None,
         display_name: str | None = None, actor: str = "unknown") -> OnboardPlan:
    """The record ``engine onboard`` would write.  Refuses (``InputError``, exit 2) a taken id, a repository
    already onboarded, or a full address plan; a record that would not validate is a ``ConfigError``."""
    check_customer_id(customer)
    import re

    if not re.fullmatch(REPOSITORY_PATTERN, repository or ""):
        raise InputError(f"{repository[:80]!r} is not an OWNER/NAME repository")
    path = catalog.stacks_dir / f"{customer}.yml"
    if path.exists():
        raise InputError(f"customer {customer!r} is already onboarded ({catalog._show(path)})", hint="pick another id, or `engine offboard` it first")
    records = catalog.all_records()  # a broken record stops here: it could hide a taken index
    for other in records:
        if other.customer == customer:
            raise InputError(f"customer {customer!r} is already onboarded")
        if other.repository.lower() == repository.lower():
            raise InputError(f"{repository} is already onboarded as customer {other.customer!r}",
                             hint="one tenant per repository; several environments live in one customer file")
    data: dict[str, Any] = {"customer": customer}
    if display_name:
        data["display_name"] = display_name
    data["repository"] = repository
    if config_path:
        data["config_path"] = config_path
    if source:
        data["source"] = source
    data["target"] = target
    if region:
        data["region"] = region
    data["network_index"] = next_network_index(records)
    properties: dict[str, Any] = {"infrastructure_tools": list(tools)}
    if terraform_version:
        properties["terraform_version"] = terraform_version
    data["properties"] = properties
    try:
        record = TenantRecord.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_problems(exc, "engine onboard options", TenantRecord, data)) from None
    catalog.check_unique([*records, record])
    text = _record_text(data, actor)
    if validate_tenant_record(load_text(text, str(path)), path) != record:  # dump_yaml quotes what could be misread
        raise EngineError(f"the tenant record of {customer} would not read back as written (a bug: please report it)")
    wanted = {"infrastructure_tools": list(tools), **({"terraform_version": terraform_version} if terraform_version else {})}
    return OnboardPlan(customer, repository, record, path, text, wanted, {"cidr": tenant_network(record.network_index)})


def write_record(plan: OnboardPlan) -> None:
    """Create the record atomically; never replaces a file (another onboarding may have won the race)."""
    plan.record_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{plan.customer}-", suffix=".tmp", dir=plan.record_path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(plan.record_text)
        os.link(tmp, plan.record_path)  # fails if the record exists: no silent overwrite
    except FileExistsError:
        raise InputError(f"customer {plan.customer!r} was onboarded meanwhile ({plan.record_path.name} exists)") from None
    finally:
        os.unlink(tmp)


@dataclass
class Step:
    """Something a person still has to do, or a check's result."""

    what: str
    done: bool | None  # True done/ok, False not done/failed, None could not be checked
    detail: str = ""

    def to_dict(self) -> dict:
        return {"what": self.what, "done": self.done, "detail": self.detail}
