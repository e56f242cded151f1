"""The engine's error tree.

Every error the engine raises on purpose is an ``EngineError``.  Each carries the
exit code the CLI uses and a message written for the person at the terminal (never
raw tool output, never a secret).  ``cli.py`` is the only place that turns them into
text and an exit code.

Messages often quote customer text (a key, a value, a tool's error), so they are made
safe to print when the error is built: control and format characters become visible
escapes and lines cannot become GitHub Actions workflow commands (see
``engine/untrusted.py``).  Whoever prints an error never has to remember to.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.untrusted import escape_inline, escape_lines

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_BLOCKED = 4  # a policy denied a plan: nothing was applied (3 is drift, engine/drift.py)


class EngineError(Exception):
    """Root of all errors the engine reports to users.

    ``message`` and ``hint`` are stored escaped (``escape_lines``): their newlines are
    layout, any control character or workflow command quoted from customer text is not.
    """

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None):
        message = escape_lines(message)
        super().__init__(message)
        self.message = message
        self.hint = escape_lines(hint) if hint is not None else None

    def to_dict(self) -> dict:
        data = {"error": type(self).__name__, "message": self.message}
        if self.hint:
            data["hint"] = self.hint
        return data


DOCUMENT = "<document>"  # the key path of a problem with the document as a whole


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file: where, which key, and why.

    The fields hold the text as found (a key may contain anything a YAML key can); every
    rendering — ``str``, ``summary``, ``to_dict`` — escapes it with ``escape_inline``, so
    a problem is always one safe line.
    """

    file: str
    line: int | None
    key_path: str
    reason: str

    def __str__(self) -> str:
        """``file:line: key: reason`` (``file: key: reason`` when there is no line)."""
        where = escape_inline(self.file) + (f":{self.line}" if self.line else "")
        key = f" {escape_inline(self.key_path)}:" if self.key_path else ""
        return f"{where}:{key} {escape_inline(self.reason)}"

    def summary(self) -> str:
        """The problem without its file, for text that names the file already:
        ``line 3: environments.staging: reason``, or just the reason when the problem
        has no line and concerns the whole document (a file that is not there)."""
        parts = [f"line {self.line}"] if self.line else []
        if self.key_path and self.key_path != DOCUMENT:
            parts.append(escape_inline(self.key_path))
        parts.append(escape_inline(self.reason))
        return ": ".join(parts)

    def to_dict(self) -> dict:
        return {"file": escape_inline(self.file), "line": self.line, "key": escape_inline(self.key_path),
                "reason": escape_inline(self.reason)}


class InputError(EngineError):
    """Bad input from a user, a customer or a tenant record.  Exit code 2, nothing runs."""

    exit_code = EXIT_BAD_INPUT


@dataclass
class _Problems:
    items: list[Problem] = field(default_factory=list)


class ConfigError(InputError):
    """A configuration file failed to load or validate.  Lists every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        lines = [str(p) for p in self.problems]
        super().__init__("\n".join(lines) if lines else "invalid configuration")

    def to_dict(self) -> dict:
        data = super().to_dict()
        data["problems"] = [p.to_dict() for p in self.problems]
        return data


class UnknownCustomerError(InputError):
    """The customer is not in the tenant catalog."""


class ToolchainError(EngineError):
    """A tool the engine needs (pulumi, tofu) is missing and could not be provided."""


class OperationError(EngineError):
    """A deployment operation failed (the tool ran and reported an error)."""


class StackLockedError(OperationError):
    """Another operation holds the stack's lock."""
