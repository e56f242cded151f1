"""Concurrent `tofu init`s on one shared plugin cache: `engine preview --all --parallel N` over Terraform
tenants with fresh work dirs, several rounds in a row; counts failed inits and failed stacks.

Every round deletes the stacks' work dirs, so every stack runs `tofu init`; the first round also
starts with an empty plugin cache.  A failed init shows as a failed stack whose error is tofu's
(e.g. "Required plugins are not installed", a crash in `LinkFromOtherCache`).

    .venv/bin/python bench/tofu_init.py --tenants 20 --parallel 20 --rounds 5 --write docs/PERFORMANCE.md
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import engine, machine, make_fleet, write_section  # noqa: E402

INIT_FAILURES = ("Required plugins are not installed", "LinkFromOtherCache", "plugin-cache", "Failed to install provider", "panic")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--parallel", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--write", type=Path, help="update this Markdown file's section")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-tofu-init-") as tmp:
        root = Path(tmp)
        catalog = make_fleet(root, args.tenants, terraform_every=1)
        home = root / "home"
        rows = []
        for attempt in range(args.rounds):
            shutil.rmtree(home / "work", ignore_errors=True)
            if attempt == 0:
                shutil.rmtree(home / "tofu", ignore_errors=True)
            t0 = time.perf_counter()
            proc = engine(home, catalog, "preview", "--all", "--parallel", str(args.parallel), "--json", check=False)
            seconds = time.perf_counter() - t0
            data = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {"summary": {}, "customers": {}}
            errors = [s.get("error") or "" for c in data["customers"].values() for s in (c.get("environments") or {}).values()]
            init_failures = sum(1 for e in errors if any(m in e for m in INIT_FAILURES))
            failed = data["summary"].get("failed", args.tenants * 2)
            rows.append((attempt + 1, seconds, init_failures, failed, data["summary"].get("stacks", 0)))
            print(f"round {attempt + 1}: {seconds:.1f}s, {init_failures} failed inits, {failed} failed stacks", flush=True)

    table = ["| Round | Wall time (s) | Stacks | Failed inits | Failed stacks |", "| ---: | ---: | ---: | ---: | ---: |"]
    table += [f"| {r} | {s:.1f} | {n} | {i} | {f} |" for r, s, i, f, n in rows]
    body = (
        f"`engine preview --all --parallel {args.parallel}` over {args.tenants} OpenTofu tenants ({args.tenants * 2} stacks, local target), "
        f"{args.rounds} rounds in a row, every stack's work dir deleted before each round (so every stack runs `tofu init`), "
        f"the first round with an empty plugin cache; measured on {machine()}.\n\n"
        f"Reproduce: `.venv/bin/python bench/tofu_init.py --tenants {args.tenants} --parallel {args.parallel} --rounds {args.rounds} "
        f"--write docs/PERFORMANCE.md`\n\n" + "\n".join(table) + "\n\n"
        "Before the fix (issue 9, item 12) work dirs got no `.terraform.lock.hcl`, so every init re-installed the provider into "
        "the shared cache, replacing the entry other inits and plans were reading: 20 concurrent inits failed in every trial "
        "(about 12% of inits: tofu's nil pointer in `LinkFromOtherCache`, \"still not detected in …/plugin-cache\", checksum "
        "`lstat` errors) and plans beside them failed with \"Required plugins are not installed\". Now the first init of a "
        "module + binary + provider build runs alone and its lock file is kept; every later init gets that lock file and only "
        "verifies and links (a shared lock), so it never writes the cache. Dropping the shared cache instead would copy the "
        "provider into every work dir (the AWS provider is ~500 MB); serializing every init would cost ~1 s per stack."
    )
    write_section(args.write, "Concurrent tofu init (shared plugin cache)", body)


if __name__ == "__main__":
    main()
