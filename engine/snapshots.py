"""Every successful deploy is a restorable snapshot: what went in, from which revision, with which tool.

A snapshot (kept in the run history beside the deploy's row, engine/history.py) holds

- the exact validated inputs: the customer file as read (its text when it was read from a local checkout; always
  the validated model and the SHA-256 of its canonical JSON), the tenant record's SHA-256, the custom properties
  in effect, and the settings the planner gave the program (``StackTarget.config``: what ``engine rollback``
  applies again);
- the manager repository's revision of the program or module that ran (``Revision``): the git commit of the
  checkout holding it when that checkout's program/module files are committed, always a content digest of those
  files (SHA-256 over their paths and bytes), so a rollback can tell "the same code" without git and can refuse a
  revision it cannot reproduce;
- the tool and its version (``pulumi v3.260.0``, ``OpenTofu v1.12.6``) and the deploy's outputs, masked.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import tarfile
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from engine import process
from engine.catalog import Tenant
from engine.clouds import terraform_module
from engine.config import CustomerConfig
from engine.errors import InputError
from engine.planning import StackTarget
from engine.results import StackResult

SNAPSHOT_VERSION = 1
_SKIP_DIRS = {"__pycache__", "tests", ".terraform", "node_modules"}


@dataclass(frozen=True)
class Revision:
    """Which program/module code ran: ``files`` (paths relative to ``root``) and their digest; the git commit when the
    checkout at ``root`` has those files committed as they are (``dirty`` otherwise)."""

    root: str  # the checkout holding the programs (or terraform/ modules)
    files: tuple[str, ...]  # what the digest covers: a program's package, a module's *.tf
    digest: str  # sha256:<hex>
    commit: str | None = None
    dirty: bool = False

    @property
    def label(self) -> str:
        """``git <12 hex>`` or ``sha256:<12 hex>`` (uncommitted or not a git checkout)."""
        if self.commit and not self.dirty:
            return f"git {self.commit[:12]}"
        return self.digest[:19]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["files"] = list(self.files)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Revision":
        return cls(root=data["root"], files=tuple(data.get("files") or ()), digest=data["digest"], commit=data.get("commit"),
                   dirty=bool(data.get("dirty")))


def program_files(tool: str, program: str) -> tuple[str, ...]:
    """The paths (relative to the checkout) whose content decides what a deploy of ``program`` does with ``tool``."""
    if tool == "terraform":
        module = terraform_module(program)  # the module the runner copies for this target (engine/clouds.py)
        return ("terraform" if module == "." else f"terraform/{module}",)
    return ("programs/__init__.py", f"programs/{program}")


def _walk(root: Path, paths: tuple[str, ...]) -> list[Path]:
    files: list[Path] = []
    for rel in paths:
        base = root / rel
        if base.is_file():
            files.append(base)
        elif base.is_dir():
            if rel.startswith("terraform"):
                files += sorted(p for p in base.glob("*.tf") if p.is_file())  # a module: its own *.tf, as the runner copies it
            else:
                files += sorted(p for p in base.rglob("*") if p.is_file() and p.suffix not in (".pyc",)
                                and not _SKIP_DIRS.intersection(p.relative_to(base).parts[:-1]))
    return files


def content_digest(root: Path, paths: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for path in _walk(root, paths):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return "sha256:" + digest.hexdigest()


def _git(root: Path, *args: str) -> process.Completed:
    return process.run(["git", "-C", str(root), *args], env=process.tool_env({"GIT_TERMINAL_PROMPT": "0"}), timeout=60)


@functools.lru_cache(maxsize=32)
def _git_top(root: Path) -> tuple[Path, str] | None:
    """(the git work tree holding ``root``, ``root`` relative to it) or None when it is not a git checkout."""
    if shutil.which("git") is None:
        return None
    proc = _git(root, "rev-parse", "--show-toplevel")
    if proc.returncode != 0:
        return None
    top = Path(proc.stdout.strip()).resolve()
    return top, root.resolve().relative_to(top).as_posix() if root.resolve() != top else ""


def source_revision(root: Path, paths: tuple[str, ...]) -> Revision:
    """The revision of ``paths`` under ``root`` as they are now (git commit when committed unchanged; always a digest)."""
    root = Path(root).resolve()
    digest = content_digest(root, paths)
    commit, dirty = None, False
    top = _git_top(root)
    if top is not None:
        head = _git(root, "rev-parse", "HEAD")
        if head.returncode == 0:
            commit = head.stdout.strip()
            status = _git(root, "status", "--porcelain", "--untracked-files=all", "--", *paths)
            dirty = status.returncode != 0 or any(not line.endswith((".pyc", "/")) and "__pycache__" not in line and "/tests/" not in line
                                                  for line in status.stdout.splitlines())
    return Revision(str(root), paths, digest, commit, dirty)


def materialize(revision: Revision, current: Revision) -> Path | None:
    """The program/module code of ``revision`` as a directory (a temporary copy; the caller removes it), or None when
    it is the code that is there now.  Raises ``InputError`` saying why it is not available."""
    if revision.digest == current.digest:
        return None
    recorded = revision.label
    if not revision.commit or revision.dirty:
        raise InputError(f"the program/module revision of that deploy ({recorded}) is not available: it was deployed from files "
                         "that were not committed, and they have changed since",
                         hint="restore those files, or deploy the current code with `engine up`")
    root = Path(revision.root)
    top = _git_top(root) if root.is_dir() else None
    if top is None:
        raise InputError(f"the program/module revision of that deploy (git {revision.commit[:12]}) is not available: "
                         f"{revision.root} is no longer a git checkout")
    work_tree, prefix = top
    if _git(work_tree, "cat-file", "-e", f"{revision.commit}^{{commit}}").returncode != 0:
        raise InputError(f"the program/module revision of that deploy (git {revision.commit[:12]}) is not available in {work_tree}",
                         hint=f"fetch it (`git -C {work_tree} fetch origin {revision.commit}`), then roll back again")
    tree = f"{revision.commit}:{prefix}" if prefix else revision.commit
    # programs/ and terraform/ whole (a program imports its package's siblings); checked against the digest below
    wanted = sorted({p.split("/", 1)[0] for p in revision.files})
    out = Path(tempfile.mkdtemp(prefix="engine-revision-"))
    tar_file = out / ".revision.tar"
    archive = _git(work_tree, "archive", "--format=tar", "-o", str(tar_file), tree, "--", *wanted)
    if archive.returncode != 0:
        shutil.rmtree(out, ignore_errors=True)
        raise InputError(f"the program/module revision of that deploy (git {revision.commit[:12]}) cannot be read: "
                         f"{archive.stderr.strip()[:300]}")
    with tarfile.open(tar_file, mode="r:") as tar:
        tar.extractall(out, filter="data")
    tar_file.unlink()
    found = content_digest(out, revision.files)
    if found != revision.digest:
        shutil.rmtree(out, ignore_errors=True)
        raise InputError(f"git {revision.commit[:12]} does not hold the code that deploy ran (its files digest to {found[:19]}, "
                         f"the deploy recorded {revision.digest[:19]})")
    return out


# -- the inputs ------------------------------------------------------------------------------------------------

def _canonical(data: object) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()


def inputs(tenant: Tenant, target: StackTarget) -> dict:
    """What a deploy of ``target`` read: the customer file (text when local, the validated model, digests), the tenant
    record's digest, the custom properties in effect, and the program's settings."""
    validated = tenant.config.model_dump(mode="json")
    text, text_digest = None, None
    if tenant.config_path is not None:
        try:
            raw = Path(tenant.config_path).read_bytes()
            text, text_digest = raw.decode("utf-8"), "sha256:" + hashlib.sha256(raw).hexdigest()
        except (OSError, UnicodeDecodeError):
            pass
    return {
        "customer_file": {"content": text, "sha256": text_digest, "validated": validated,
                          "validated_sha256": "sha256:" + hashlib.sha256(_canonical(validated)).hexdigest()},
        "tenant_record_sha256": "sha256:" + hashlib.sha256(_canonical(tenant.record.model_dump(mode="json"))).hexdigest(),
        "properties": tenant.record.properties.model_dump(mode="json"),
        "settings": target.config,
        "target": {"tool": target.tool, "program": target.program, "tool_version": target.tool_version, "backend_url": target.backend_url},
    }


def build(tenant: Tenant, target: StackTarget, result: StackResult, revision: Revision, tool_version: str | None) -> dict:
    """The snapshot of a successful deploy (JSON-ready)."""
    return {"version": SNAPSHOT_VERSION, "inputs": inputs(tenant, target), "revision": revision.to_dict(),
            "tool": {"name": target.tool, "version": tool_version}, "outputs": dict(result.outputs)}


def customer_config(snapshot: dict) -> CustomerConfig:
    """The snapshot's customer file, validated again (a snapshot is applied only as valid input)."""
    from engine.validation import validate_document
    from engine.documents import load_text

    file = snapshot["inputs"]["customer_file"]
    if file.get("content"):
        return validate_document(load_text(file["content"].encode(), "the snapshot's customer file"), CustomerConfig)
    return CustomerConfig.model_validate(file["validated"], strict=False)
