"""How each verb is called: its name, arguments and options, declared next to the command that runs it.

``cli.py`` turns these declarations into click commands, parses, renders and is the one error
boundary; a command module only declares its interface (``VERBS``) and runs.  Parameters are
factories, so every command gets its own click objects.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import click


@dataclass(frozen=True)
class Verb:
    name: str
    run: Callable  # returns an Outcome
    params: tuple[Callable[[], click.Parameter], ...]
    help: str
    wired: bool = True  # run(wiring, **options); False: run(**options)
    group: str | None = None  # a sub-command of `engine GROUP`


def opt(*decls, **kw) -> Callable[[], click.Option]:
    return lambda: click.Option(list(decls), **kw)


def arg(name, **kw) -> Callable[[], click.Argument]:
    return lambda: click.Argument([name], **kw)


def _as_json(ctx: click.Context, _param, value: bool) -> bool:
    ctx.meta["as_json"] = ctx.meta.get("as_json") or value  # read by cli.py's boundary, also for errors
    return value


FILE = click.Path(dir_okay=False, path_type=Path)
JSON = opt("--json", "as_json", is_flag=True, expose_value=False, callback=_as_json, is_eager=True, help="Print a machine-readable JSON result on stdout.")
ENV = opt("--env", "environments", multiple=True, metavar="ENV", help="Only this environment (repeatable). Default: all.")
ALL = opt("--all", "all_customers", is_flag=True, help="Every customer in the catalog.")
CHANGED = opt("--changed-from", type=FILE, metavar="FILE", help="Customers affected by the changed files listed in FILE (e.g. `git diff --name-only`).")
PARALLEL = opt("--parallel", type=click.IntRange(1, 64), default=min(4, os.cpu_count() or 1), show_default=True, help="How many at once.")
DRY_RUN = opt("--dry-run", is_flag=True, help="Read everything, print every GitHub write instead of making it.")
LOCK = opt("--lock-timeout", type=click.FloatRange(0, 3600), default=0, show_default=True, metavar="SECONDS",
           help="Wait this long for another operation on the same stack to finish before failing.")
QUIET = opt("--quiet", "-q", is_flag=True, help="No live progress on stderr.")
YES = opt("--yes", is_flag=True, help="Confirm.")
CUSTOMER, CUSTOMERS, MAYBE_CUSTOMER = arg("customer"), arg("customers", nargs=-1), arg("customer", required=False)
OPERATION = (CUSTOMER, ENV, JSON, LOCK, QUIET)
FLEET = (MAYBE_CUSTOMER, ENV, JSON, LOCK, QUIET, ALL, CHANGED, PARALLEL)
