"""`engine spacelift sync` against the local Spacelift server: one stack per customer × environment, idempotent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.spacelift.sync import ENGINE_HOOK
from engine.toolchain import TOFU_VERSION
from tests.conftest import SMALL_CONFIG, EngineCLI, make_catalog, tenant_record
from tests.fakespacelift.fixture import spacelift_server  # noqa: F401 - fixture

SETTINGS = """\
repository: provider-org/manager
branch: main
space: customers
worker_pool: private-pool
execute:
  default: true
poll_interval_s: 0.01
run_timeout_s: 10
"""

# 10 tenants: (tools, terraform_version, spacelift_auto_deploy)
FLEET = {
    "alpha": (["terraform"], "1.6", True), "bravo": (["terraform"], None, False), "charlie": (["terraform"], "1.8", False),
    "delta": (["terraform"], None, True), "echo": (["terraform"], "1.5", False),
    "foxtrot": (["pulumi"], None, True), "golf": (["pulumi"], None, False), "hotel": (["pulumi"], None, True),
    "india": (["pulumi"], None, False), "juliet": (["pulumi"], None, False),
}


def properties(tools: list[str], version: str | None, auto: bool) -> str:
    parts = [f"infrastructure_tools: [{', '.join(tools)}]", f"spacelift_auto_deploy: {str(auto).lower()}"]
    if version:
        parts.append(f'terraform_version: "{version}"')
    return "{" + ", ".join(parts) + "}"


def fleet_catalog(root: Path, tenants: dict = FLEET) -> Path:
    catalog = make_catalog(root, {name: (tenant_record(name, i + 1, properties=properties(*spec)), SMALL_CONFIG.format(name=f"{name}-app"))
                                  for i, (name, spec) in enumerate(tenants.items())})
    (catalog / "spacelift.yml").write_text(SETTINGS)
    return catalog


@pytest.fixture
def fleet(tmp_path, spacelift_server, monkeypatch):
    for key, value in spacelift_server.env().items():
        monkeypatch.setenv(key, value)
    return EngineCLI(tmp_path / "home", fleet_catalog(tmp_path / "catalog"))


def sync(cli: EngineCLI, *args: str, check: int | None = 0) -> dict:
    return cli("spacelift", "sync", *args, "--json", check=check).json()


def test_a_fleet_of_ten_tenants_gets_twenty_stacks_with_their_fields(fleet, spacelift_server):
    out = sync(fleet, "--all")
    assert sorted(s["action"] for s in out["stacks"]) == ["create"] * 20 and out["ok"]
    assert len(spacelift_server.stacks) == 20
    alpha = spacelift_server.stacks["alpha-staging"]
    assert alpha["labels"] == ["customer:alpha", "environment:staging", "managed-by:engine"]
    assert (alpha["space"], alpha["namespace"], alpha["repository"], alpha["branch"]) == ("customers", "provider-org", "manager", "main")
    assert alpha["projectRoot"] == "terraform/local" and alpha["_workerPool"] == "private-pool"
    assert alpha["_vendor"] == {"terraform": {"version": "~> 1.6.0", "workflowTool": "TERRAFORM_FOSS"}}
    assert alpha["autodeploy"] is True  # spacelift_auto_deploy: true
    assert spacelift_server.stacks["alpha-production"]["autodeploy"] is False  # production is protected: the engine confirms it
    assert spacelift_server.stacks["bravo-staging"]["_vendor"] == {"opentofu": {"version": TOFU_VERSION}}
    assert spacelift_server.stacks["golf-staging"]["autodeploy"] is False
    assert json.loads(spacelift_server.variable("alpha-staging", "TF_VAR_instance_count")) == 1
    assert spacelift_server.variable("alpha-staging", "TF_VAR_instance_type") == "t3.micro"
    assert json.loads(spacelift_server.variable("alpha-production", "TF_VAR_network"))["vpc_cidr"] == "10.0.64.0/22"
    hotel = spacelift_server.stacks["hotel-production"]
    assert hotel["projectRoot"] == "programs/spacelift"  # the Pulumi project that runs the engine's programs
    assert hotel["beforeInit"] == [ENGINE_HOOK]  # which first names the project after the tenant
    assert spacelift_server.variable("hotel-production", "ENGINE_PROGRAM") == "local"
    assert alpha["beforeInit"] == []  # Terraform stacks need no preparation
    assert hotel["_vendor"]["pulumi"]["stackName"] == "organization/hotel/production"
    assert hotel["_vendor"]["pulumi"]["loginURL"].endswith("/state/hotel")  # the customer's own state location
    settings = json.loads(spacelift_server.variable("hotel-production", "ENGINE_SETTINGS"))
    assert settings["customer"] == "hotel" and settings["instance_count"] == 2
    secret = hotel["_config"]["PULUMI_CONFIG_PASSPHRASE"]
    assert secret["writeOnly"] and secret["value"] is None  # write-only: Spacelift never gives it back
    assert secret["_value"] == (fleet.home / "secrets" / "hotel.passphrase").read_text().strip()


def test_a_second_sync_makes_no_mutation(fleet, spacelift_server):
    sync(fleet, "--all")
    before = len(spacelift_server.mutations())
    out = sync(fleet, "--all")
    assert out["mutations"] == 0 and {s["action"] for s in out["stacks"]} == {"in-sync"}
    assert len(spacelift_server.mutations()) == before


def test_changing_one_customers_terraform_version_updates_exactly_that_field_on_its_stacks(fleet, spacelift_server):
    sync(fleet, "--all")
    record = fleet.catalog / "stacks" / "charlie.yml"
    record.write_text(record.read_text().replace('terraform_version: "1.8"', 'terraform_version: "1.9"'))
    before = len(spacelift_server.mutations())
    out = sync(fleet, "--all")
    changed = [s for s in out["stacks"] if s["action"] != "in-sync"]
    assert [(s["stack"], s["fields"], s["variables_set"]) for s in changed] == [
        ("charlie-staging", ["vendorConfig"], []), ("charlie-production", ["vendorConfig"], [])]
    assert changed[0]["changes"]["vendorConfig"]["to"] == {"terraform": {"version": "~> 1.9.0", "workflowTool": "TERRAFORM_FOSS"}}
    assert [name for name, _ in spacelift_server.mutations()[before:]] == ["stackUpdate", "stackUpdate"]


def test_prune_deletes_the_stacks_of_a_removed_tenant_only(fleet, spacelift_server):
    sync(fleet, "--all")
    (fleet.catalog / "stacks" / "delta.yml").unlink()
    out = sync(fleet, "--all")  # without --prune: reported, kept
    assert sorted(s["stack"] for s in out["stacks"] if s["action"] == "orphan") == ["delta-production", "delta-staging"]
    assert "delta-staging" in spacelift_server.stacks and out["mutations"] == 0
    out = sync(fleet, "--all", "--prune")
    assert sorted(s["stack"] for s in out["stacks"] if s["action"] == "delete") == ["delta-production", "delta-staging"]
    assert len(spacelift_server.stacks) == 18 and not any(k.startswith("delta-") for k in spacelift_server.stacks)
    assert out["mutations"] == 2


def test_syncing_named_customers_leaves_the_others_alone(fleet, spacelift_server):
    out = sync(fleet, "alpha", "golf")
    assert sorted(spacelift_server.stacks) == ["alpha-production", "alpha-staging", "golf-production", "golf-staging"]
    assert all(s["action"] == "create" for s in out["stacks"])


def test_dry_run_prints_every_mutation_and_makes_none(fleet, spacelift_server):
    run = fleet("spacelift", "sync", "--all", "--dry-run", "--json", check=0)
    out = run.json()
    assert spacelift_server.mutations() == [] and spacelift_server.stacks == {}
    listed = [(m["operation"], m["stack"]) for m in out["would_mutate"]]
    assert listed.count(("stackCreate", "alpha-staging")) == 1 and len({s for _, s in listed}) == 20
    passphrase = (fleet.home / "secrets" / "hotel.passphrase").read_text().strip()
    assert passphrase not in run.stdout and '"value": "[secret]"' in run.stdout
    text = fleet("spacelift", "sync", "--all", "--dry-run", check=0).stdout
    assert "would set variables: TF_VAR_" in text and f"dry run: {len(listed)} mutation(s) listed, none made" in text
    assert spacelift_server.mutations() == []
    made = sync(fleet, "--all")
    assert made["mutations"] == len(listed)  # the dry run listed exactly what the real run did


def test_a_stack_edited_in_spacelifts_ui_is_reported_and_put_back_keeping_what_the_provider_may_change(fleet, spacelift_server):
    sync(fleet, "--all")
    spacelift_server.edit_stack("golf-staging", autodeploy=True, projectRoot="elsewhere", description="ops notes",
                                labels=["customer:golf", "environment:staging", "managed-by:engine", "team:ops"], beforeInit=["echo hi"])
    spacelift_server.stacks["golf-staging"]["_config"]["ENGINE_SETTINGS"]["value"] = "{}"
    out = sync(fleet, "--all")
    (golf,) = [s for s in out["stacks"] if s["action"] != "in-sync"]
    assert golf["stack"] == "golf-staging" and golf["fields"] == ["projectRoot", "autodeploy", "beforeInit"]
    assert golf["changes"]["autodeploy"] == {"from": True, "to": False} and golf["variables_set"] == ["ENGINE_SETTINGS"]
    assert golf["changes"]["beforeInit"] == {"from": [], "to": [ENGINE_HOOK]}
    stack = spacelift_server.stacks["golf-staging"]
    assert (stack["autodeploy"], stack["projectRoot"]) == (False, "programs/spacelift")
    # the engine's hook is put back first; the provider's own hook, description and label stay
    assert stack["description"] == "ops notes" and "team:ops" in stack["labels"] and stack["beforeInit"] == [ENGINE_HOOK, "echo hi"]
    assert sync(fleet, "--all")["mutations"] == 0


def test_a_stack_with_a_tenants_id_that_is_not_the_engines_is_left_alone(fleet, spacelift_server):
    sync(fleet, "alpha")
    spacelift_server.edit_stack("alpha-staging", labels=["team:ops"])
    out = sync(fleet, "alpha", check=1)
    (conflict,) = [s for s in out["stacks"] if s["action"] == "conflict"]
    assert conflict["stack"] == "alpha-staging" and "not the engine's" in conflict["error"]
    assert spacelift_server.stacks["alpha-staging"]["labels"] == ["team:ops"]


def test_compliance_lists_missing_stacks_and_stacks_without_a_tenant(fleet, spacelift_server):
    sync(fleet, "--all")
    del spacelift_server.stacks["echo-production"]
    (fleet.catalog / "stacks" / "juliet.yml").unlink()
    run = fleet("spacelift", "compliance", "--json", check=3)
    data = run.json()
    assert [m["stack"] for m in data["missing"]] == ["echo-production"]
    assert sorted(u["stack"] for u in data["unmatched"]) == ["juliet-production", "juliet-staging"]
    assert data["findings"] == 3 and spacelift_server.mutations()[-1][0] != "stackDelete"


# -- bad input ------------------------------------------------------------------------------------------

def test_a_bad_settings_file_names_file_line_and_key_and_calls_nothing(fleet, spacelift_server):
    (fleet.catalog / "spacelift.yml").write_text(SETTINGS.replace("branch: main", "branch: main\nworker_pol: x"))
    run = fleet("spacelift", "sync", "--all", check=2)
    assert "spacelift.yml:3: worker_pol: unknown key (did you mean 'worker_pool'?)" in run.stderr
    assert spacelift_server.calls == []


def test_missing_credentials_are_bad_input_naming_the_variable(fleet, spacelift_server, monkeypatch):
    monkeypatch.delenv("SPACELIFT_API_KEY_SECRET")
    run = fleet("spacelift", "sync", "--all", check=2)
    assert "SPACELIFT_API_KEY_SECRET not set" in run.stderr and spacelift_server.calls == []


def test_a_refused_api_key_is_an_error_without_the_secret(fleet, spacelift_server, monkeypatch):
    monkeypatch.setenv("SPACELIFT_API_KEY_SECRET", "wrong-secret-value-for-test")
    run = fleet("spacelift", "sync", "--all", check=1)
    assert "refused the API key" in run.stderr and "wrong-secret-value-for-test" not in run.stdout + run.stderr


def test_sync_without_settings_says_what_to_create(fleet):
    (fleet.catalog / "spacelift.yml").unlink()
    run = fleet("spacelift", "sync", "--all", check=2)
    assert "no Spacelift settings" in run.stderr and "spacelift.yml" in run.stderr


def test_faults_during_a_sync_create_no_duplicate_stack_and_lose_no_change(fleet, spacelift_server):
    spacelift_server.inject("stackCreate", 502, times=3, after=True)  # created, answer lost
    spacelift_server.inject("stackCreate", 503, times=2)  # not processed
    spacelift_server.inject("stackConfigAdd", 502, times=3, after=True)
    spacelift_server.inject("stacks", 503)
    spacelift_server.inject(None, 429, times=2, retry_after=0)
    spacelift_server.expire_tokens_after(40)
    out = sync(fleet, "--all")
    assert out["ok"] and len(spacelift_server.stacks) == 20
    assert spacelift_server.unauthorized >= 1 and spacelift_server.exchanges >= 2
    again = sync(fleet, "--all")
    assert again["mutations"] == 0 and {s["action"] for s in again["stacks"]} == {"in-sync"}
