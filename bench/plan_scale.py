#!/usr/bin/env python3
"""Benchmark: load + validate + plan targets for 1,000 tenant records (no tools run).

Usage: .venv/bin/python bench/plan_scale.py [--tenants 1000] [--write docs/PERFORMANCE.md]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, make_fleet, timed, write_section  # noqa: E402
from engine.catalog import Catalog  # noqa: E402
from engine.home import EngineHome  # noqa: E402
from engine.operations import Engine  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-plan-"))
    catalog = make_fleet(root, args.tenants, terraform_every=3)
    engine = Engine(catalog=Catalog(catalog), home=EngineHome(root / "home"), runners=lambda _t: None)
    records = []
    load_s = timed(lambda: records.extend(engine.catalog.customer_ids()))
    targets: list = []
    plan_s = timed(lambda: [targets.extend(engine.plan(c)) for c in records])
    body = (f"Load + validate + plan targets for {args.tenants} tenant records ({len(targets)} stack targets; each tenant record and "
            f"customer file read from disk, parsed with the safe loader and validated with the strict models), in one process, "
            f"measured on {machine()}.\n\nReproduce: `.venv/bin/python bench/plan_scale.py --tenants {args.tenants} --write docs/PERFORMANCE.md`\n\n"
            f"| Step | Wall time | Per tenant |\n| --- | ---: | ---: |\n"
            f"| list the catalog | {load_s * 1000:.0f} ms | {load_s / args.tenants * 1e6:.0f} µs |\n"
            f"| load, validate and plan every tenant (incl. one catalog-wide uniqueness check) | {plan_s:.2f} s | {plan_s / args.tenants * 1000:.2f} ms |\n")
    write_section(args.write, "Planning 1,000 tenants", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
