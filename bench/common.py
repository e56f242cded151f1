"""Shared by the benchmark scripts: a throw-away fleet, running the real CLI, writing docs/PERFORMANCE.md."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
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
TF_PROPS = 'properties:\n  infrastructure_tools: [terraform]\n  terraform_version: "1.6"\n'


def make_fleet(root: Path, tenants: int, terraform_every: int = 2) -> Path:
    """A catalog of ``tenants`` customers × 2 environments; every ``terraform_every``-th on OpenTofu (0: none)."""
    catalog = root / "catalog"
    (catalog / "stacks").mkdir(parents=True, exist_ok=True)
    for i in range(tenants):
        tf = terraform_every and i % terraform_every == terraform_every - 1
        (catalog / "stacks" / f"bench{i}.yml").write_text(
            f"customer: bench{i}\nrepository: bench/app{i}\nsource: customers/bench{i}\ntarget: local\n"
            f"network_index: {i + 1}\n" + (TF_PROPS if tf else ""))
        path = catalog / "customers" / f"bench{i}" / "infra" / "variables.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(CONFIG.format(i=i))
    return catalog


def engine(home: Path, catalog: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "ENGINE_HOME": str(home), "ENGINE_CATALOG": str(catalog)}
    proc = subprocess.run([sys.executable, str(REPO / "cli.py"), *args], capture_output=True, text=True, env=env, cwd=catalog)
    if check and proc.returncode != 0:
        raise SystemExit(f"engine {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}"


def write_section(path: Path | None, title: str, body: str) -> None:
    """Print the section and, with a path, replace (or append) ``## title`` in that Markdown file."""
    section = f"## {title}\n\n{body.strip()}\n"
    print(section)
    if path is None:
        return
    text = path.read_text() if path.exists() else "# Performance\n\nNumbers come from the scripts in `bench/`; never from timed tests.\n"
    pattern = re.compile(rf"## {re.escape(title)}\n.*?(?=\n## |\Z)", re.S)
    text = pattern.sub(section.rstrip("\n") + "\n", text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def speedup_table(rows: list[tuple[int, float]], stacks: int) -> str:
    """Markdown: wall time, throughput and speed-up per worker count (the first row is the baseline)."""
    base = rows[0][1]
    lines = ["| Workers | Wall time (s) | Stacks/s | Speed-up vs 1 worker |", "| ---: | ---: | ---: | ---: |"]
    lines += [f"| {w} | {s:.1f} | {stacks / s:.2f} | {base / s:.2f}× |" for w, s in rows]
    return "\n".join(lines)
