"""The tenant catalog: the provider's list of onboarded customers (``stacks/*.yml``).

A customer id typed on the command line or arriving in an event is checked against
the id pattern *before* it is used to build a path, so ``../other`` or ``a;rm`` can
never reach the file system.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Generic, TypeVar

from engine.config import CUSTOMER_ID_PATTERN, CustomerConfig, TenantRecord
from engine.clouds import problems as target_problems
from engine.validation import check_on_target, validate_document, validate_tenant_record
from engine.documents import Document, load_file, load_text, read_file
from engine.errors import ConfigError, InputError, Problem, UnknownCustomerError

_ID = re.compile(CUSTOMER_ID_PATTERN)


def check_customer_id(value: str) -> str:
    """Return ``value`` if it is a well-formed customer id; raise ``InputError`` otherwise."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        shown = value if isinstance(value, str) and len(value) <= 40 and value.isprintable() else "(value not shown)"
        raise InputError(
            f"{shown!r} is not a valid customer id",
            hint="customer ids are 2-32 characters: lower-case letters, digits and '-', starting with a letter",
        )
    return value


T = TypeVar("T")


@functools.lru_cache(maxsize=8192)
def _joined(base: Path, relative: str) -> Path:
    """``base / relative``, built once: pathlib parses every part again on each join, for each of a fleet's files."""
    return base / relative


class _Validated(Generic[T]):
    """Validated files by path, reused only while the file holds the same bytes.

    Planning a fleet asks for the same tenant record several times (the catalog-wide check, the
    tenant itself, its upstreams).  Every request still reads the file (so an edit is always
    seen); only parsing and validating unchanged bytes again is skipped, and their result is a
    frozen model.  A file with a problem is never kept: it is parsed again and raises again.
    """

    def __init__(self, build: Callable[[Document, Path], T]):
        self._build = build
        self._entries: dict[str, tuple[bytes, T]] = {}  # by str(path): hashing a Path is slower

    def load(self, path: Path, shown: str) -> T:
        raw = read_file(path, shown)
        entry = self._entries.get(str(path))
        if entry is not None and entry[0] == raw:
            return entry[1]
        value = self._build(load_text(raw, shown), path)
        self._entries[str(path)] = (raw, value)  # one dict store: safe when threads share the catalog
        return value


@dataclass(frozen=True)
class Tenant:
    """A tenant record together with the customer file it points at."""

    record: TenantRecord
    config: CustomerConfig
    record_path: Path
    config_path: Path


class Catalog:
    """Tenant records under ``<root>/stacks``; customer files resolved relative to ``root``."""

    def __init__(self, root: Path | str):
        self.root = Path(root).resolve()
        self.stacks_dir = self.root / "stacks"
        self._records: _Validated[TenantRecord] = _Validated(validate_tenant_record)
        self._configs: _Validated[CustomerConfig] = _Validated(lambda doc, _path: validate_document(doc, CustomerConfig))

    def customer_ids(self) -> list[str]:
        if not self.stacks_dir.is_dir():
            return []
        return sorted(p.stem for p in self.stacks_dir.glob("*.yml") if _ID.fullmatch(p.stem))

    def record(self, customer: str) -> TenantRecord:
        """Load the tenant record of ``customer``.  Raises ``UnknownCustomerError`` or ``ConfigError``."""
        return self._record(customer)[0]

    def _record(self, customer: str) -> tuple[TenantRecord, Path]:
        check_customer_id(customer)
        path = _joined(self.stacks_dir, f"{customer}.yml")
        try:
            return self._records.load(path, self._show(path)), path
        except ConfigError:
            if path.is_file():
                raise
        known = self.customer_ids()  # no tenant record (the read's stat() said so; asked again only then)
        raise UnknownCustomerError(
            f"unknown customer {customer!r}: no tenant record {self._show(path)}",
            hint=f"onboarded customers: {', '.join(known)}" if known else "no customers are onboarded yet (stacks/ is empty)",
        )

    def load(self, customer: str) -> Tenant:
        """Load the tenant record and its customer file (from the record's local ``source``)."""
        record, record_path = self._record(customer)
        if record.source is None:
            raise InputError(
                f"tenant {customer!r} has no local 'source'; its customer file lives in {record.repository}",
                hint="run it from a GitHub event, or set 'source' in the tenant record to a local checkout",
            )
        path = self._customer_file(record, record_path)
        shown = self._show(path)
        config = self._configs.load(path, shown)
        if target_problems(config, record.target):  # what the tenant's target cannot provide: read again for the lines
            check_on_target(config, record.target, load_text(read_file(path, shown), shown))
        return Tenant(record=record, config=config, record_path=record_path, config_path=path)

    def _customer_file(self, record: TenantRecord, record_path: Path) -> Path:
        """The customer file, resolved inside the tenant's own source directory ``<root>/<source>``.

        Symbolic links are followed only while they stay inside that directory.  A checkout (its
        ``infra/`` folder, or the file itself) that links elsewhere could make this tenant deploy
        another tenant's customer file, so it is a ``ConfigError`` naming the record's key and line.
        """
        own = _joined(self.root, record.source)  # root is resolved; source has no '.' or '..' segments (validated)
        # One resolve for the common case.  The resolved file can only lie under `own` if no part of `own`
        # is a link (the resolved path holds no links, except around a link loop, which resolve() raises
        # on); so `own` itself is resolved only when the file is not under it, to tell which key to blame.
        try:
            path = _joined(own, record.config_path).resolve()
        except RuntimeError:  # a link loop (Python < 3.13 raises RuntimeError, later OSError): bad input, not a crash
            key = "config_path" if "config_path" in record.model_fields_set else "source"
            try:
                own.resolve()
            except RuntimeError:
                key = "source"
            raise self._link_error(record_path, key, "the customer file's path is a loop of symbolic links") from None
        if path.parts[: len(own.parts)] == own.parts:  # path.is_relative_to(own), both absolute, without building paths
            return path
        if own.resolve() != own:
            link, target = self._first_link(self.root, record.source)
            raise self._link_error(record_path, "source", f"{link} is a symbolic link (to {target}); a tenant's source "
                                   "must be a directory of its own in the catalog, not a link to one")
        link, target = self._first_link(own, record.config_path)
        key = "config_path" if "config_path" in record.model_fields_set else "source"
        raise self._link_error(record_path, key, f"{link} is a symbolic link to {target}, outside the tenant's source "
                               f"directory {record.source}; a customer file is read from the tenant's own checkout only")

    def _first_link(self, base: Path, relative: str) -> tuple[str, str]:
        """The first symbolic link on ``base/relative`` and where it leads, as shown in errors."""
        current = base
        for part in Path(relative).parts:
            current = current / part
            if current.is_symlink():
                target = current.resolve()
                shown = str(target.relative_to(self.root)) if target.is_relative_to(self.root) else f"{target} (outside the catalog)"
                return str(current.relative_to(self.root)), shown
        return relative, str((base / relative).resolve())

    def _link_error(self, record_path: Path, key: str, reason: str) -> ConfigError:
        shown = self._show(record_path)
        try:
            line = load_file(record_path, shown).line_of((key,))
        except ConfigError:
            line = None
        return ConfigError([Problem(shown, line, key, reason)])

    def check_unique(self, records: list[TenantRecord]) -> None:
        """Network indexes must be unique across the catalog, or CIDRs would overlap; and no tenant's local
        source may lie inside another's, or one customer's checkout could hold (and change) the other's file."""
        seen: dict[int, str] = {}
        for rec in records:
            other = seen.get(rec.network_index)
            if other is not None:
                path = self._show(self.stacks_dir / f"{rec.customer}.yml")
                raise ConfigError([Problem(path, None, "network_index", f"network_index {rec.network_index} is already used by customer {other!r}")])
            seen[rec.network_index] = rec.customer
        sources = sorted((rec.source.strip("/") + "/", rec.customer) for rec in records if rec.source)
        for (outer, owner), (inner, customer) in zip(sources, sources[1:]):
            if inner.startswith(outer):
                path = self._show(self.stacks_dir / f"{customer}.yml")
                raise ConfigError([Problem(path, None, "source", f"source {inner.rstrip('/')!r} lies inside customer {owner!r}'s "
                                           f"source {outer.rstrip('/')!r}; each tenant needs a directory of its own")])

    def all_records(self) -> list[TenantRecord]:
        records = [self.record(c) for c in self.customer_ids()]
        self.check_unique(records)
        return records

    def _show(self, path: Path) -> str:
        """``path`` (absolute: under the resolved root) relative to the working directory when it is
        below it, else as it is: ``Path.relative_to(Path.cwd())``, as strings (it is asked for every file read)."""
        text, cwd = str(path), os.getcwd()
        if text == cwd:
            return "."
        prefix = cwd.rstrip("/") + "/"
        return text[len(prefix):] if text.startswith(prefix) else text
