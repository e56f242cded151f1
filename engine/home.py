"""The engine's home on this machine: state, work dirs, passphrases, the local target's resources.

``$ENGINE_HOME`` (default ``~/.local/share/managed-infra-engine``).  Every per-customer
path is built from a validated customer id, never from raw input.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from engine.catalog import check_customer_id
from engine.config import state_url_problem
from engine.errors import InputError


def default_home() -> Path:
    env = os.environ.get("ENGINE_HOME")
    if env:
        return Path(env).expanduser().resolve()
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "managed-infra-engine"


@dataclass(frozen=True)
class EngineHome:
    root: Path

    @property
    def state_root(self) -> Path:
        return self.root / "state"

    @property
    def local_root(self) -> Path:
        return self.root / "local-cloud"

    @property
    def pulumi_home(self) -> Path:
        return self.root / "pulumi-home"

    def work_dir(self, customer: str, environment: str) -> Path:
        # One work dir per stack: concurrent operations never share workspace files.
        return self.root / "work" / check_customer_id(customer) / environment

    def passphrase(self, customer: str) -> str:
        """The customer's own secrets passphrase.

        ``ENGINE_PASSPHRASE_<CUSTOMER>`` (upper case, '-' as '_') wins; otherwise one is
        generated on first use and kept in ``secrets/<customer>.passphrase`` (mode 600).
        """
        check_customer_id(customer)
        env = os.environ.get("ENGINE_PASSPHRASE_" + customer.upper().replace("-", "_"))
        if env:
            return env
        path = self.root / "secrets" / f"{customer}.passphrase"
        if path.is_file():
            return path.read_text().strip()
        if os.environ.get("GITHUB_ACTIONS") == "true":
            # A runner is thrown away after the job: a passphrase generated here would be lost with it
            # and the customer's state could never be decrypted again.
            raise InputError(f"no secrets passphrase for customer {customer!r} on this runner",
                             hint=f"set ENGINE_PASSPHRASE_{customer.upper().replace('-', '_')} (the manager workflows take them from the ENGINE_PASSPHRASES secret)")
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Written whole to a private temp file, then linked into place: concurrent first uses
        # (parallel drift checks, fan-out) agree on one passphrase and never read half a file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{customer}.")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(32) + "\n")
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process won the race: use its passphrase
        finally:
            os.unlink(tmp)
        return path.read_text().strip()

    def ensure_state_dir(self, backend_url: str) -> None:
        """file:// backends must exist before pulumi can use them (the directory pulumi will read, decoded)."""
        path = state_path(backend_url)
        if path is not None:
            path.mkdir(parents=True, exist_ok=True, mode=0o700)


def state_path(backend_url: str) -> Path | None:
    """The directory a ``file://`` state URL names, read the way Pulumi reads it: percent-decoded
    (``my%20state`` is ``my state``), then resolved.  ``None`` for state that is not on this machine (``s3://``).

    Raises ``InputError`` for a URL whose path is not absolute or leaves itself ('..', also encoded);
    the planner never builds one, a tenant record with one fails validation.
    """
    parts = urlsplit(backend_url)
    if parts.scheme != "file":
        return None
    problem = state_url_problem(backend_url)
    if problem:
        raise InputError(f"state location {backend_url!r} is refused: {problem}")
    return Path(unquote(parts.path)).resolve()
