"""Tool resolution: PATH at the pinned version, then the cache, then download, then a Go build."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from engine import toolchain
from engine.errors import ToolchainError

GOMOD = """module github.com/pulumi/pulumi/pkg/v3

go 1.24

replace github.com/pulumi/pulumi/sdk/v3 => ../sdk

replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e

replace (
\tgithub.com/hashicorp/hcl/v2 v2.20.1 => github.com/opentofu/hcl/v2 v2.20.2-0.20250121132637-504036cd70e7 // fork
\texample.com/local => ./local
)

require github.com/foo/bar v1.0.0
"""


def test_parse_replaces_keeps_only_non_local_targets():
    assert toolchain.parse_replaces(GOMOD) == [
        "github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e",
        "github.com/hashicorp/hcl/v2 v2.20.1 => github.com/opentofu/hcl/v2 v2.20.2-0.20250121132637-504036cd70e7",
    ]


def _script(path: Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    path_dir = tmp_path / "path"
    path_dir.mkdir()
    monkeypatch.setenv("PATH", str(path_dir))
    monkeypatch.setenv("ENGINE_TOOL_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("ENGINE_NO_TOOL_INSTALL")  # these tests exercise the install route itself (no go, no network: it fails fast)
    # an address that refuses at once: "download not reachable"
    monkeypatch.setattr(toolchain, "PULUMI_CHECKSUMS", "http://127.0.0.1:9/{v}")
    monkeypatch.setattr(toolchain, "TOFU_CHECKSUMS", "http://127.0.0.1:9/{v}")
    return path_dir


def test_pulumi_on_path_at_the_wrong_version_is_not_used(isolated, tmp_path):
    _script(isolated / "pulumi", 'echo "v3.1.0"')
    _script(isolated / "pulumi-resource-pulumi-python", "exit 0")
    cached = tmp_path / "cache" / "pulumi" / toolchain.pulumi_version()
    (cached / "bin").mkdir(parents=True)
    _script(cached / "bin" / "pulumi", f'echo "v{toolchain.pulumi_version()}"')
    (cached / ".complete").write_text("{}")
    tool = toolchain.ensure("pulumi", progress=lambda _m: None)
    assert tool.source == "cache" and tool.bin_dir == cached / "bin"


def test_pulumi_on_path_at_the_pinned_version_wins(isolated):
    _script(isolated / "pulumi", f'echo "v{toolchain.pulumi_version()}"')
    _script(isolated / "pulumi-resource-pulumi-python", "exit 0")
    tool = toolchain.ensure("pulumi", progress=lambda _m: None)
    assert tool.source == "path" and tool.bin_dir == isolated


def test_incomplete_cache_entry_is_ignored(isolated, tmp_path):
    cached = tmp_path / "cache" / "tofu" / toolchain.TOFU_VERSION / "bin"
    cached.mkdir(parents=True)
    _script(cached / "tofu", f'echo "OpenTofu v{toolchain.TOFU_VERSION}"')  # no .complete marker: an interrupted install
    with pytest.raises(ToolchainError) as err:
        toolchain.ensure("tofu", allow_install=False)
    assert "engine tools install" in err.value.hint


def test_no_download_and_no_go_is_an_actionable_error(isolated):
    messages: list[str] = []
    with pytest.raises(ToolchainError) as err:
        toolchain.ensure("tofu", progress=messages.append)
    assert "`go` is not on PATH" in err.value.message and "install Go" in err.value.hint
    assert any("not reachable" in m for m in messages)
    # nothing half-installed is left in the cache
    assert not (Path(os.environ["ENGINE_TOOL_CACHE"]) / "tofu" / toolchain.TOFU_VERSION).exists()


def test_status_reports_without_installing(isolated):
    rows = {r["name"]: r for r in toolchain.status()}
    assert rows["pulumi"]["installed"] is False and rows["tofu"]["installed"] is False
