"""Tenants Spacelift executes, in the commands that are not runs: drift, fleet fan-out, properties show.

One rule decides who executes a tenant (engine/spacelift/settings.py `execution`): drift leaves Spacelift's
stacks to Spacelift, a fleet run prepares no local tool for them, and `engine properties show` names the
executor the engine would use.  The unit tier has no tool binary and may install none, so a command that
reached for pulumi or tofu for a Spacelift tenant fails here.
"""

from __future__ import annotations

import pytest

from tests.conftest import SMALL_CONFIG, EngineCLI, make_catalog, tenant_record
from tests.fakegithub.fixture import github_server  # noqa: F401 - fixture
from tests.fakespacelift import RunPlan
from tests.fakespacelift.fixture import spacelift_server  # noqa: F401 - fixture

NOTE = "executed by Spacelift: drift detection is Spacelift's (reconciliation)"


def catalog(tmp_path, execute: str) -> EngineCLI:
    root = make_catalog(tmp_path / "catalog", {
        "acme": (tenant_record("acme", 1, properties="{infrastructure_tools: [terraform]}"), SMALL_CONFIG.format(name="acme-app")),
        "beta": (tenant_record("beta", 2, properties="{infrastructure_tools: [pulumi]}"), SMALL_CONFIG.format(name="beta-app")),
    })
    (root / "spacelift.yml").write_text(f"repository: provider-org/manager\npoll_interval_s: 0.01\nexecute:\n{execute}")
    return EngineCLI(tmp_path / "home", root)


def test_drift_reports_spacelift_stacks_as_spacelifts_without_checking_them_or_preparing_a_tool(tmp_path, monkeypatch):
    for name in ("SPACELIFT_API_KEY_ENDPOINT", "SPACELIFT_API_KEY_ID", "SPACELIFT_API_KEY_SECRET"):
        monkeypatch.delenv(name, raising=False)  # nothing is asked of Spacelift either
    cli = catalog(tmp_path, "  default: true\n")
    run = cli("drift", "--all", "--json", check=0)  # exit 0: neither drift nor an error
    data = run.json()
    assert [(s["stack"], s["state"], s["note"]) for s in data["stacks"]] == [
        (f"{c}/{e}", "spacelift", NOTE) for c in ("acme", "beta") for e in ("staging", "production")]
    assert data["summary"]["spacelift"] == 4 and data["summary"]["error"] == 0
    text = cli("drift", "acme", check=0).stdout
    assert f"acme/staging                     terraform  spacelift     {NOTE}" in text
    assert "2 spacelift" in text


def test_drift_still_checks_the_tenants_the_engine_runs(tmp_path):
    cli = catalog(tmp_path, "  tenants: [acme]\n")
    cli("drift", "acme", "--json", check=0)  # acme alone: Spacelift's, no tool needed
    run = cli("drift", "--all", "--json")  # beta is the engine's: its check needs pulumi, which this tier does not have
    assert run.code != 0 and "pulumi" in run.json()["message"]


def test_a_fleet_run_of_spacelift_tenants_prepares_no_local_tool(tmp_path, spacelift_server, monkeypatch):
    for key, value in spacelift_server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("ENGINE_SPACELIFT_COMMIT", "c" * 40)
    for stack in ("acme-staging", "acme-production", "beta-staging", "beta-production"):
        spacelift_server.plan(stack, RunPlan(changes=[("enginelocal_document.network", "ADDED")]))
    cli = catalog(tmp_path, "  default: true\n")
    data = cli("preview", "--all", "--parallel", "2", "--json", check=0).json()
    assert data["summary"] == {"customers": 2, "stacks": 4, "succeeded": 4, "failed": 0, "skipped": 0, "blocked": 0}
    assert {sid: len(stack["_runs"]) for sid, stack in spacelift_server.stacks.items()} == {
        "acme-staging": 1, "acme-production": 1, "beta-staging": 1, "beta-production": 1}


@pytest.mark.parametrize(("execute", "executor", "reason"), [
    ("  tenants: [acme]\n", "spacelift", "spacelift.yml: execute.tenants"),
    ("  default: true\n", "spacelift", "spacelift.yml: execute.default"),
    ("  default: true\n  exclude: [acme]\n", "engine", None),
])
def test_properties_show_names_the_executor_the_engine_picks_by_spacelift_yml(tmp_path, github_server, execute, executor, reason):
    github_server.add_repo("acme-org", "app", properties={"infrastructure_tools": ["terraform"]})
    cli = catalog(tmp_path, execute)
    env = {**cli.env(), "GITHUB_API_URL": github_server.url, "GITHUB_TOKEN": "test-token"}
    cli.env = lambda: env  # type: ignore[method-assign]
    data = cli("properties", "show", "acme-org/app", "--json", check=0).json()
    assert (data["engine"]["executor"], data["engine"]["executor_reason"]) == (executor, reason)
    text = cli("properties", "show", "acme-org/app", check=0).stdout
    assert f"executor: {executor}" + (f" ({reason})" if reason else "") in text


def test_properties_show_says_spacelift_for_infrastructure_tools_even_when_spacelift_yml_excludes_the_tenant(tmp_path, github_server):
    github_server.add_repo("acme-org", "app", properties={"infrastructure_tools": ["terraform", "spacelift"]})
    cli = catalog(tmp_path, "  exclude: [acme]\n")
    record = cli.catalog / "stacks" / "acme.yml"
    record.write_text(record.read_text() + "property_overrides: [infrastructure_tools]\n")
    env = {**cli.env(), "GITHUB_API_URL": github_server.url, "GITHUB_TOKEN": "test-token"}
    cli.env = lambda: env  # type: ignore[method-assign]
    data = cli("properties", "show", "acme-org/app", "--json", check=0).json()
    assert (data["engine"]["executor"], data["engine"]["executor_reason"]) == ("spacelift", "infrastructure_tools includes spacelift")
