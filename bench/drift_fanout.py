#!/usr/bin/env python3
"""Benchmark: `engine drift --all` over N stacks at 1 worker vs several (bounded parallelism).

Usage (from the repository root, after `make tools`):
    .venv/bin/python bench/drift_fanout.py [--tenants 10] [--workers 1,2,4] [--repeat 2] [--write docs/PERFORMANCE.md]

Builds a throw-away catalog of TENANTS customers × 2 environments (half Pulumi, half
OpenTofu, local target), deploys them once, then times `engine drift --all` for each
worker count (best of --repeat runs) with the real tools.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import engine, machine, make_fleet, speedup_table, timed, write_section  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-drift-"))
    catalog = make_fleet(root, args.tenants, terraform_every=2)
    home = root / "home"
    deploy_s = timed(lambda: engine(home, catalog, "up", "--all", "--parallel", "2", "-q"))
    stacks = args.tenants * 2
    rows = []
    for workers in [int(w) for w in args.workers.split(",")]:
        best = min(timed(lambda: engine(home, catalog, "drift", "--all", "--parallel", str(workers), "--json")) for _ in range(args.repeat))
        rows.append((workers, best))
    table = speedup_table(rows, stacks)
    body = (f"`engine drift --all` over {stacks} stacks ({args.tenants} tenants × 2 environments, half Pulumi, half OpenTofu, "
            f"local target), all in sync, best of {args.repeat} runs, measured on {machine()}. Deploying them first took {deploy_s:.0f} s.\n\n"
            f"Reproduce: `.venv/bin/python bench/drift_fanout.py --tenants {args.tenants} --workers {args.workers} --write docs/PERFORMANCE.md`\n\n"
            f"{table}\n")
    write_section(args.write, "Drift fan-out", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
