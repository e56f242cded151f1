#!/usr/bin/env python3
"""Benchmark: `engine drift --all` over N stacks at 1 worker vs several (bounded parallelism).

Usage (from the repository root, after `make tools`):
    .venv/bin/python bench/drift_fanout.py [--tenants 10] [--workers 1,2,4] [--write docs/PERFORMANCE.md]

Builds a throw-away catalog of TENANTS customers × 2 environments (half Pulumi, half
OpenTofu, local target), deploys them once, then times `engine drift --all` for each
worker count (best of --repeat runs) with the real tools. Prints a Markdown table and,
with --write, replaces the "Drift fan-out" section of the given file.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONFIG = """project_name: bench-{i}
environments:
  staging:
    instance_type: t3.micro
  production:
    instance_type: t3.small
"""


def engine(home: Path, catalog: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ENGINE_HOME": str(home), "ENGINE_CATALOG": str(catalog)}
    return subprocess.run([sys.executable, str(REPO / "cli.py"), *args], capture_output=True, text=True, env=env, cwd=catalog)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-drift-"))
    catalog, home = work / "catalog", work / "home"
    (catalog / "stacks").mkdir(parents=True)
    for i in range(args.tenants):
        tf = i % 2 == 1
        props = 'properties:\n  infrastructure_tools: [terraform]\n  terraform_version: "1.6"\n' if tf else ""
        (catalog / "stacks" / f"bench{i}.yml").write_text(
            f"customer: bench{i}\nrepository: bench/app{i}\nsource: customers/bench{i}\ntarget: local\nnetwork_index: {i + 1}\n{props}")
        path = catalog / "customers" / f"bench{i}" / "infra" / "variables.yml"
        path.parent.mkdir(parents=True)
        path.write_text(CONFIG.format(i=i))

    started = time.monotonic()
    for i in range(args.tenants):
        run = engine(home, catalog, "up", f"bench{i}", "-q")
        if run.returncode != 0:
            print(run.stdout, run.stderr, file=sys.stderr)
            return 1
    deploy_s = time.monotonic() - started
    stacks = args.tenants * 2

    rows = []
    for workers in [int(w) for w in args.workers.split(",")]:
        best = None
        for _ in range(args.repeat):
            t0 = time.monotonic()
            run = engine(home, catalog, "drift", "--all", "--parallel", str(workers), "--json")
            elapsed = time.monotonic() - t0
            if run.returncode != 0:
                print(run.stdout[-2000:], run.stderr[-2000:], file=sys.stderr)
                return 1
            best = elapsed if best is None else min(best, elapsed)
        rows.append((workers, best))
    base = rows[0][1]
    table = ["| Workers | Wall time (s) | Stacks/s | Speed-up vs 1 worker |", "| ---: | ---: | ---: | ---: |"]
    for workers, secs in rows:
        table.append(f"| {workers} | {secs:.1f} | {stacks / secs:.2f} | {base / secs:.2f}× |")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    section = (f"## Drift fan-out\n\n`engine drift --all` over {stacks} stacks ({args.tenants} tenants × 2 environments, half Pulumi, "
               f"half OpenTofu, local target), all in sync, best of {args.repeat} runs, measured {time.strftime('%Y-%m-%d')} on {machine}. "
               f"Deploying them first took {deploy_s:.0f} s.\n\nReproduce: `.venv/bin/python bench/drift_fanout.py --tenants {args.tenants} "
               f"--workers {args.workers} --write docs/PERFORMANCE.md`\n\n" + "\n".join(table) + "\n")
    print(section)
    if args.write:
        text = args.write.read_text() if args.write.exists() else "# Performance\n\nNumbers come from the scripts in `bench/`; never from timed tests.\n\n"
        if "## Drift fan-out" in text:
            text = re.sub(r"## Drift fan-out\n.*?(?=\n## |\Z)", section.rstrip("\n") + "\n", text, flags=re.S)
        else:
            text = text.rstrip("\n") + "\n\n" + section
        args.write.write_text(text)
    engine(home, catalog, "drift", "--all")  # leave nothing running
    return 0


if __name__ == "__main__":
    sys.exit(main())
