#!/usr/bin/env python3
"""Benchmark: fleet fan-out throughput — `engine up --all` over 40 stacks at 1, 2, 4 and 8 workers.

Usage: .venv/bin/python bench/fanout_throughput.py [--tenants 20] [--workers 1,2,4,8] [--write docs/PERFORMANCE.md]

20 tenants × 2 environments (one in three on OpenTofu, the rest Pulumi; local target) are
deployed once; then each worker count runs a no-op `engine up --all` (every stack is
planned against its state and found unchanged), one run each, wall time measured.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import engine, machine, make_fleet, speedup_table, timed, write_section  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--workers", default="1,2,4,8")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    catalog = make_fleet(root, args.tenants, terraform_every=3)
    home = root / "home"
    deploy_s = timed(lambda: engine(home, catalog, "up", "--all", "--parallel", "4", "-q"))
    stacks = args.tenants * 2
    rows = []
    for workers in [int(w) for w in args.workers.split(",")]:
        out: list[str] = []
        secs = timed(lambda: out.append(engine(home, catalog, "up", "--all", "--parallel", str(workers), "--json", "-q").stdout))
        summary = json.loads(out[0])["summary"]
        assert summary["succeeded"] == stacks, summary
        rows.append((workers, secs))
    table = speedup_table(rows, stacks)
    body = (f"No-op `engine up --all` over {stacks} stacks ({args.tenants} tenants × 2 environments, one in three on OpenTofu, "
            f"local target), each customer in its own process; one run per worker count; measured on {machine()}. "
            f"Deploying them first (4 workers) took {deploy_s:.0f} s.\n\n"
            f"Reproduce: `.venv/bin/python bench/fanout_throughput.py --tenants {args.tenants} --workers {args.workers} --write docs/PERFORMANCE.md`\n\n"
            f"{table}\n\n"
            f"On 2 cores the curve flattens past 2 workers: each stack is CPU-bound (Python program, pulumi engine, provider "
            f"process); more workers only help when stacks wait on a remote API, as real cloud stacks do.")
    write_section(args.write, "Fan-out throughput", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
