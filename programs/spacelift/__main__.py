"""The tenant's Pulumi program, as Spacelift runs it: the same program the engine's own Pulumi runner runs.

The engine's runners run ``programs.local`` or ``programs.aws`` inline with the planner's settings for one
customer × environment.  Spacelift runs ``pulumi`` in this project root instead, so this entry point reads
the same settings from the stack's environment variables, which ``engine spacelift sync`` sets from the
validated customer file:

* ``ENGINE_SETTINGS`` — the program's settings as JSON (the planner's, without upstream outputs);
* ``ENGINE_PROGRAM`` — which program: ``local``, ``aws``, ``azure`` or ``gcp`` (the tenant record's ``target``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pulumi

REPOSITORY = Path(__file__).resolve().parents[2]  # programs/spacelift/__main__.py -> the manager repository
if str(REPOSITORY) not in sys.path:
    sys.path.insert(0, str(REPOSITORY))

import programs  # noqa: E402 - after the repository is on sys.path


def settings(environ: dict[str, str]) -> tuple[str, dict]:
    """``(program, settings)`` from the stack's environment; ``pulumi.RunError`` naming what is missing."""
    program = environ.get("ENGINE_PROGRAM", "")
    if program not in programs.TARGETS:
        raise pulumi.RunError(f"ENGINE_PROGRAM is {program!r}; expected one of {', '.join(programs.TARGETS)} "
                              "(engine spacelift sync sets it on the stack)")
    try:
        config = json.loads(environ["ENGINE_SETTINGS"])
    except KeyError:
        raise pulumi.RunError("ENGINE_SETTINGS is not set (engine spacelift sync sets it on the stack)") from None
    except ValueError as exc:
        raise pulumi.RunError(f"ENGINE_SETTINGS is not JSON: {exc}") from None
    if not isinstance(config, dict) or config.get("customer") != pulumi.get_project():
        raise pulumi.RunError(f"ENGINE_SETTINGS is for customer {config.get('customer') if isinstance(config, dict) else None!r}, "
                              f"but this is project {pulumi.get_project()!r}")
    config.setdefault("upstream", {})
    return program, config


program, config = settings(dict(os.environ))
programs.load(program)(config)
