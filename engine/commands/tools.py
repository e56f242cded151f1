"""``engine tools install|status``: the pinned binaries the engine needs."""

from __future__ import annotations

import click
from engine import toolchain
from engine.commands import Outcome
from engine.commands.options import JSON, Verb, opt

ALL = ("pulumi", "tofu", "actionlint")


def install(names: tuple[str, ...]) -> Outcome:
    """Make sure each tool is available: PATH, cache, download, or a build from the Go module proxy."""
    installed = [toolchain.ensure(n).to_dict() for n in (names or ALL)]
    if not names or "tofu" in names:
        installed.append({"name": "enginelocal", "version": toolchain.PROVIDER_VERSION, "bin_dir": str(toolchain.ensure_provider_mirror()), "source": "go-build"})
    text = "\n".join(f"{t['name']:<11} v{t['version']:<10} {t['bin_dir']}  ({t['source']})" for t in installed)
    return Outcome({"tools": installed}, text)


def status() -> Outcome:
    """Which tools are available, without installing anything."""
    rows = toolchain.status()
    text = "\n".join(f"{r['name']:<11} v{r['version']:<10} " + (f"{r['bin_dir']} ({r['source']})" if r["installed"] else "not installed") for r in rows)
    return Outcome({"tools": rows}, text)


VERBS = (
    Verb("install", install, (JSON, opt("--tool", "names", multiple=True, type=click.Choice(ALL), help="Only this tool (repeatable).")),
         "Make sure each tool is available: PATH, cache, download, or a build from the Go module proxy.", wired=False, group="tools"),
    Verb("status", status, (JSON,), "Show which tools are available, without installing anything.", wired=False, group="tools"),
)
