"""The engine's error tree.

Every error the engine raises on purpose is an ``EngineError``.  Each carries the
exit code the CLI uses and a message written for the person at the terminal (never
raw tool output, never a secret).  ``cli.py`` is the only place that turns them into
text and an exit code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class EngineError(Exception):
    """Root of all errors the engine reports to users."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def to_dict(self) -> dict:
        data = {"error": type(self).__name__, "message": self.message}
        if self.hint:
            data["hint"] = self.hint
        return data


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file: where, which key, and why."""

    file: str
    line: int | None
    key_path: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        key = f" {self.key_path}:" if self.key_path else ""
        return f"{where}:{key} {self.reason}"

    def to_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "key": self.key_path, "reason": self.reason}


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
