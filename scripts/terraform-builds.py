#!/usr/bin/env python3
"""Survey which HashiCorp Terraform release lines the engine can build here, newest patch first.

For each release line (``--lines 1.6-1.16``) it asks the Go module proxy, from the highest patch
down (``--max-patch``), for the first release that it serves *completely*: the module itself and,
for Terraform 1.9 and later, the modules nested in its repository (state backends,
``internal/legacy``) at the release's own commit.  Then it builds that release into the engine's
tool cache (``engine.toolchain.ensure``: the same lock and atomic install as every engine) and
times it.  The result is the table to pin as ``TERRAFORM_BUILDS`` in engine/toolchain.py and the
reasons for ``TERRAFORM_NOT_BUILDABLE``; docs/CONFIGURATION.md records the last survey.

    .venv/bin/python scripts/terraform-builds.py --lines 1.6-1.16            # survey and build
    .venv/bin/python scripts/terraform-builds.py --lines 1.14 --no-build     # only what the proxy serves

Builds take minutes each on two cores: run it in the background, one line at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import toolchain  # noqa: E402
from engine.errors import ToolchainError  # noqa: E402

PROXY = (os.environ.get("GOPROXY") or "https://proxy.golang.org").split(",")[0].split("|")[0].rstrip("/")


def get(path: str) -> bytes | None:
    try:
        with urllib.request.urlopen(f"{PROXY}/{path}", timeout=30) as resp:  # noqa: S310 - the Go module proxy
            return resp.read()
    except (urllib.error.URLError, TimeoutError):
        return None


def zip_served(module: str, version: str) -> bool:
    request = urllib.request.Request(f"{PROXY}/{toolchain._escape_module(module)}/@v/{version}.zip", method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=30):  # noqa: S310 - the Go module proxy
            return True
    except (urllib.error.URLError, TimeoutError):
        return False


def served(module: str, version: str) -> dict | None:
    body = get(f"{toolchain._escape_module(module)}/@v/{version}.info")
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def complete_release(line: str, max_patch: int, listed_nested: dict[str, list[str]]) -> tuple[str | None, list[str]]:
    """The newest patch of ``line`` the proxy serves with every nested module; and why the newer ones are not."""
    notes: list[str] = []
    for patch in range(max_patch, -1, -1):
        version = f"{line}.{patch}"
        info = served(toolchain.TERRAFORM_MODULE, f"v{version}")
        if info is None:
            continue
        gomod = get(f"github.com/hashicorp/terraform/@v/v{version}.mod")
        if gomod is None or not zip_served(toolchain.TERRAFORM_MODULE, f"v{version}"):
            notes.append(f"v{version}: the proxy serves its .info but not its {'go.mod' if gomod is None else 'source zip'}")
            continue
        missing = []
        for nested in toolchain.parse_local_replaces(gomod.decode()):
            if nested not in listed_nested:
                listed_nested[nested] = (get(f"{toolchain._escape_module(nested)}/@v/list") or b"").decode().split()
            candidates = toolchain.nested_module_versions(info, listed_nested[nested])
            if not any(served(nested, c) for c in candidates):
                missing.append(nested.rsplit("/", 1)[-1])
                break  # one missing nested module is enough to rule the release out
        if missing:
            why = "its commit is not recorded by the proxy" if not (info.get("Origin") or {}).get("Hash") else "not served at its commit"
            notes.append(f"v{version}: nested module {missing[0]} {why}")
            continue
        return version, notes
    return None, notes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", default="1.6-1.16", help="release lines: 1.6-1.16, or a comma list")
    parser.add_argument("--max-patch", type=int, default=12, help="the highest patch number to ask the proxy for")
    parser.add_argument("--no-build", action="store_true", help="only report what the proxy serves")
    args = parser.parse_args()
    lines: list[str] = []
    for part in args.lines.split(","):
        if "-" in part:
            low, high = part.split("-")
            major = low.split(".")[0]
            lines += [f"{major}.{m}" for m in range(int(low.split(".")[1]), int(high.split(".")[1]) + 1)]
        else:
            lines.append(part)
    nested: dict[str, list[str]] = {}
    report = []
    toolchain._on_path = lambda name, version: None  # a survey of builds: a terraform on PATH proves nothing
    for line in lines:
        version, notes = complete_release(line, args.max_patch, nested)
        row = {"line": line, "version": version, "skipped": notes}
        if version and not args.no_build:
            started = time.monotonic()
            try:
                tool = toolchain.ensure("terraform", version=version, progress=lambda m: print(f"  {m}", file=sys.stderr, flush=True))
                row.update(built=True, source=tool.source)
            except ToolchainError as exc:
                row.update(built=False, reason=" ".join(exc.message.split())[:600])
            row["seconds"] = round(time.monotonic() - started)
        report.append(row)
        print(json.dumps(row), flush=True)
    table = {r["line"]: r["version"] for r in report if r["version"] and r.get("built", args.no_build)}
    print("TERRAFORM_BUILDS = " + json.dumps(table, indent=4))
    return 0


if __name__ == "__main__":
    sys.exit(main())
