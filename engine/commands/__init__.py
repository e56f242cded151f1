"""One module per verb of the ``engine`` command line (``cli.py`` parses and renders).

Each command module has a ``run(wiring, …)`` that calls the engine and returns an
``Outcome``: the data (what ``--json`` prints), the human text, and the exit code.
Commands never print and never exit; errors are ``EngineError``s, turned into text
and an exit code in one place (``cli.main``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable

from engine.errors import EXIT_OK
from engine.untrusted import neutralize_json


@dataclass
class Outcome:
    data: object  # JSON-serializable
    text: Callable[[], str] | str = ""  # human rendering (a callable renders only when needed)
    exit_code: int = EXIT_OK
    warnings: list[str] = field(default_factory=list)  # printed on stderr, never change the exit code
    json_only: bool = False  # commands whose output is always JSON (schema, plan-targets)

    def render_text(self) -> str:
        if self.json_only:
            return to_json(self.data)
        return self.text() if callable(self.text) else self.text


def to_json(data: object, compact: bool = False) -> str:
    """JSON for stdout: customer text inside stays data (no workflow command can form, see engine/untrusted.py)."""
    if compact:
        return neutralize_json(json.dumps(data, separators=(",", ":"), default=str))
    return neutralize_json(json.dumps(data, indent=2, sort_keys=False, default=str))
