"""Tool resolution: PATH at the pinned version, then the cache, then download, then a Go build."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from engine import toolchain
from engine.errors import InputError, ToolchainError

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
    monkeypatch.setattr(toolchain, "TERRAFORM_CHECKSUMS", "http://127.0.0.1:9/{v}")
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


TERRAFORM_GOMOD = """module github.com/hashicorp/terraform

go 1.26.8

replace github.com/hashicorp/terraform/internal/backend/remote-state/s3 => ./internal/backend/remote-state/s3

replace (
\tgithub.com/hashicorp/terraform/internal/legacy => ./internal/legacy // not published on its own
\tgithub.com/example/fork => github.com/example/fork2 v1.0.0
)
"""


def test_terraforms_nested_modules_are_the_ones_replaced_with_its_own_directories():
    assert toolchain.parse_local_replaces(TERRAFORM_GOMOD) == [
        "github.com/hashicorp/terraform/internal/backend/remote-state/s3", "github.com/hashicorp/terraform/internal/legacy"]
    assert toolchain.parse_replaces(TERRAFORM_GOMOD) == ["github.com/example/fork => github.com/example/fork2 v1.0.0"]


def test_the_go_a_release_needs_is_its_go_mod_go_line():
    assert toolchain.go_directive(TERRAFORM_GOMOD) == "1.26.8"
    assert toolchain._go_version_key("1.27.3") > toolchain._go_version_key("1.26.8") > toolchain._go_version_key("1.26")


def test_a_nested_module_is_taken_at_the_releases_own_commit():
    info = {"Version": "v1.16.4", "Time": "2026-09-23T11:57:56Z", "Origin": {"Hash": "6ee8af215a535cfca08bf729ff1017d4221d6667"}}
    assert toolchain.nested_module_versions(info, []) == ["v0.0.0-20260923115756-6ee8af215a53"]
    # without the commit (a mirror's .info): the listed pseudo-version at exactly the release's time, never another commit's
    listed = ["v0.0.0-20240820172403-2770cb376c53", "v0.0.0-20250409131005-35645b8fca68"]
    assert toolchain.nested_module_versions({"Version": "v1.11.4", "Time": "2025-04-09T13:10:05Z"}, listed) == ["v0.0.0-20250409131005-35645b8fca68"]
    assert toolchain.nested_module_versions({"Version": "v1.9.8", "Time": "2024-10-16T12:28:59Z"}, listed) == []


def _fake_terraform(path: Path, version: str) -> None:
    _script(path, f"echo '{{\"terraform_version\": \"{version}\", \"platform\": \"linux_amd64\"}}'")


def test_terraform_on_path_serves_only_its_exact_release(isolated):
    _fake_terraform(isolated / "terraform", "1.6.6")
    assert toolchain.ensure("terraform", version="1.6.6", allow_install=False).source == "path"
    with pytest.raises(ToolchainError) as err:
        toolchain.ensure("terraform", version="1.16.4", allow_install=False)
    assert err.value.message == "HashiCorp Terraform v1.16.4 is not installed"
    assert "engine tools install --terraform 1.16" in err.value.hint


def test_a_built_terraform_release_is_found_in_the_shared_cache(isolated, tmp_path):
    cached = tmp_path / "cache" / "terraform" / "1.16.4"
    (cached / "bin").mkdir(parents=True)
    _fake_terraform(cached / "bin" / "terraform", "1.16.4")
    (cached / ".complete").write_text("{}")
    tool = toolchain.ensure("terraform", version="1.16.4", allow_install=False)
    assert (tool.source, tool.executable) == ("cache", cached / "bin" / "terraform")


def test_a_terraform_build_without_go_fails_with_what_to_do_and_leaves_nothing(isolated):
    with pytest.raises(ToolchainError) as err:
        toolchain.ensure("terraform", version="1.16.4", progress=lambda _m: None)
    assert "`go` is not on PATH" in err.value.message
    assert not (Path(os.environ["ENGINE_TOOL_CACHE"]) / "terraform" / "1.16.4").exists()


def test_status_lists_every_terraform_release_the_engine_serves_and_the_lines_it_cannot_build(isolated):
    rows = [r for r in toolchain.status() if r["name"] == "terraform"]
    built = {r["line"]: r["version"] for r in rows if r["buildable"]}
    assert built == toolchain.TERRAFORM_BUILDS and all(not r["installed"] for r in rows)
    assert {r["line"]: r["reason"] for r in rows if not r["buildable"]} == toolchain.TERRAFORM_NOT_BUILDABLE


def test_the_distribution_setting_is_checked(monkeypatch):
    monkeypatch.delenv("ENGINE_TERRAFORM_DISTRIBUTION", raising=False)
    assert toolchain.terraform_distribution() == "terraform"
    monkeypatch.setenv("ENGINE_TERRAFORM_DISTRIBUTION", "OpenTofu")
    assert toolchain.terraform_distribution() == "opentofu"
    monkeypatch.setenv("ENGINE_TERRAFORM_DISTRIBUTION", "tofu")
    with pytest.raises(InputError):
        toolchain.terraform_distribution()


def test_a_provider_mirror_built_for_opentofu_only_gets_terraforms_registry_address_without_a_rebuild(isolated, tmp_path, monkeypatch):
    src = tmp_path / "provider"
    src.mkdir()
    (src / "main.go").write_text("package main\n")
    monkeypatch.setattr(toolchain, "provider_source", lambda: src)
    mirror = toolchain.provider_mirror_dir(src)
    relative = Path("engine/enginelocal/0.1.0") / f"linux_{toolchain._arch()}" / "terraform-provider-enginelocal_v0.1.0"
    (mirror / "registry.opentofu.org" / relative).parent.mkdir(parents=True)
    (mirror / "registry.opentofu.org" / relative).write_bytes(b"provider binary")
    (mirror / ".complete").write_text("{}")
    assert toolchain.ensure_provider_mirror(allow_install=False) == mirror  # no go on PATH: nothing is built
    assert (mirror / "registry.terraform.io" / relative).read_bytes() == b"provider binary"


def test_tools_status_says_who_serves_each_terraform_line(tmp_path, monkeypatch):
    from tests.conftest import EngineCLI

    monkeypatch.setenv("PATH", str(tmp_path))  # no terraform on PATH: every release shows as the engine's own build
    cli = EngineCLI(tmp_path / "home", tmp_path)
    text = cli("tools", "status", check=0).stdout
    for line, version in toolchain.TERRAFORM_BUILDS.items():
        assert f"  {line:<5} HashiCorp Terraform v{version:<8} not built yet (built on first use)" in text, text
    high = ".".join(toolchain.TOFU_VERSION.split(".")[:2])
    for line, reason in toolchain.TERRAFORM_NOT_BUILDABLE.items():
        served = f"OpenTofu v{toolchain.TOFU_VERSION:<17} (Terraform {line}: {reason})" if toolchain._line_key(line) <= toolchain._line_key(high) \
            else f"refused (exit 2)             ({reason})"
        assert f"  {line:<5} {served}" in text, text
    assert f"other lines 1.6–{high}: OpenTofu v{toolchain.TOFU_VERSION}; anything else is refused (exit 2)" in text
    data = cli("tools", "status", "--json", check=0).json()
    assert data["terraform_distribution"] == "terraform" and data["opentofu_serves"] == f"1.6-{high}"

    monkeypatch.setenv("ENGINE_TERRAFORM_DISTRIBUTION", "opentofu")
    text = cli("tools", "status", check=0).stdout
    assert "HashiCorp" not in text
    assert f"  1.6   OpenTofu v{toolchain.TOFU_VERSION:<17} (ENGINE_TERRAFORM_DISTRIBUTION=opentofu)" in text


def test_tools_install_refuses_a_terraform_line_it_does_not_build_before_installing_anything(tmp_path):
    from tests.conftest import EngineCLI

    run = EngineCLI(tmp_path / "home", tmp_path)("tools", "install", "--terraform", "1.99")
    assert run.code == 2
    assert "--terraform 1.99: the engine does not build that release" in run.stderr
    assert "the releases it builds: " + ", ".join(f"{k} (v{v})" for k, v in toolchain.TERRAFORM_BUILDS.items()) in run.stderr


def test_concurrent_engines_needing_one_terraform_release_build_it_once(isolated, monkeypatch):
    import threading
    import time

    builds: list[str] = []

    def slow_build(name, version, bin_dir, progress):
        builds.append(version)
        time.sleep(0.5)  # the others arrive while this one holds the install lock
        _fake_terraform(bin_dir / "terraform", version)
        return "go-build"

    monkeypatch.setattr(toolchain, "_go_build", slow_build)
    monkeypatch.setattr(toolchain, "_download", lambda *a: None)
    found: list[toolchain.Tool] = []
    engines = [threading.Thread(target=lambda: found.append(toolchain.ensure("terraform", version="1.16.4", progress=lambda _m: None)))
               for _ in range(3)]
    for engine in engines:
        engine.start()
    for engine in engines:
        engine.join(10)
    assert builds == ["1.16.4"]  # one build; the others waited for it and found it complete
    assert len(found) == 3 and len({tool.executable for tool in found}) == 1
    assert [p.name for p in (Path(os.environ["ENGINE_TOOL_CACHE"]) / "terraform").iterdir() if not p.name.startswith(".1")] == ["1.16.4"]
