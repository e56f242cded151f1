#!/usr/bin/env python3
"""Benchmark: the engine's overhead on a no-op `up` of one stack, against the bare Automation API.

Usage: .venv/bin/python bench/overhead.py [--runs 5] [--write docs/PERFORMANCE.md]

The baseline is the thinnest way to run the same inline program on the same backend:
a Python script that calls `create_or_select_stack(...).up()` — a raw `pulumi up` of a
Python project needs the pulumi-language-python plugin, which cannot be obtained here,
and the engine never uses it (inline programs run in-process). Both run as fresh
processes, alternately, and the medians are compared.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, engine, machine, make_fleet, timed, write_section  # noqa: E402

RAW = textwrap.dedent('''
    import json, os, sys
    from pulumi import automation as auto
    sys.path.insert(0, {repo!r})
    import programs
    target = json.load(open({target!r}))
    run = programs.load(target["program"])
    env = {{"PULUMI_CONFIG_PASSPHRASE": {passphrase!r}, "PULUMI_SKIP_UPDATE_CHECK": "true", "PULUMI_PYTHON_CMD": sys.executable,
           "PATH": {bin_dir!r} + os.pathsep + os.environ["PATH"]}}
    os.makedirs({work!r}, exist_ok=True)
    opts = auto.LocalWorkspaceOptions(work_dir={work!r}, pulumi_home={home!r}, env_vars=env, secrets_provider="passphrase",
        project_settings=auto.ProjectSettings(name=target["project"], runtime="python", backend=auto.ProjectBackend(url=target["backend_url"])),
        pulumi_command=auto.PulumiCommand(root={root!r}))
    stack = auto.create_or_select_stack(stack_name=target["stack"], project_name=target["project"], program=lambda: run(target["config"]), opts=opts)
    result = stack.up()
    assert result.summary.resource_changes.get("create", 0) == 0, result.summary.resource_changes
''')


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    from engine import toolchain

    tool = toolchain.ensure("pulumi")
    root = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    catalog = make_fleet(root, 1, terraform_every=0)
    home = root / "home"
    engine(home, catalog, "up", "bench0", "--env", "staging", "-q")
    target = json.loads(engine(home, catalog, "plan-targets", "bench0", "--env", "staging").stdout)[0]
    (root / "target.json").write_text(json.dumps(target))
    passphrase = (home / "secrets" / "bench0.passphrase").read_text().strip()
    script = root / "raw.py"
    script.write_text(RAW.format(repo=str(REPO), target=str(root / "target.json"), passphrase=passphrase, bin_dir=str(tool.bin_dir),
                                 work=str(root / "raw-work"), home=str(home / "pulumi-home"), root=str(tool.bin_dir.parent)))
    raw_env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}

    def raw() -> None:
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=raw_env)
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-2000:])

    def eng() -> None:
        out = engine(home, catalog, "up", "bench0", "--env", "staging", "--json", "-q").stdout
        changes = json.loads(out)["environments"]["staging"]["changes"]
        assert changes["create"] == changes["update"] == changes["delete"] == 0, changes

    raw()
    eng()  # warm both (page cache, pyc)
    raw_times, engine_times = [], []
    for _ in range(args.runs):
        raw_times.append(timed(raw))
        engine_times.append(timed(eng))
    r, e = statistics.median(raw_times), statistics.median(engine_times)
    body = (f"A no-op `engine up` of one local-target stack (11 resources) against the bare Automation API running the same "
            f"inline program on the same backend (see the script's docstring for why that is the baseline), both as fresh "
            f"processes, alternately, {args.runs} runs each, medians; measured on {machine()}.\n\n"
            f"Reproduce: `.venv/bin/python bench/overhead.py --runs {args.runs} --write docs/PERFORMANCE.md`\n\n"
            f"| | Median (s) | Runs (s) |\n| --- | ---: | --- |\n"
            f"| bare Automation API `up` | {r:.2f} | {', '.join(f'{t:.2f}' for t in raw_times)} |\n"
            f"| `engine up --env staging` | {e:.2f} | {', '.join(f'{t:.2f}' for t in engine_times)} |\n"
            f"| **engine / bare** | **{e / r:.2f}×** ({(e / r - 1) * 100:+.0f}%) | |\n")
    write_section(args.write, "Engine overhead on a no-op up", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
