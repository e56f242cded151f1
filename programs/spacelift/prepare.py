"""Prepare this Pulumi project for one tenant's stack, in Spacelift's checkout (the stack's first ``beforeInit`` hook).

``engine spacelift sync`` sets the hook (``python3 prepare.py``, run in the project root) and the stack's
environment variables.  Two things can't come from environment variables, so this writes them:

* ``Pulumi.yaml``'s ``name``: Pulumi requires it to equal the stack's project, which is the customer
  (``organization/<customer>/<environment>``, the engine's own state layout);
* ``programs`` in the project root, a link to the manager repository's ``programs`` package: the local
  target's dynamic providers are stored in the state by reference (``programs.local.resources.…``), and
  the provider process Pulumi starts imports them from its working directory, the project root.

Only the standard library: it runs before anything is installed.  Exit 2 with a message naming the
variable when the stack's settings are missing or not the engine's.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CUSTOMER_ID = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")  # engine/config.py CUSTOMER_ID_PATTERN
PROGRAMS = HERE.parent  # programs/spacelift/.. : the manager repository's programs package


def project_name(environ: dict[str, str]) -> str:
    """The customer named by ``ENGINE_SETTINGS`` (the Pulumi project of the tenant's stacks)."""
    raw = environ.get("ENGINE_SETTINGS")
    if not raw:
        raise SystemExit("prepare.py: ENGINE_SETTINGS is not set (engine spacelift sync sets it on the stack)")
    try:
        customer = json.loads(raw)["customer"]
    except (ValueError, KeyError, TypeError):
        raise SystemExit("prepare.py: ENGINE_SETTINGS is not the engine's settings (JSON with a customer)") from None
    if not isinstance(customer, str) or not CUSTOMER_ID.fullmatch(customer):
        raise SystemExit("prepare.py: ENGINE_SETTINGS names no valid customer id")
    return customer


def write_project(directory: Path, name: str) -> None:
    path = directory / "Pulumi.yaml"
    lines = path.read_text().splitlines(keepends=True)
    named = [f"name: {name}\n" if line.startswith("name:") else line for line in lines]
    if named == lines and not any(line.startswith("name:") for line in lines):
        named.insert(0, f"name: {name}\n")
    path.write_text("".join(named))


def link_programs(directory: Path) -> None:
    link = directory / "programs"
    if link.is_symlink() or link.exists():
        return
    link.symlink_to(os.path.relpath(PROGRAMS, directory), target_is_directory=True)


def main() -> int:
    try:
        name = project_name(dict(os.environ))
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2
    write_project(HERE, name)
    link_programs(HERE)
    print(f"prepare.py: Pulumi project {name}, programs from {PROGRAMS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
