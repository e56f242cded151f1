"""Which customers a fleet command works on: named ones, every one (--all), or those a change affects."""

from __future__ import annotations

from pathlib import Path

from engine import fanout
from engine.catalog import check_customer_id
from engine.errors import InputError
from engine.operations import Engine


def select_customers(engine: Engine, customers: tuple[str, ...] | list[str], all_customers: bool, changed_from: Path | None) -> list[str]:
    """Named customers, every customer (--all), or those affected by a list of changed files."""
    if all_customers:
        return [r.customer for r in engine.catalog.all_records()]
    if changed_from is not None:
        try:
            paths = changed_from.read_text().splitlines()
        except OSError as exc:
            raise InputError(f"cannot read {changed_from}: {exc.strerror}") from None
        return fanout.changed_customers(engine.catalog, paths)
    return [check_customer_id(c) for c in customers]
