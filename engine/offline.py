"""GitHub without GitHub: the read surface a trigger needs, answered from a local checkout; every write only planned.

``engine event … --dry-run --source PATH`` uses it, so a customer file can be tried before the
customer's repository is connected (no credentials, no network):

- the customer file is read from ``PATH/<config_path>`` — the working tree, whatever commit the
  event names;
- custom properties are the tenant record's (the repository's own are not known offline);
- what only GitHub can say — that the commit is the default branch's head, that a pull request
  is open at that commit — is assumed and said so (``notes``);
- there are no comments, deployments or issues yet, so every write is a create, recorded in
  ``planned`` and printed like any dry-run write (``engine.github.GitHubAPI._write``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from engine.documents import read_file
from engine.errors import ConfigError, InputError, Problem
from engine.github import GitHubAPI, Settings


def _head_of(checkout: Path) -> tuple[str, str] | None:
    """(branch, commit) of a git checkout's HEAD read from ``.git`` (no git command), or None."""
    git = checkout / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return ("(detached HEAD)", head) if len(head) == 40 else None
        ref = head.removeprefix("ref: ")
        loose = git / ref
        if loose.is_file():
            return ref.removeprefix("refs/heads/"), loose.read_text().strip()
        for line in (git / "packed-refs").read_text().splitlines():
            sha, _, name = line.partition(" ")
            if name == ref:
                return ref.removeprefix("refs/heads/"), sha
    except OSError:
        return None
    return None


@dataclass
class OfflineGitHub(GitHubAPI):
    """A ``GitHubAPI`` in dry-run mode whose reads come from ``source`` (a checkout of the customer repository).

    ``head``: the commit the event names; offline it is taken to be the default branch's head and
    the head of any pull request the event names (recorded in ``notes``).
    """

    settings: Settings = field(default_factory=Settings)
    source: Path = Path(".")
    head: str | None = None
    dry_run: bool = True
    out: TextIO = field(default=sys.stderr)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.dry_run = True  # offline, nothing can be written: every write is planned
        if not self.source.is_dir():
            raise InputError(f"--source {self.source}: not a directory", hint="pass a local checkout of the customer's repository")
        self.source = self.source.resolve()

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def client(self, repository: str):  # noqa: ANN201 - never reached: every read is local, every write planned
        raise InputError("offline (--source): no GitHub call can be made")

    # -- reads, from the checkout ----------------------------------------

    def file_name(self, repository: str, path: str, ref: str | None) -> str:
        return f"{self.source}/{path}"

    def file_at(self, repository: str, path: str, ref: str | None) -> bytes | None:
        shown = self.file_name(repository, path, ref)
        candidate = self.source / path
        if not candidate.exists() and not candidate.is_symlink():
            return None
        resolved = candidate.resolve()
        if not resolved.is_relative_to(self.source):
            raise ConfigError([Problem(shown, None, "<document>", f"resolves to {resolved}, outside the checkout {self.source}")])
        at = f"commit {ref[:12]}" if ref else "the default branch"
        self._note(f"{path} was read from the working tree of {self.source}, standing in for {repository} at {at}")
        return read_file(resolved, shown)

    def custom_properties(self, repository: str) -> dict[str, Any]:
        self._note("custom properties: the tenant record's (the repository's own custom properties are not read offline)")
        return {}

    def default_branch_head(self, repository: str) -> tuple[str, str]:
        if self.head:
            self._note(f"not checked offline: that {self.head[:12]} is the head of {repository}'s default branch (a real apply "
                       "deploys only the head)")
            return "(default branch)", self.head
        found = _head_of(self.source)
        if found is None:
            raise InputError(f"offline: cannot tell the head of {repository}'s default branch",
                             hint=f"name the commit (sha) in the payload, or make --source a git checkout ({self.source} has no readable .git/HEAD)")
        self._note(f"the default branch's head was taken from {self.source}/.git: {found[0]} at {found[1][:12]}")
        return found

    def pull_request(self, repository: str, number: int) -> dict | None:
        self._note(f"not checked offline: that pull request #{number} of {repository} is open with its head at the event's commit")
        return {"number": number, "state": "open", "head": {"sha": self.head}}

    def authenticated_login(self, repository: str) -> str | None:
        return None

    def comments(self, repository: str, number: int) -> list[dict]:
        return []

    def deployments(self, repository: str, sha: str, environment: str) -> list[dict]:
        return []

    def issues(self, repository: str, label: str, state: str = "open") -> list[dict]:
        return []
