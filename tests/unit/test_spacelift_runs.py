"""`engine up`/`preview` of a Spacelift-executed tenant against the local Spacelift server.

The result has the shape of a local run (the same `--json` keys, the same statuses), whether the run
succeeds, fails, is left for a person to confirm, or outlasts its timeout; faults lose no result and
never trigger a run twice.
"""

from __future__ import annotations

import json

import pytest

from engine.results import Changes, StackResult
from engine.stream import Notice, ResourceStep
from engine.wiring import Wiring
from tests.conftest import SMALL_CONFIG, EngineCLI, make_catalog, tenant_record
from tests.fakespacelift import RunPlan
from tests.fakegithub.fixture import github_server  # noqa: F401 - fixture
from tests.fakespacelift.fixture import spacelift_server  # noqa: F401 - fixture

SETTINGS = """\
repository: provider-org/manager
execute:
  tenants: [acme]
poll_interval_s: 0.01
run_timeout_s: {timeout}
"""
CHANGES = [("enginelocal_document.network", "ADDED"), ("enginelocal_document.subnet[0]", "ADDED"), ("enginelocal_disk.root", "CHANGED")]
OUTPUTS = [{"id": "vpc_id", "value": "net-1", "sensitive": False}, {"id": "db_password", "value": "not-a-real-password", "sensitive": True}]


def catalog(tmp_path, tools: str = "[terraform]", auto: bool = True, timeout: float = 10):
    root = make_catalog(tmp_path / "catalog", {
        "acme": (tenant_record("acme", 1, properties=f"{{infrastructure_tools: {tools}, spacelift_auto_deploy: {str(auto).lower()}}}"),
                 SMALL_CONFIG.format(name="acme-app")),
        "other": (tenant_record("other", 2), SMALL_CONFIG.format(name="other-app")),
    })
    (root / "spacelift.yml").write_text(SETTINGS.format(timeout=timeout))
    return EngineCLI(tmp_path / "home", root)


@pytest.fixture
def env(spacelift_server, monkeypatch):
    for key, value in spacelift_server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("ENGINE_SPACELIFT_COMMIT", "c" * 40)
    for stack in ("acme-staging", "acme-production"):
        spacelift_server.plan(stack, RunPlan(changes=list(CHANGES), outputs=list(OUTPUTS)))
    return spacelift_server


def local_shape() -> dict:
    """The keys of a local run's JSON (engine/results.py), for comparison."""
    class Target:
        customer, environment, project, stack, tool = "acme", "staging", "acme", "staging", "terraform"

    result = StackResult.for_target(Target, "up", "succeeded", changes=Changes(), binary="OpenTofu v1.10.6")
    return shape(result.to_dict())


def shape(data: dict) -> dict:
    """The keys, and the keys of ``changes`` and ``details``."""
    return {k: sorted(v) if k in ("changes", "details") else None for k, v in data.items()}


def test_up_of_a_spacelift_tenant_succeeds_with_the_json_of_a_local_run(tmp_path, env):
    cli = catalog(tmp_path)
    out = cli("up", "acme", "--json", check=0).json()
    assert list(out) == ["customer", "operation", "ok", "environments"] and out["ok"]
    staging, production = out["environments"]["staging"], out["environments"]["production"]
    for result in (staging, production):
        assert shape(result) == local_shape()
        assert (result["status"], result["tool"], result["stack"].split("/")[0]) == ("succeeded", "terraform", "acme")
        assert result["changes"] == {"create": 2, "update": 1, "delete": 0, "replace": 0, "same": 0}
        assert [(r["urn_name"], r["action"], r["type"]) for r in result["resources"]][0] == (
            "enginelocal_document.network", "create", "enginelocal_document")
        assert result["outputs"] == {"vpc_id": "net-1", "db_password": "[secret]"}
        assert result["details"]["binary"].startswith("Spacelift (OpenTofu")
    # staging autodeploys (spacelift_auto_deploy); production is protected: the engine confirmed it
    confirmed = [v["stack"] for name, v in env.calls if name == "runConfirm"]
    assert confirmed == ["acme-production"]
    assert all(r["commit"]["hash"] == "c" * 40 and r["type"] == "TRACKED" for r in env.runs.values())
    assert env.stacks["acme-staging"]["autodeploy"] and not env.stacks["acme-production"]["autodeploy"]


def test_progress_is_published_on_the_event_stream(tmp_path, env):
    cli = catalog(tmp_path)
    wiring = Wiring.from_options(str(cli.catalog), str(cli.home))
    events: list = []
    wiring.stream.subscribe(events.append)
    try:
        result = wiring.engine().run("acme", "up", ["staging"])
    finally:
        wiring.close()
    assert result.ok
    kinds = [type(e).__name__ for e in events]
    assert kinds[:2] == ["RunStarted", "StackStarted"] and kinds[-2:] == ["StackDone", "RunDone"]
    notices = [e.text for e in events if isinstance(e, Notice)]
    assert any(n.startswith("Spacelift run ") and n.endswith(": planning") for n in notices)
    steps = [(e.name, e.action, e.status) for e in events if isinstance(e, ResourceStep)]
    assert ("enginelocal_document.network", "create", "") in steps and ("enginelocal_document.network", "create", "done") in steps


def test_a_failed_run_fails_its_environment_and_stops_the_rollout(tmp_path, env):
    env.plan("acme-staging", RunPlan(changes=list(CHANGES), fail_in="PLANNING"))
    out = catalog(tmp_path)("up", "acme", "--json", check=1).json()
    staging, production = out["environments"]["staging"], out["environments"]["production"]
    assert staging["status"] == "failed" and "failed while planning" in staging["error"] and "/stack/acme-staging/run/" in staging["error"]
    assert production["status"] == "skipped" and shape(staging) == local_shape()
    assert [r["_stack"] for r in env.runs.values()] == ["acme-staging"]


def test_a_run_left_for_confirmation_is_reported_waiting_and_never_confirmed_by_the_engine(tmp_path, env):
    out = catalog(tmp_path, auto=False)("up", "acme", "--json", check=1).json()
    staging = out["environments"]["staging"]
    assert staging["status"] == "failed" and staging["error"].startswith("waiting for confirmation")
    assert staging["changes"]["create"] == 2  # what the plan would do is known
    assert out["environments"]["production"]["status"] == "skipped"
    (run,) = env.runs.values()
    assert run["state"] == "UNCONFIRMED"  # left for a person, not discarded
    assert not [name for name, _ in env.calls if name in ("runConfirm", "runDiscard")]
    assert shape(staging) == local_shape()


def test_preview_is_a_proposed_run_that_confirms_nothing_and_reads_no_outputs(tmp_path, env):
    out = catalog(tmp_path)("preview", "acme", "--json", check=0).json()
    assert {r["type"] for r in env.runs.values()} == {"PROPOSED"}
    staging = out["environments"]["staging"]
    assert staging["status"] == "succeeded" and staging["changes"]["create"] == 2 and staging["outputs"] == {}
    assert not [name for name, _ in env.calls if name in ("runConfirm", "outputs")]


def test_a_run_that_outlasts_the_timeout_is_reported_timed_out(tmp_path, env):
    env.plan("acme-staging", RunPlan(hold=True))
    out = catalog(tmp_path, timeout=0.3)("up", "acme", "--json", check=1).json()
    assert out["environments"]["staging"]["error"].startswith("timed out after 0.3 s waiting for Spacelift run")
    assert "last state PLANNING" in out["environments"]["staging"]["error"]


def test_a_pulumi_tenant_opting_in_by_property_runs_through_spacelift(tmp_path, env):
    cli = catalog(tmp_path, tools="[pulumi, spacelift]")
    (cli.catalog / "spacelift.yml").write_text(SETTINGS.format(timeout=10).replace("tenants: [acme]", "tenants: []"))
    out = cli("up", "acme", "--json", check=0).json()
    assert out["environments"]["staging"]["tool"] == "pulumi" and "binary" not in out["environments"]["staging"]["details"]
    assert env.stacks["acme-staging"]["_vendor"]["pulumi"]["stackName"] == "organization/acme/staging"


def test_other_tenants_keep_the_engines_own_runners(tmp_path, env):
    cli = catalog(tmp_path)
    run = cli("plan-targets", "other", check=0)
    assert run.code == 0 and env.calls == []  # planning another tenant never asks Spacelift


def test_no_lost_result_and_no_second_run_under_server_errors_rate_limits_and_token_expiry(tmp_path, env):
    env.inject("runTrigger", 502, after=True)  # the run was triggered, the answer lost
    env.inject("run", 503, times=2)
    env.inject(None, 429, times=2, retry_after=0)
    env.inject("stackConfigAdd", 502, after=True)
    env.expire_tokens_after(12)
    out = catalog(tmp_path)("up", "acme", "--json", check=0).json()
    assert out["ok"] and [e["status"] for e in out["environments"].values()] == ["succeeded", "succeeded"]
    assert sorted(r["_stack"] for r in env.runs.values()) == ["acme-production", "acme-staging"]  # one run each
    assert list(env.stacks) == ["acme-staging", "acme-production"] and env.exchanges >= 2 and env.unauthorized >= 1


def test_spacelift_tenant_without_credentials_is_bad_input_before_anything_runs(tmp_path, env, monkeypatch):
    monkeypatch.delenv("SPACELIFT_API_KEY_ID")
    run = catalog(tmp_path)("up", "acme", check=2)
    assert "SPACELIFT_API_KEY_ID not set" in run.stderr and env.calls == []


def test_a_dry_run_preview_never_changes_the_stack(tmp_path, env):
    cli = catalog(tmp_path)
    cli("up", "acme", check=0)  # the stacks exist
    record = cli.catalog / "stacks" / "acme.yml"
    record.write_text(record.read_text().replace("network_index: 1", "network_index: 7"))
    wiring = Wiring.from_options(str(cli.catalog), str(cli.home))
    wiring.dry_run = True
    notices: list = []
    wiring.stream.subscribe(lambda e: notices.append(e.text) if isinstance(e, Notice) else None)
    before = len(env.mutations())
    try:
        result = wiring.engine().run("acme", "preview", ["staging"])
    finally:
        wiring.close()
    assert result.ok and [name for name, _ in env.mutations()[before:]] == ["runTrigger"]  # a proposed run only
    assert any(n.startswith("dry run: would update Spacelift stack acme-staging (TF_VAR_network)") for n in notices)


# -- the GitHub loop: the same feedback as a local run --------------------------------------------------

SHA = "5" * 40


@pytest.fixture
def github_loop(tmp_path, env, github_server, monkeypatch):  # noqa: F811
    """acme (terraform, Spacelift-executed) read from its repository on the local GitHub server; a dispatch to apply."""
    record = ("customer: acme\nrepository: acme-org/app\ntarget: local\nnetwork_index: 1\ndispatch_auth: allowed_senders\n"
              "allowed_senders: [acme-bot]\nproperties: {infrastructure_tools: [terraform], spacelift_auto_deploy: true}\n")
    root = make_catalog(tmp_path / "catalog", {"acme": (record, None)})
    (root / "spacelift.yml").write_text(SETTINGS.format(timeout=10))
    github_server.add_repo("acme-org", "app", properties={"infrastructure_tools": ["terraform"]})
    github_server.put_file("acme-org", "app", SHA, "infra/variables.yml", SMALL_CONFIG.format(name="acme-app"))
    github_server.set_ref("acme-org", "app", "main", SHA)  # main's head: an apply deploys the head
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "infra-change", "sender": {"login": "acme-bot"},
                                 "client_payload": {"customer": "acme", "sha": SHA, "mode": "apply"}}))
    for key, value in {"GITHUB_API_URL": github_server.url, "GITHUB_TOKEN": "test-token", "GITHUB_SERVER_URL": "https://github.example",
                       "GITHUB_REPOSITORY": "provider/manager", "GITHUB_RUN_ID": "5", "ENGINE_GITHUB_TIMEOUT": "5",
                       "ENGINE_GITHUB_MAX_RETRY_WAIT": "1"}.items():
        monkeypatch.setenv(key, value)
    return EngineCLI(tmp_path / "home", root), github_server, event


def test_an_apply_from_github_through_spacelift_answers_in_the_customers_repository_like_a_local_run(github_loop):
    cli, github, event = github_loop
    out = cli("event", "repository_dispatch", str(event), "--json", check=0).json()
    assert [e["status"] for e in out["environments"].values()] == ["succeeded", "succeeded"]
    statuses = {s["context"]: s["state"] for s in github.statuses("acme-org", "app", SHA)}
    assert statuses["infra/staging"] == "success" and statuses["infra/production"] == "success"
    deployments = github.deployments("acme-org", "app")
    assert sorted(d["environment"] for d in deployments) == ["production", "staging"]
    assert all("not-a-real-password" not in json.dumps(d) for d in deployments)  # sensitive outputs stay masked


def test_a_run_left_for_confirmation_is_a_failed_status_saying_so(github_loop):
    cli, github, event = github_loop
    record = cli.catalog / "stacks" / "acme.yml"
    record.write_text(record.read_text().replace("spacelift_auto_deploy: true", "spacelift_auto_deploy: false"))
    cli("event", "repository_dispatch", str(event), "--json", check=1)
    statuses = {s["context"]: s for s in github.statuses("acme-org", "app", SHA)}
    assert statuses["infra/staging"]["state"] == "failure" and "waiting for confirmation" in statuses["infra/staging"]["description"]
