"""Find or provide the binaries the engine runs: ``pulumi`` (+ its Python helpers), ``tofu``, and
HashiCorp ``terraform`` at the releases customers pin (``terraform_version``).

Resolution order, per tool, at a pinned version (for ``terraform``: the release the pin selects):

1. on ``PATH`` at exactly the pinned version;
2. the engine's tool cache (``$ENGINE_TOOL_CACHE``, default ``~/.cache/managed-infra-engine/tools``);
3. the official release download, when the internet is reachable (checksum verified);
4. a build from the Go module proxy with the machine's ``go`` — the only route on
   machines that reach package registries only.

The cache lives outside the repository and is shared by every checkout and CI run
on the machine; builds are serialized with a file lock and installed atomically.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable

from engine import process
from engine.errors import InputError, ToolchainError

TOFU_VERSION = "1.12.6"

# HashiCorp Terraform, for customers who pin ``terraform_version``: release line -> the newest patch
# of that line that the Go module proxy serves completely and that builds with this machine's Go.
# Pinned, not looked up at run time (the proxy's version list is partial and may be unreachable);
# surveyed with scripts/terraform-builds.py, the reasons for the missing lines are in
# docs/CONFIGURATION.md ("Terraform and OpenTofu versions") and TERRAFORM_NOT_BUILDABLE.
TERRAFORM_MODULE = "github.com/hashicorp/terraform"
TERRAFORM_BUILDS: dict[str, str] = {
    "1.6": "1.6.6",
    "1.7": "1.7.5",
    "1.8": "1.8.5",
    "1.9": "1.9.5",  # v1.9.6-v1.9.8: their nested modules are not served (see below)
    "1.11": "1.11.4",
    "1.16": "1.16.4",
}
# Terraform 1.9 and later replace the modules nested in their repository (the state backends,
# internal/legacy) with directories their published module leaves out; a build needs them at the
# release's own commit, which the proxy here serves for no release of these lines.
_NESTED_MISSING = "the Go module proxy serves no {line} release's nested modules (state backends) at its commit"
TERRAFORM_NOT_BUILDABLE: dict[str, str] = {line: _NESTED_MISSING.format(line=line) for line in ("1.10", "1.12", "1.13", "1.14", "1.15")}
# The official archives, tried before building.  These machines usually cannot reach them.
PULUMI_DOWNLOAD = "https://get.pulumi.com/releases/sdk/pulumi-v{v}-linux-{arch}.tar.gz"
PULUMI_CHECKSUMS = "https://get.pulumi.com/releases/sdk/pulumi-{v}-checksums.txt"
TOFU_DOWNLOAD = "https://github.com/opentofu/opentofu/releases/download/v{v}/tofu_{v}_linux_{arch}.zip"
TOFU_CHECKSUMS = "https://github.com/opentofu/opentofu/releases/download/v{v}/tofu_{v}_SHA256SUMS"
TERRAFORM_DOWNLOAD = "https://releases.hashicorp.com/terraform/{v}/terraform_{v}_linux_{arch}.zip"
TERRAFORM_CHECKSUMS = "https://releases.hashicorp.com/terraform/{v}/terraform_{v}_SHA256SUMS"
DOWNLOAD_TIMEOUT = 5.0

PULUMI_HELPERS = {
    # file in the sdk/v3 module -> installed name
    "python/dist/pulumi-resource-pulumi-python": "pulumi-resource-pulumi-python",
    "python/cmd/pulumi-language-python-exec": "pulumi-language-python-exec",
}

Progress = Callable[[str], None]


def pulumi_version() -> str:
    """The CLI version the engine needs: exactly the installed Pulumi Python SDK's."""
    return metadata.version("pulumi")


def cache_root() -> Path:
    env = os.environ.get("ENGINE_TOOL_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "managed-infra-engine" / "tools"


@dataclass(frozen=True)
class Tool:
    name: str
    version: str
    bin_dir: Path
    source: str  # "path" | "cache" | "download" | "go-build"

    @property
    def executable(self) -> Path:
        return self.bin_dir / self.name

    def to_dict(self) -> dict:
        return {"name": self.name, "version": self.version, "bin_dir": str(self.bin_dir), "source": self.source}


def _arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)


def _stderr_progress(message: str) -> None:
    print(f"[toolchain] {message}", file=sys.stderr, flush=True)


def _version_of(executable: str, args: list[str]) -> str | None:
    try:
        out = process.run([executable, *args], timeout=30,
                          env=process.tool_env({"PULUMI_SKIP_UPDATE_CHECK": "true", "CHECKPOINT_DISABLE": "1"}))
    except ToolchainError:
        return None
    text = (out.stdout or "").strip().splitlines()
    return text[0] if text else None


def _on_path(name: str, version: str) -> Tool | None:
    found = shutil.which(name)
    if not found:
        return None
    if name == "pulumi":
        if _version_of(found, ["version"]) != f"v{version}":
            return None
        if not shutil.which("pulumi-resource-pulumi-python", path=str(Path(found).parent)):
            return None
    elif name == "terraform":
        if terraform_version_of(found) != version:
            return None
    else:
        first = _version_of(found, ["version"]) or ""
        if first not in (f"OpenTofu v{version}",):
            return None
    return Tool(name, version, Path(found).parent, "path")


def terraform_version_of(executable: str) -> str | None:
    """``terraform version -json``'s version ("1.6.6"), or None when it does not answer like HashiCorp Terraform."""
    try:
        out = process.run([executable, "version", "-json"], timeout=30, env=process.tool_env({"CHECKPOINT_DISABLE": "1"}))
        version = json.loads(out.stdout)["terraform_version"]
    except Exception:  # noqa: BLE001 - a broken binary is the same as none
        return None
    return version if isinstance(version, str) else None


def _cached(name: str, version: str) -> Tool | None:
    root = cache_root() / name / version
    marker = root / ".complete"
    if marker.is_file() and (root / "bin" / name).is_file():
        return Tool(name, version, root / "bin", "cache")
    return None


def terraform_distribution() -> str:
    """Who serves customers' ``terraform_version`` pins: ``terraform`` (the default: HashiCorp Terraform
    where it builds, OpenTofu for the other lines it covers) or ``opentofu`` (OpenTofu only), from
    ``ENGINE_TERRAFORM_DISTRIBUTION``.  Raises ``InputError`` (exit 2) for any other value."""
    value = (os.environ.get("ENGINE_TERRAFORM_DISTRIBUTION") or "terraform").strip().lower()
    if value not in DISTRIBUTIONS:
        raise InputError(f"ENGINE_TERRAFORM_DISTRIBUTION={value!r} is not one of: {', '.join(DISTRIBUTIONS)}",
                         hint="terraform: HashiCorp Terraform where it builds, else OpenTofu; opentofu: OpenTofu only (no BUSL-licensed binary)")
    return value


DISTRIBUTIONS = ("terraform", "opentofu")


def status() -> list[dict]:
    """What is available now, without installing anything: the pinned tools, then every Terraform
    release the engine can build (installed or not) and the lines it cannot build, with why."""
    out = []
    for name, version in (("pulumi", pulumi_version()), ("tofu", TOFU_VERSION), ("actionlint", _actionlint().VERSION)):
        tool = _found(name, version)
        out.append({"name": name, "version": version, "installed": tool is not None, **({"bin_dir": str(tool.bin_dir), "source": tool.source} if tool else {})})
    for line in sorted({*TERRAFORM_BUILDS, *TERRAFORM_NOT_BUILDABLE}, key=_line_key):
        if line not in TERRAFORM_BUILDS:
            out.append({"name": "terraform", "line": line, "version": None, "installed": False, "buildable": False,
                        "reason": TERRAFORM_NOT_BUILDABLE[line]})
            continue
        tool = _found("terraform", TERRAFORM_BUILDS[line])
        out.append({"name": "terraform", "line": line, "version": TERRAFORM_BUILDS[line], "installed": tool is not None, "buildable": True,
                    **({"bin_dir": str(tool.bin_dir), "source": tool.source} if tool else {})})
    return out


def _line_key(line: str) -> tuple[int, ...]:
    return tuple(int(p) for p in line.split("."))


def _pinned(name: str) -> str:
    if name == "pulumi":
        return pulumi_version()
    if name == "tofu":
        return TOFU_VERSION
    if name == "actionlint":
        return _actionlint().VERSION
    if name == "terraform":
        raise ToolchainError("terraform has no single pinned version: ask for a release (TERRAFORM_BUILDS)")
    raise ToolchainError(f"unknown tool {name!r}")


def _found(name: str, version: str) -> Tool | None:
    return (_actionlint().on_path(version) if name == "actionlint" else _on_path(name, version)) or _cached(name, version)


def _install_hint(name: str, version: str) -> str:
    if name == "terraform":
        line = ".".join(version.split(".")[:2])
        return f"run `engine tools install --terraform {line}` (or `make tools`)"
    return "run `engine tools install` (or `make tools`)"


def ensure(name: str, *, version: str | None = None, progress: Progress = _stderr_progress, allow_install: bool = True) -> Tool:
    """Return the tool at its pinned version (``terraform``: at ``version``), installing it into the cache if needed.

    Concurrent engines share the cache: one builds under a per-version file lock, the others wait
    and then find it.  Raises ``ToolchainError`` with what to do when it cannot be provided.
    """
    version = version or _pinned(name)
    if name not in ("pulumi", "tofu", "actionlint", "terraform"):
        raise ToolchainError(f"unknown tool {name!r}")
    tool = _found(name, version)
    if tool:
        return tool
    if not allow_install or os.environ.get("ENGINE_NO_TOOL_INSTALL"):
        raise ToolchainError(f"{_display(name)} v{version} is not installed", hint=_install_hint(name, version))

    root = cache_root() / name / version
    root.parent.mkdir(parents=True, exist_ok=True)
    lock_path = root.parent / f".{version}.lock"
    with open(lock_path, "w") as lock:
        progress(f"waiting for the {name} v{version} install lock (another engine is installing it)…") if _locked(lock) else None
        fcntl.flock(lock, fcntl.LOCK_EX)
        tool = _cached(name, version)  # another process may have finished it meanwhile
        if tool:
            return tool

        def build(staging: Path) -> dict:
            (staging / "bin").mkdir()
            download = _actionlint().download if name == "actionlint" else (lambda v, d, p: _download(name, v, d, p))
            got = download(version, staging / "bin", progress) or _go_build(name, version, staging / "bin", progress)
            return {"version": version, "source": got}

        source = _install_atomically(root, build)["source"]
    progress(f"{name} v{version} ready in {root / 'bin'} (from {source})")
    return Tool(name, version, root / "bin", source)


def _display(name: str) -> str:
    return {"terraform": "HashiCorp Terraform", "tofu": "OpenTofu"}.get(name, name)


def _install_atomically(dest: Path, build: Callable[[Path], dict]) -> dict:
    """Build into a staging dir next to ``dest``, mark it complete, then rename it into place.

    An interrupted build leaves only a staging dir (never a half-filled ``dest``); the
    ``.complete`` marker is what every cache lookup checks.  Callers hold the install lock.
    """
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would hide the shared cache from other users
    try:
        info = build(staging)
        (staging / ".complete").write_text(json.dumps({**info, "installed_at": time.time()}))
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return info


def _locked(lock) -> bool:
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(lock, fcntl.LOCK_UN)
    return False


# ---------------------------------------------------------------------------
# 3. official download


def _fetch(url: str) -> bytes:
    import urllib.request  # only when a download is attempted: keeps every other command's start-up fast

    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as resp:  # noqa: S310 - fixed https URLs
        return resp.read()


def _verified_archive(name: str, url: str, sums_url: str, progress: Progress) -> bytes | None:
    """The release archive at ``url`` if the official site answers and its checksum matches; None → build instead."""
    try:
        checksums = _fetch(sums_url).decode()
    except Exception:  # noqa: BLE001 - any failure means "not reachable": fall through to the build
        progress(f"official {name} download not reachable; building from the Go module proxy instead")
        return None
    filename = url.rsplit("/", 1)[-1]
    expected = {parts[-1].lstrip("*"): parts[0] for parts in (line.split() for line in checksums.splitlines()) if len(parts) == 2}.get(filename)
    if not expected:
        progress(f"no checksum for {filename} in the release; building instead")
        return None
    progress(f"downloading {url}")
    try:
        archive = _fetch(url)
    except Exception as exc:  # noqa: BLE001
        progress(f"download failed ({exc}); building instead")
        return None
    if hashlib.sha256(archive).hexdigest() != expected:
        raise ToolchainError(f"checksum mismatch for {url}", hint="the download was corrupted or tampered with; retry, or remove network access to force a build")
    return archive


def _download(name: str, version: str, bin_dir: Path, progress: Progress) -> str | None:
    arch = _arch()
    if name == "pulumi":
        url, sums = PULUMI_DOWNLOAD.format(v=version, arch="x64" if arch == "amd64" else arch), PULUMI_CHECKSUMS.format(v=version)
    elif name == "terraform":
        url, sums = TERRAFORM_DOWNLOAD.format(v=version, arch=arch), TERRAFORM_CHECKSUMS.format(v=version)
    else:
        url, sums = TOFU_DOWNLOAD.format(v=version, arch=arch), TOFU_CHECKSUMS.format(v=version)
    archive = _verified_archive(name, url, sums, progress)
    if archive is None:
        return None
    import tarfile
    import zipfile
    if url.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(archive)) as zf:
            zf.extract(name, bin_dir)
    else:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tf:
            for member in tf.getmembers():
                base = os.path.basename(member.name)
                if member.isfile() and base.startswith("pulumi"):
                    member.name = base
                    tf.extract(member, bin_dir, filter="data")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    return "download"


# ---------------------------------------------------------------------------
# 4. build from the Go module proxy


def _go_env() -> dict[str, str]:
    env = process.tool_env()
    env["GOFLAGS"] = (env.get("GOFLAGS", "") + " -mod=mod").strip()
    env["CGO_ENABLED"] = "0"
    env["GOTOOLCHAIN"] = env.get("GOTOOLCHAIN", "local")
    return env


def _run_with_heartbeat(cmd: list[str], cwd: Path, env: dict, what: str, progress: Progress) -> None:
    start = time.monotonic()
    done = threading.Event()

    def beat() -> None:
        while not done.wait(20):
            progress(f"still {what} ({int(time.monotonic() - start)}s)…")

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        proc = process.run(cmd, cwd=cwd, env=env, timeout=3600)
    finally:
        done.set()
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise ToolchainError(
            f"`{' '.join(cmd[:3])} …` failed while {what}:\n{tail}",
            hint="check that the Go module proxy is reachable (go env GOPROXY) and that `go version` is recent enough",
        )


def _go_build(name: str, version: str, bin_dir: Path, progress: Progress) -> str:
    """Build ``name`` from the Go module proxy into ``bin_dir`` (the one Go build route for every tool)."""
    go = shutil.which("go")
    if not go:
        raise ToolchainError(
            f"{name} v{version} is not installed, its download site is not reachable, and `go` is not on PATH to build it",
            hint=f"install Go (https://go.dev/dl or your package manager), or put {name} v{version} on PATH",
        )
    work = Path(tempfile.mkdtemp(prefix=f"engine-build-{name}-"))
    env = _go_env()
    try:
        build = {"pulumi": _build_pulumi, "tofu": _build_tofu, "terraform": _build_terraform}.get(name) or _actionlint().build
        build(version, work, bin_dir, env, progress)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return "go-build"


def _module_download(module: str, version: str, work: Path, env: dict) -> dict:
    """``go mod download -json module@vversion``, plus the module's go.mod text (``GoModText``) and its proxy ``.info``."""
    out = process.run(["go", "mod", "download", "-json", f"{module}@v{version}"], cwd=work, env=env, timeout=1800)
    try:
        info = json.loads(out.stdout)
        info["GoModText"] = Path(info["GoMod"]).read_text()
    except (ValueError, KeyError, OSError) as exc:
        detail = out.stderr.strip() or out.stdout.strip()
        raise ToolchainError(f"could not fetch {module}@v{version} from the Go module proxy: {detail}",
                             hint="check `go env GOPROXY` and network access to the proxy") from exc
    try:
        info["InfoJSON"] = json.loads(Path(info["Info"]).read_text())
    except (KeyError, OSError, ValueError):
        info["InfoJSON"] = {}
    return info


def _module_replaces(module: str, version: str, work: Path, env: dict) -> list[str]:
    """The non-local ``replace`` directives of ``module``'s go.mod (not inherited by dependents)."""
    return parse_replaces(_module_download(module, version, work, env)["GoModText"])


def _replace_lines(gomod: str) -> list[str]:
    """Every ``replace`` directive of a go.mod text (single-line and block form), as ``old [v] => new [v]``."""
    lines: list[str] = []
    in_block = False
    for raw in gomod.splitlines():
        line = raw.split("//", 1)[0].strip()
        if line.startswith("replace ("):
            in_block = True
            continue
        if in_block and line == ")":
            in_block = False
            continue
        if line.startswith("replace "):
            line = line[len("replace "):]
        elif not in_block:
            continue
        if "=>" in line:
            lines.append(line)
    return lines


def parse_replaces(gomod: str) -> list[str]:
    """Non-local ``replace`` directives of a go.mod text, as ``old [v] => new v`` strings (a local path inside the
    source repository is left out: we require that module instead)."""
    return [line for line in _replace_lines(gomod) if not line.split("=>", 1)[1].strip().startswith((".", "/"))]


def _wrapper_build(module: str, version: str, requires: list[str], package: str, output: Path, ldflags: str,
                   work: Path, env: dict, progress: Progress, replaces: list[str] | None = None) -> None:
    """Build ``package`` of ``module@version`` from a throwaway main module that requires it.

    A dependency's ``replace`` directives do not apply to its dependents, so the wrapper repeats
    them (``replaces``; by default the module's non-local ones).
    """
    if replaces is None:
        replaces = _module_replaces(module, version, work, env)
    lines = ["module engine.local/toolchain/wrapper", "", "go 1.24", ""]
    lines += [f"replace {r}" for r in replaces]
    lines += ["", "require ("] + [f"\t{m} v{version}" for m in [module, *requires]] + [")", ""]
    (work / "go.mod").write_text("\n".join(lines))
    _run_with_heartbeat(["go", "mod", "download"], work, env, f"downloading modules for {package}", progress)
    _run_with_heartbeat(["go", "build", "-trimpath", "-ldflags", ldflags, "-o", str(output), package], work, env, f"compiling {package}", progress)


def _build_pulumi(version: str, work: Path, bin_dir: Path, env: dict, progress: Progress) -> None:
    progress(f"building pulumi v{version} from the Go module proxy (about 5 minutes on 2 cores; cached afterwards)")
    _wrapper_build(
        "github.com/pulumi/pulumi/pkg/v3", version, ["github.com/pulumi/pulumi/sdk/v3"], "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi",
        bin_dir / "pulumi", f"-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v{version}", work, env, progress,
    )
    # The Python helpers are plain scripts inside the sdk/v3 module.
    out = process.run(["go", "mod", "download", "-json", f"github.com/pulumi/pulumi/sdk/v3@v{version}"], cwd=work, env=env, timeout=600)
    try:
        sdk_dir = Path(json.loads(out.stdout)["Dir"])
    except (ValueError, KeyError) as exc:
        raise ToolchainError(f"could not locate the pulumi sdk/v3 module: {out.stderr.strip()}") from exc
    for src, dst in PULUMI_HELPERS.items():
        shutil.copyfile(sdk_dir / src, bin_dir / dst)
        (bin_dir / dst).chmod(0o755)
    got = _version_of(str(bin_dir / "pulumi"), ["version"])
    if got != f"v{version}":
        raise ToolchainError(f"built pulumi reports version {got!r}, expected v{version}")


def _build_tofu(version: str, work: Path, bin_dir: Path, env: dict, progress: Progress) -> None:
    progress(f"building OpenTofu v{version} from the Go module proxy (about 5 minutes on 2 cores; cached afterwards)")
    _wrapper_build(
        "github.com/opentofu/opentofu", version, [], "github.com/opentofu/opentofu/cmd/tofu",
        bin_dir / "tofu", "-s -w -X github.com/opentofu/opentofu/version.dev=no", work, env, progress,
    )
    got = _version_of(str(bin_dir / "tofu"), ["version"]) or ""
    if got != f"OpenTofu v{version}":
        raise ToolchainError(f"built tofu reports {got!r}, expected OpenTofu v{version}")


def parse_local_replaces(gomod: str) -> list[str]:
    """The module paths a go.mod replaces with a directory of its own repository (``M => ./dir``)."""
    return [line.split("=>", 1)[0].split()[0] for line in _replace_lines(gomod) if line.split("=>", 1)[1].strip().startswith("./")]


def nested_module_versions(info: dict, listed: list[str]) -> list[str]:
    """The pseudo-versions that name a release's own commit for a module nested in its repository.

    Terraform 1.9 and later replace their nested modules (the state backends, ``internal/legacy``)
    with directories the published module leaves out; the proxy serves them only as pseudo-versions
    ``v0.0.0-<commit time>-<commit>``.  From the release's ``.info``: its commit (``Origin.Hash``)
    and time give that pseudo-version directly; without the commit, a pseudo-version the proxy lists
    for the nested module at exactly the release's commit time.  Best first; empty when neither is known.
    """
    stamp = _pseudo_stamp(info.get("Time", ""))
    if not stamp:
        return []
    found = []
    commit = (info.get("Origin") or {}).get("Hash") or ""
    if len(commit) >= 12:
        found.append(f"v0.0.0-{stamp}-{commit[:12]}")
    found += [v for v in listed if v.startswith(f"v0.0.0-{stamp}-") and v not in found]
    return found


def _pseudo_stamp(when: str) -> str | None:
    import datetime

    try:
        moment = datetime.datetime.strptime(when.replace("Z", "+00:00")[:25], "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return None
    return moment.astimezone(datetime.timezone.utc).strftime("%Y%m%d%H%M%S")


def _proxy_list(module: str, env: dict) -> list[str]:
    """The versions the first Go module proxy lists for ``module`` (pseudo-versions included); [] if it can't say."""
    proxy = next((p for p in env.get("GOPROXY", "").replace("|", ",").split(",") if p.startswith(("https://", "http://"))), None)
    if proxy is None:
        got = process.run(["go", "env", "GOPROXY"], env=env, timeout=60).stdout.strip()
        proxy = next((p for p in got.replace("|", ",").split(",") if p.startswith(("https://", "http://"))), None)
    if proxy is None:
        return []
    try:
        return _fetch(f"{proxy.rstrip('/')}/{_escape_module(module)}/@v/list").decode().split()
    except Exception:  # noqa: BLE001 - an unreachable list only loses the fallback
        return []


def _escape_module(module: str) -> str:
    return "".join(f"!{c.lower()}" if c.isupper() else c for c in module)


def _build_terraform(version: str, work: Path, bin_dir: Path, env: dict, progress: Progress) -> None:
    progress(f"building HashiCorp Terraform v{version} from the Go module proxy (3-10 minutes on 2 cores; cached afterwards)")
    release = _module_download(TERRAFORM_MODULE, version, work, env)
    needed = go_directive(release["GoModText"])
    local = process.run(["go", "env", "GOVERSION"], env=env, timeout=60).stdout.strip().removeprefix("go")
    if needed and local and env.get("GOTOOLCHAIN") == "local" and _go_version_key(needed) > _go_version_key(local):
        # The release needs a newer Go than the machine's: let go fetch that toolchain (a module on the proxy).
        progress(f"Terraform v{version} needs Go {needed} (this machine has {local}): building with GOTOOLCHAIN=go{needed}")
        env = {**env, "GOTOOLCHAIN": f"go{needed}"}
    replaces = parse_replaces(release["GoModText"])
    for nested in parse_local_replaces(release["GoModText"]):
        candidates = nested_module_versions(release["InfoJSON"], _proxy_list(nested, env))
        chosen = next((v for v in candidates if _served(nested, v, work, env)), None)
        if chosen is None:
            raise ToolchainError(
                f"HashiCorp Terraform v{version} cannot be built here: the Go module proxy does not serve its nested module "
                f"{nested} at the release's commit",
                hint="pick a release line the engine lists as buildable (`engine tools status`)")
        replaces.append(f"{nested} => {nested} {chosen}")
    _wrapper_build(TERRAFORM_MODULE, version, [], TERRAFORM_MODULE, bin_dir / "terraform",
                   "-s -w -X github.com/hashicorp/terraform/version.dev=no", work, env, progress, replaces=replaces)
    got = terraform_version_of(str(bin_dir / "terraform"))
    if got != version:
        raise ToolchainError(f"built terraform reports version {got!r}, expected {version}")


def go_directive(gomod: str) -> str | None:
    """The ``go`` line of a go.mod ("1.26.8"): the oldest Go that may build the module."""
    for raw in gomod.splitlines():
        parts = raw.split("//", 1)[0].split()
        if len(parts) == 2 and parts[0] == "go":
            return parts[1]
    return None


def _go_version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def _served(module: str, version: str, work: Path, env: dict) -> bool:
    return process.run(["go", "mod", "download", "-json", f"{module}@{version}"], cwd=work, env=env, timeout=900).returncode == 0


# ---------------------------------------------------------------------------
# The engine's own OpenTofu provider (terraform/provider), served from a filesystem mirror

PROVIDER_ADDRESS = ("registry.opentofu.org", "engine", "enginelocal")
# ``engine/enginelocal`` resolves against each binary's own registry: OpenTofu's and HashiCorp Terraform's.
# The mirror holds the provider under both, so the local module deploys with either (and each finds
# the address the other wrote into state).
PROVIDER_HOSTS = ("registry.opentofu.org", "registry.terraform.io")
PROVIDER_VERSION = "0.1.0"


def provider_source() -> Path:
    """The enginelocal provider's Go source: in the engine's checkout, or the provider catalog's (an installed engine)."""
    checkout = Path(__file__).resolve().parent.parent / "terraform" / "provider"
    if checkout.is_dir():
        return checkout
    return Path(os.environ.get("ENGINE_CATALOG") or ".").resolve() / "terraform" / "provider"


def provider_mirror_dir(src: Path) -> Path:
    """Where the mirror of the provider built from ``src`` lives: keyed by a digest of its Go source."""
    files = sorted(p for p in src.rglob("*") if p.is_file() and (p.suffix == ".go" or p.name in ("go.mod", "go.sum")))
    if not files:
        raise ToolchainError(f"the enginelocal provider source is missing at {src}")
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(src)).encode() + b"\0" + path.read_bytes())
    return cache_root() / "tofu-providers" / digest.hexdigest()[:16]


def ensure_provider_mirror(*, progress: Progress = _stderr_progress, allow_install: bool = True) -> Path:
    """A filesystem mirror holding the ``engine/enginelocal`` provider under every host in
    ``PROVIDER_HOSTS``, built from source once.

    Keyed by a digest of the provider's source, so a change rebuilds it.  A mirror built before it
    held every host gets the missing ones added (a copy, no build).  Raises ``ToolchainError`` when
    it is missing and cannot be built.
    """
    src = provider_source()
    mirror = provider_mirror_dir(src)
    key = mirror.name
    _, namespace, name = PROVIDER_ADDRESS
    relative = Path(namespace) / name / PROVIDER_VERSION / f"linux_{_arch()}" / f"terraform-provider-{name}_v{PROVIDER_VERSION}"
    binaries = [mirror / host / relative for host in PROVIDER_HOSTS]
    if all(b.is_file() for b in binaries) and (mirror / ".complete").is_file():
        return mirror
    built = (mirror / ".complete").is_file() and binaries[0].is_file()
    if not built and (not allow_install or os.environ.get("ENGINE_NO_TOOL_INSTALL")):
        raise ToolchainError("the enginelocal OpenTofu provider is not built", hint="run `engine tools install`")
    if not built and not shutil.which("go"):
        raise ToolchainError("building the enginelocal OpenTofu provider needs `go` on PATH", hint="install Go 1.24 or newer")
    mirror.parent.mkdir(parents=True, exist_ok=True)
    with open(mirror.parent / f".{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (mirror / ".complete").is_file() and binaries[0].is_file():
            _add_hosts(binaries)
            return mirror

        def build(staging: Path) -> dict:
            out = staging / PROVIDER_HOSTS[0] / relative
            out.parent.mkdir(parents=True)
            progress("building the enginelocal OpenTofu provider (about a minute the first time)")
            _run_with_heartbeat(["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(out), "."], src, _go_env(),
                                "compiling the enginelocal provider", progress)
            _add_hosts([staging / host / relative for host in PROVIDER_HOSTS])
            return {"source_digest": key, "hosts": list(PROVIDER_HOSTS)}

        _install_atomically(mirror, build)
    progress(f"enginelocal provider ready in {mirror}")
    return mirror


def _add_hosts(binaries: list[Path]) -> None:
    """Copy the first host's provider binary to the others' places (atomically: readers never see half a file)."""
    for other in binaries[1:]:
        if other.is_file():
            continue
        other.parent.mkdir(parents=True, exist_ok=True)
        tmp = other.with_name(f".{other.name}.{os.getpid()}.tmp")
        shutil.copy2(binaries[0], tmp)
        os.replace(tmp, other)


def _actionlint():
    """The workflow linter's own module: only the workflow tests (and `engine tools install`) need it."""
    from engine import actionlint

    return actionlint
