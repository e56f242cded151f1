"""Terraform path pieces that need no binary: which binary serves terraform_version, state switches, backend config."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import InputError
from engine.home import EngineHome
from engine.planning import StackTarget
from engine.runners.terraform import Binary, TerraformRunner, backend_config, downgrade, select_binary, state_written_by
from engine import toolchain
from engine.toolchain import Tool

BUILDS = {"1.6": "1.6.6", "1.11": "1.11.4", "1.16": "1.16.4"}  # what the engine can build (a test table)


def pick(requested, **kw):
    kw.setdefault("tofu_version", "1.12.6")
    kw.setdefault("terraform_builds", BUILDS)
    return select_binary(requested, **kw)


def test_without_a_pin_the_pinned_opentofu_serves():
    assert pick(None).label == "OpenTofu v1.12.6"


@pytest.mark.parametrize(("requested", "label"), [
    ("1.6", "Terraform v1.6.6"), ("1.11", "Terraform v1.11.4"), ("1.16", "Terraform v1.16.4"),  # the line's newest buildable release
    ("1.6.6", "Terraform v1.6.6"),  # an exact release that is the one built
])
def test_a_line_the_engine_builds_is_served_by_that_hashicorp_release(requested, label):
    chosen = pick(requested)
    assert (chosen.label, chosen.path) == (label, "")  # chosen before anything is installed


@pytest.mark.parametrize("requested", ["1.7", "1.10", "1.12"])
def test_other_lines_in_opentofus_range_are_served_by_opentofu(requested):
    assert pick(requested).label == "OpenTofu v1.12.6"


def test_an_exact_release_other_than_the_built_one_is_bad_input_naming_the_built_one():
    with pytest.raises(InputError) as err:
        pick("1.6.2")
    assert "terraform_version 1.6.2 cannot be satisfied" in err.value.message
    assert 'the engine builds 1.6 at v1.6.6' in err.value.hint and '"1.6"' in err.value.hint


def test_opentofu_never_stands_in_for_an_exact_terraform_release():
    with pytest.raises(InputError) as err:
        pick("1.10.2")
    assert 'OpenTofu serves release lines, not exact Terraform releases: set terraform_version to "1.10"' in err.value.hint


@pytest.mark.parametrize("requested", ["1.5", "0.14", "1.17", "2.0"])
def test_a_version_nothing_serves_is_bad_input_naming_what_can_be_had(requested):
    with pytest.raises(InputError) as err:
        pick(requested)
    assert err.value.exit_code == 2
    assert err.value.message == (f"terraform_version {requested} cannot be satisfied: HashiCorp Terraform 1.6 (v1.6.6), 1.11 (v1.11.4), "
                                 "1.16 (v1.16.4); OpenTofu v1.12.6 for the lines 1.6–1.12")
    assert err.value.hint.endswith("one of: 1.6, 1.7, 1.8, 1.9, 1.10, 1.11, 1.12, 1.16")


def test_the_opentofu_only_distribution_serves_every_pin_with_opentofu():
    assert pick("1.6", distribution="opentofu").label == "OpenTofu v1.12.6"
    assert pick("1.6", distribution="opentofu", terraform_on_path=("/usr/bin/terraform", "1.6.6")).label == "OpenTofu v1.12.6"
    with pytest.raises(InputError) as err:
        pick("1.16", distribution="opentofu")
    assert "HashiCorp" not in err.value.message and "OpenTofu only: ENGINE_TERRAFORM_DISTRIBUTION=opentofu" in err.value.message
    assert err.value.hint.endswith("one of: 1.6, 1.7, 1.8, 1.9, 1.10, 1.11, 1.12")


def test_a_terraform_on_path_serves_its_exact_release_or_a_line_the_engine_cannot_build():
    on_path = lambda v: ("/usr/bin/terraform", v)  # noqa: E731
    assert pick("1.6", terraform_on_path=on_path("1.6.6")) == Binary("terraform", "1.6.6", "/usr/bin/terraform")
    assert pick("1.6", terraform_on_path=on_path("1.6.5")) == Binary("terraform", "1.6.6")  # not the line's newest: build it
    assert pick("1.6.5", terraform_on_path=on_path("1.6.5")).path == "/usr/bin/terraform"  # asked for exactly that one
    assert pick("1.10", terraform_on_path=on_path("1.10.3")) == Binary("terraform", "1.10.3", "/usr/bin/terraform")
    assert pick("1.10", terraform_on_path=on_path("1.9.8")).label == "OpenTofu v1.12.6"  # another line: not used


def _state(version: str, host: str) -> dict:
    return {"version": 4, "terraform_version": version,
            "resources": [{"mode": "managed", "type": "enginelocal_document", "name": "a", "provider": f'provider["{host}/engine/enginelocal"]'}]}


def test_the_binary_that_wrote_a_state_shows_in_its_provider_addresses():
    assert state_written_by(_state("1.16.4", "registry.terraform.io")) == ("terraform", "1.16.4")
    assert state_written_by(_state("1.10.6", "registry.opentofu.org")) == ("opentofu", "1.10.6")
    assert state_written_by({"version": 4, "terraform_version": "1.6.6", "resources": []}) is None


def test_an_older_terraform_line_may_not_rewrite_a_newer_ones_state():
    problem = downgrade(_state("1.16.4", "registry.terraform.io"), Binary("terraform", "1.6.6"))
    assert problem and problem[0].startswith("state was last written by Terraform v1.16.4; Terraform v1.6.6 is an older release line")
    assert "set terraform_version back to 1.16" in problem[1] and "destroy the stack with Terraform v1.16.4 first" in problem[1]


@pytest.mark.parametrize(("state", "binary"), [
    (_state("1.6.6", "registry.terraform.io"), Binary("terraform", "1.16.4")),  # an upgrade
    (_state("1.16.4", "registry.terraform.io"), Binary("terraform", "1.16.2")),  # an older patch of the same line
    (_state("1.10.6", "registry.opentofu.org"), Binary("terraform", "1.6.6")),  # OpenTofu's numbers are not Terraform's
    (_state("1.16.4", "registry.terraform.io"), Binary("opentofu", "1.12.6")),  # the provider switched to OpenTofu
    (None, Binary("terraform", "1.6.6")),  # nothing deployed yet
])
def test_upgrades_and_switches_between_terraform_and_opentofu_may_write(state, binary):
    assert downgrade(state, binary) is None


def _target(url: str, version: str | None = "1.6") -> StackTarget:
    return StackTarget("acme", "staging", "terraform", "local", "acme", "staging", url, {}, tool_version=version)


def test_backend_is_inside_the_customers_state_location():
    assert backend_config(_target("file:///srv/state/acme")) == {"local": {"path": "/srv/state/acme/terraform/staging.tfstate"}}
    s3 = backend_config(_target("s3://bucket/fleet/acme?region=eu-west-1&endpoint=http://127.0.0.1:9000&use_path_style=true"))["s3"]
    assert s3["bucket"] == "bucket" and s3["key"] == "fleet/acme/terraform/staging.tfstate"
    assert s3["use_lockfile"] is True and s3["endpoints"] == {"s3": "http://127.0.0.1:9000"} and s3["use_path_style"] is True


class Tools:
    """A fake toolchain for the runner: records what it was asked to install."""

    def __init__(self):
        self.asked: list[tuple[str, str]] = []

    def __call__(self, name: str, version: str) -> Tool:
        self.asked.append((name, version))
        return Tool(name, version, Path(f"/cache/{name}/{version}/bin"), "cache")


def _runner(tmp_path, tools, distribution="terraform") -> TerraformRunner:
    return TerraformRunner(EngineHome(tmp_path / "home"), find_tool=tools, find_mirror=lambda: tmp_path / "mirror",
                           find_terraform=lambda: None, distribution=distribution)


def test_prepare_installs_each_chosen_binary_once_before_any_stack_runs(tmp_path):
    tools = Tools()
    runner = _runner(tmp_path, tools)
    terraform_release = select_binary("1.6").version  # the engine's own table
    runner.prepare([_target("file:///s/a", "1.6"), _target("file:///s/b", "1.6"), _target("file:///s/c", None)])
    assert sorted(tools.asked) == sorted([("terraform", terraform_release), ("tofu", select_binary(None).version)])
    assert runner.binary(_target("file:///s/a", "1.6")).path == f"/cache/terraform/{terraform_release}/bin/terraform"


def test_prepare_refuses_an_unsatisfiable_pin_before_installing_anything(tmp_path):
    tools = Tools()
    with pytest.raises(InputError) as err:
        _runner(tmp_path, tools).prepare([_target("file:///s/a", "1.6"), _target("file:///s/b", "9.9")])
    assert "terraform_version 9.9 cannot be satisfied" in err.value.message
    assert tools.asked == []


def test_s3_state_needs_a_release_that_locks_with_a_lock_file(tmp_path):
    tools = Tools()
    old = _runner(tmp_path, tools)
    old_line = next(line for line in ("1.6", "1.7", "1.8", "1.9") if select_binary(line).distribution == "terraform")
    with pytest.raises(InputError) as err:
        old.prepare([_target("s3://bucket/fleet/acme?region=eu-west-1", old_line)])
    assert "keeps its state in S3" in err.value.message and "only with DynamoDB" in err.value.message
    assert "ENGINE_TERRAFORM_DISTRIBUTION=opentofu" in err.value.hint and tools.asked == []
    _runner(tmp_path, tools, distribution="opentofu").prepare([_target("s3://bucket/fleet/acme?region=eu-west-1", old_line)])
    assert tools.asked[0][0] == "tofu"  # OpenTofu locks S3 state with its lock file


def test_an_unknown_distribution_setting_is_bad_input(tmp_path, monkeypatch):
    monkeypatch.setenv("ENGINE_TERRAFORM_DISTRIBUTION", "hashicorp-only")
    runner = TerraformRunner(EngineHome(tmp_path / "home"), find_tool=Tools(), find_terraform=lambda: None)
    with pytest.raises(InputError) as err:
        runner.prepare([_target("file:///s/a", "1.6")])
    assert "ENGINE_TERRAFORM_DISTRIBUTION='hashicorp-only' is not one of: terraform, opentofu" in err.value.message


def test_explain_says_what_serves_a_pin_or_why_nothing_can(monkeypatch, tmp_path):
    from engine.runners.terraform import explain

    monkeypatch.setenv("PATH", str(tmp_path))  # no terraform on PATH
    line, release = next(iter(toolchain.TERRAFORM_BUILDS.items()))
    assert explain(line) == f"Terraform v{release}"
    assert explain(None) == f"OpenTofu v{toolchain.TOFU_VERSION}"
    assert explain("9.9").startswith("terraform_version 9.9 cannot be satisfied: HashiCorp Terraform ")
    monkeypatch.setenv("ENGINE_TERRAFORM_DISTRIBUTION", "opentofu")
    assert explain(line) == f"OpenTofu v{toolchain.TOFU_VERSION}"
