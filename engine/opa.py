"""OPA, the policy engine that evaluates plan documents (``engine/policy.py``) and runs ``opa test``.

Provided like the engine's own tools (``engine/toolchain.py``, whose helpers this reuses):
PATH at the pinned version → the shared tool cache → the official release binary
(checksum-verified) → a build from the Go module proxy (about 4 minutes on 2 cores, once per
machine).  The real ``opa`` rather than a Rego library: ``opa test`` runs the provider's policy
unit tests with exactly the evaluator that decides, and Rego v1 is OPA's own language.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from pathlib import Path

from engine.errors import ToolchainError
from engine.toolchain import (
    Progress, Tool, _arch, _cached, _go_env, _install_atomically, _locked, _stderr_progress, _version_of,
    _wrapper_build, cache_root,
)

VERSION = "1.22.4"
MODULE = "github.com/open-policy-agent/opa"
# A static binary per release, with a .sha256 file next to it (OPA publishes no combined checksum list).
DOWNLOAD = "https://github.com/open-policy-agent/opa/releases/download/v{v}/opa_linux_{arch}_static"


def on_path(version: str = VERSION) -> Tool | None:
    found = shutil.which("opa")
    if not found or _version_of(found, ["version"]) != f"Version: {version}":
        return None
    return Tool("opa", version, Path(found).parent, "path")


def find() -> Tool | None:
    """The pinned ``opa`` if it is on PATH or in the cache; nothing is installed."""
    return on_path(VERSION) or _cached("opa", VERSION)


def ensure(*, progress: Progress = _stderr_progress, allow_install: bool = True) -> Tool:
    """The pinned ``opa``, installed into the shared cache if needed.

    Raises ``ToolchainError`` with what to do when it cannot be provided.
    """
    tool = find()
    if tool:
        return tool
    if not allow_install or os.environ.get("ENGINE_NO_TOOL_INSTALL"):
        raise ToolchainError(f"opa v{VERSION} is not installed", hint="run `engine policy install` (builds it once, cached)")
    root = cache_root() / "opa" / VERSION
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{VERSION}.lock", "w") as lock:
        progress("waiting for the opa install lock…") if _locked(lock) else None
        fcntl.flock(lock, fcntl.LOCK_EX)
        tool = _cached("opa", VERSION)  # another process may have finished it meanwhile
        if tool:
            return tool

        def install(staging: Path) -> dict:
            (staging / "bin").mkdir()
            source = download(VERSION, staging / "bin", progress) or _build(VERSION, staging / "bin", progress)
            return {"version": VERSION, "source": source}

        source = _install_atomically(root, install)["source"]
    progress(f"opa v{VERSION} ready in {root / 'bin'} (from {source})")
    return Tool("opa", VERSION, root / "bin", source)


def download(version: str, bin_dir: Path, progress: Progress) -> str | None:
    """The official static binary, if its site answers and the checksum matches; None → build instead."""
    import hashlib

    from engine.toolchain import _fetch

    url = DOWNLOAD.format(v=version, arch=_arch())
    try:
        expected = _fetch(url + ".sha256").decode().split()[0]
    except Exception:  # noqa: BLE001 - any failure means "not reachable": fall through to the build
        progress("official opa download not reachable; building from the Go module proxy instead")
        return None
    progress(f"downloading {url}")
    try:
        binary = _fetch(url)
    except Exception as exc:  # noqa: BLE001
        progress(f"download failed ({exc}); building instead")
        return None
    if hashlib.sha256(binary).hexdigest() != expected:
        raise ToolchainError(f"checksum mismatch for {url}", hint="the download was corrupted or tampered with; retry")
    (bin_dir / "opa").write_bytes(binary)
    (bin_dir / "opa").chmod(0o755)
    return "download"


def _build(version: str, bin_dir: Path, progress: Progress) -> str:
    if not shutil.which("go"):
        raise ToolchainError(f"opa v{version} is not installed, its download site is not reachable, and `go` is not on PATH to build it",
                             hint=f"install Go ≥ 1.26 (https://go.dev/dl), or put opa v{version} on PATH")
    progress(f"building opa v{version} from the Go module proxy (about 4 minutes on 2 cores; cached afterwards)")
    work = Path(tempfile.mkdtemp(prefix="engine-build-opa-"))
    try:
        # OPA's version is a constant in its source (v1/version), so no -X flag is needed.
        _wrapper_build(MODULE, version, [], MODULE, bin_dir / "opa", "-s -w", work, _go_env(), progress)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    got = _version_of(str(bin_dir / "opa"), ["version"])
    if got != f"Version: {version}":
        raise ToolchainError(f"built opa reports {got!r}, expected Version: {version}")
    return "go-build"
