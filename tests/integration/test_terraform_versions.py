"""Customers pin terraform_version: each line runs its own HashiCorp Terraform release (built from the Go
module proxy into the shared tool cache by `make tools`), other lines run OpenTofu, and a version
nobody serves is refused naming what can be had.  The local module, the real binaries, `engine` as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import toolchain
from engine.errors import ToolchainError
from engine.runners.terraform import state_written_by
from tests.conftest import EngineCLI, make_catalog, tenant_record
from tests.integration.test_s3_state import CREDS, keys, s3_server  # noqa: F401 - fixture reuse

# The two lines `make tools` builds for these tests: the oldest line Terraform serves and the newest the engine builds.
OLD, NEW = "1.6", "1.16"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "tfstate"
ONE_ENV = "project_name: {name}\nenvironments:\n  staging:\n    instance_type: t3.micro\n"


def pinned(version: str | None) -> str:
    return "properties:\n  infrastructure_tools: [terraform]\n" + (f'  terraform_version: "{version}"\n' if version else "")


@pytest.fixture(scope="module", autouse=True)
def terraform_builds():
    """The releases these tests run: a missing build is a failure naming the fix, never a skip."""
    try:
        return {line: toolchain.ensure("terraform", version=toolchain.TERRAFORM_BUILDS[line], allow_install=False) for line in (OLD, NEW)}
    except ToolchainError as exc:
        pytest.fail(f"these tests need HashiCorp Terraform {OLD} and {NEW}: {exc.message}. Run `make tools`.", pytrace=False)


def binary_of(run_json: dict, env: str = "staging") -> str:
    return run_json["environments"][env]["details"]["binary"]


def state_of(cli: EngineCLI, customer: str, env: str = "staging") -> dict:
    return json.loads((cli.home / "state" / customer / "terraform" / f"{env}.tfstate").read_text())


def repin(cli: EngineCLI, customer: str, index: int, version: str | None) -> None:
    (cli.catalog / "stacks" / f"{customer}.yml").write_text(tenant_record(customer, index) + pinned(version))


def test_two_customers_pinned_to_two_terraform_lines_each_deploy_with_their_own_release(tmp_path):
    old, new = toolchain.TERRAFORM_BUILDS[OLD], toolchain.TERRAFORM_BUILDS[NEW]
    root = make_catalog(tmp_path / "c", {
        "oldco": (tenant_record("oldco", 3) + pinned(OLD), ONE_ENV.format(name="old-shop")),
        "newco": (tenant_record("newco", 4) + pinned(NEW), ONE_ENV.format(name="new-shop")),
    })
    cli = EngineCLI(tmp_path / "home", root)
    for customer, version in (("oldco", old), ("newco", new)):
        run = cli("up", customer, "--json", check=0).json()
        staging = run["environments"]["staging"]
        assert staging["status"] == "succeeded" and staging["changes"]["create"] == 9, staging
        assert binary_of(run) == f"Terraform v{version}"
        state = state_of(cli, customer)
        assert state["terraform_version"] == version  # written by that very release
        assert {r["provider"] for r in state["resources"]} == {'provider["registry.terraform.io/engine/enginelocal"]'}
        again = cli("up", customer, "--json", check=0).json()
        assert binary_of(again) == f"Terraform v{version}"
        assert {k: again["environments"]["staging"]["changes"][k] for k in ("create", "update", "delete")} == {"create": 0, "update": 0, "delete": 0}
    assert cli("outputs", "oldco", "--json", check=0).json()["environments"]["staging"]["outputs"]["vpc_cidr"] == "10.0.196.0/22"
    assert (cli.home / "local-cloud" / "newco" / "staging" / "network" / "network.json").is_file()


def test_a_version_that_cannot_be_had_exits_2_naming_the_versions_that_can(tmp_path):
    root = make_catalog(tmp_path / "c", {"tfco": (tenant_record("tfco", 3) + pinned("1.5"), ONE_ENV.format(name="tf-shop"))})
    cli = EngineCLI(tmp_path / "home", root)
    run = cli("up", "tfco")
    assert run.code == 2, run.stdout + run.stderr
    releases = ", ".join(f"{line} (v{v})" for line, v in toolchain.TERRAFORM_BUILDS.items())
    tofu_line = ".".join(toolchain.TOFU_VERSION.split(".")[:2])
    assert (f"terraform_version 1.5 cannot be satisfied: HashiCorp Terraform {releases}; "
            f"OpenTofu v{toolchain.TOFU_VERSION} for the lines 1.6–{tofu_line}") in run.stderr
    assert "set the repository's terraform_version custom property to one of: 1.6, 1.7," in run.stderr
    assert not (cli.home / "state").exists() and not (cli.home / "local-cloud").exists()

    repin(cli, "tfco", 3, "1.6.2")  # an exact release other than the one built
    exact = cli("up", "tfco", "--json")
    assert exact.code == 2
    assert f"the engine builds 1.6 at v{toolchain.TERRAFORM_BUILDS[OLD]}" in exact.json()["hint"]
    assert not (cli.home / "state").exists()


def test_a_stack_moves_between_lines_and_binaries_but_not_back_to_an_older_terraform_line(tmp_path):
    old, new = toolchain.TERRAFORM_BUILDS[OLD], toolchain.TERRAFORM_BUILDS[NEW]
    root = make_catalog(tmp_path / "c", {"mover": (tenant_record("mover", 5) + pinned(OLD), ONE_ENV.format(name="mover-shop"))})
    cli = EngineCLI(tmp_path / "home", root)
    unchanged = {"create": 0, "update": 0, "delete": 0, "replace": 0}

    def up(expect_binary: str) -> dict:
        run = cli("up", "mover", "--json", check=0).json()
        assert binary_of(run) == expect_binary
        changes = run["environments"]["staging"]["changes"]
        return {k: changes[k] for k in unchanged}

    assert up(f"Terraform v{old}")["create"] == 9
    repin(cli, "mover", 5, NEW)  # an upgrade: the newer line reads the older one's state…
    assert up(f"Terraform v{new}") == unchanged and state_of(cli, "mover")["terraform_version"] == old  # (nothing to write)
    config = cli.catalog / "customers" / "mover" / "infra" / "variables.yml"
    config.write_text(config.read_text().replace("t3.micro", "t3.small"))
    assert up(f"Terraform v{new}")["update"] == 1 and state_of(cli, "mover")["terraform_version"] == new  # …and writes it

    repin(cli, "mover", 5, OLD)  # back to the older line: refused, state untouched
    before = state_of(cli, "mover")
    run = cli("up", "mover", "--json")
    assert run.code == 1
    error = run.json()["environments"]["staging"]["error"]
    assert error.startswith(f"state was last written by Terraform v{new}; Terraform v{old} is an older release line"), error
    assert f"Set terraform_version back to {NEW} (or later)" in error
    assert state_of(cli, "mover") == before

    repin(cli, "mover", 5, None)  # no pin: OpenTofu reads and writes Terraform's state (its provider addresses included)
    assert up(f"OpenTofu v{toolchain.TOFU_VERSION}") == unchanged
    config.write_text(config.read_text().replace("t3.small", "t3.micro"))
    assert up(f"OpenTofu v{toolchain.TOFU_VERSION}")["update"] == 1
    assert state_of(cli, "mover")["terraform_version"] == toolchain.TOFU_VERSION
    repin(cli, "mover", 5, OLD)  # and Terraform reads OpenTofu's: OpenTofu's numbers are not a Terraform line
    assert up(f"Terraform v{old}") == unchanged
    cli("destroy", "mover", "--yes", check=0)
    assert not list((cli.home / "local-cloud").rglob("*.json"))


@pytest.mark.parametrize("version", [None, OLD], ids=["opentofu", "terraform-" + OLD])
def test_state_written_by_opentofu_1_10_6_is_read_and_kept(tmp_path, version):
    """The engine pinned OpenTofu 1.10.6 before; its customers' state must keep working, with the
    pinned OpenTofu (no pin) and with the HashiCorp release that now serves their pin."""
    root = make_catalog(tmp_path / "c", {"legacy": (tenant_record("legacy", 7) + pinned(version), ONE_ENV.format(name="legacy-shop"))})
    cli = EngineCLI(tmp_path / "home", root)
    cli("up", "legacy", "--json", check=0)  # the local cloud's files, as OpenTofu 1.10.6 left them
    old_state = (FIXTURES / "opentofu-1.10.6-legacy-staging.tfstate").read_text().replace("@ENGINE_HOME@", str(cli.home))
    (cli.home / "state" / "legacy" / "terraform" / "staging.tfstate").write_text(old_state)
    assert state_of(cli, "legacy")["terraform_version"] == "1.10.6"

    run = cli("up", "legacy", "--json", check=0).json()
    changes = run["environments"]["staging"]["changes"]
    assert (changes["create"], changes["update"], changes["delete"], changes["replace"]) == (0, 0, 0, 0), changes
    assert binary_of(run) == (f"Terraform v{toolchain.TERRAFORM_BUILDS[OLD]}" if version else f"OpenTofu v{toolchain.TOFU_VERSION}")
    listed = cli("list", "legacy", "--json", check=0).json()["environments"]["staging"]
    assert listed["details"]["resource_count"] == 9
    destroyed = cli("destroy", "legacy", "--yes", "--json", check=0).json()["environments"]["staging"]
    assert destroyed["changes"]["delete"] == 9
    assert not list((cli.home / "local-cloud").rglob("*.json")) and not (cli.home / "state" / "legacy" / "terraform" / "staging.tfstate").exists()


@pytest.fixture
def s3_catalog(tmp_path, s3_server, monkeypatch):  # noqa: F811 - pytest fixture
    endpoint, client = s3_server
    url = f'"s3://fleet-state/tf?region=us-east-1&endpoint={endpoint}&use_path_style=true"'
    for k, v in CREDS.items():
        monkeypatch.setenv(k, v)

    def catalog(version: str, machine: str = "a") -> EngineCLI:
        """The tenant pinned to ``version``, run from its own engine home (another machine sharing the S3 state)."""
        root = make_catalog(tmp_path / f"c-{machine}-{version}", {"s3co": (tenant_record("s3co", 6) + pinned(version) + f"state:\n  url: {url}\n",
                                                                  ONE_ENV.format(name="s3-shop"))})
        return EngineCLI(tmp_path / f"home-{machine}", root)

    return catalog, client


def test_s3_state_runs_with_a_terraform_release_that_locks_it_and_is_refused_by_one_that_cannot(s3_catalog):
    catalog, client = s3_catalog
    refused = catalog(OLD, "old")("up", "s3co")
    assert refused.code == 2
    assert f"Terraform v{toolchain.TERRAFORM_BUILDS[OLD]} can lock S3 state only with DynamoDB" in refused.stderr
    assert not keys(client, "tf/")

    machine_a = catalog(NEW, "a")
    run = machine_a("up", "s3co", "--json", check=0).json()
    assert binary_of(run) == f"Terraform v{toolchain.TERRAFORM_BUILDS[NEW]}" and run["environments"]["staging"]["changes"]["create"] == 9
    assert "tf/s3co/terraform/staging.tfstate" in keys(client, "tf/s3co/")
    assert not [k for k in keys(client, "tf/") if k.endswith(".tflock")]  # Terraform's S3 lock file, released

    # Another machine, serving pins with OpenTofu, writes the state: it now names OpenTofu's registry.
    # This machine's work dir was initialized before that (same module, backend and binary): its next
    # run finds the provider missing, initializes again and goes on.
    key = "tf/s3co/terraform/staging.tfstate"
    state = json.loads(client.get_object(Bucket="fleet-state", Key=key)["Body"].read())
    state.update(serial=state["serial"] + 1, terraform_version=toolchain.TOFU_VERSION)
    for resource in state["resources"]:
        resource["provider"] = resource["provider"].replace("registry.terraform.io", "registry.opentofu.org")
    client.put_object(Bucket="fleet-state", Key=key, Body=json.dumps(state).encode())
    assert state_written_by(state) == ("opentofu", toolchain.TOFU_VERSION)

    again = machine_a("up", "s3co", "--json", check=0).json()["environments"]["staging"]
    assert again["details"]["binary"] == f"Terraform v{toolchain.TERRAFORM_BUILDS[NEW]}"
    assert {k: again["changes"][k] for k in ("create", "update", "delete", "replace")} == {"create": 0, "update": 0, "delete": 0, "replace": 0}
