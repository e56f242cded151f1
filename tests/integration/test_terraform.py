"""Terraform-tagged tenants with the real binaries (OpenTofu, HashiCorp Terraform) and the engine's own provider (local target)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import pytest

from engine import locks, toolchain
from tests.conftest import ENGINE, SMALL_CONFIG, EngineCLI, make_catalog, tenant_record
from tests.integration.test_s3_state import CREDS, keys, s3_server  # noqa: F401 - fixture reuse

TF_PROPS = 'properties:\n  infrastructure_tools: [terraform]\n  terraform_version: "1.6"\n'  # HashiCorp Terraform 1.6
TOFU_PROPS = 'properties:\n  infrastructure_tools: [terraform]\n'  # no pin: the pinned OpenTofu


@pytest.fixture
def tf_cli(tmp_path, request) -> EngineCLI:
    root = make_catalog(tmp_path / "catalog", {
        "tfco": (tenant_record("tfco", 3) + getattr(request, "param", TF_PROPS), SMALL_CONFIG.format(name="tf-shop")),
        "plain": (tenant_record("plain", 4), SMALL_CONFIG.format(name="plain-app")),
    })
    return EngineCLI(tmp_path / "home", root)


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


@pytest.mark.parametrize(("tf_cli", "binary"), [(TF_PROPS, "Terraform v1.6."), (TOFU_PROPS, f"OpenTofu v{toolchain.TOFU_VERSION}")],
                         ids=["terraform-1.6", "opentofu"], indirect=["tf_cli"])
def test_terraform_lifecycle_looks_like_pulumi_from_the_outside(tf_cli: EngineCLI, binary: str):
    cli = tf_cli
    first = cli("up", "tfco", "--json", check=0).json()
    staging = first["environments"]["staging"]
    assert staging["tool"] == "terraform" and staging["status"] == "succeeded"
    assert staging["details"]["binary"].startswith(binary)
    assert staging["changes"]["create"] == 11 and staging["outputs"]["vpc_cidr"] == "10.0.196.0/22"
    assert staging["outputs"]["database_connection"] == "[secret]"
    assert "app@tfco-staging.local" not in json.dumps(first)  # the sensitive value never appears
    assert first["environments"]["production"]["outputs"]["instance_ips"] == ["10.0.194.10", "10.0.195.10"]

    second = cli("up", "tfco", "--json", check=0).json()
    for env in ("staging", "production"):
        c = second["environments"][env]["changes"]
        assert (c["create"], c["update"], c["delete"], c["replace"]) == (0, 0, 0, 0), c

    cloud = cli.home / "local-cloud/tfco/staging"
    definition = cloud / "compute/app-1/instance.json"
    doc = json.loads(definition.read_text())
    doc["spec"]["instance_type"] = "t3.2xlarge"
    definition.write_text(json.dumps(doc))
    (cloud / "monitoring/alarms.json").unlink()

    preview = cli("preview", "tfco", "--env", "staging", "--json", check=0).json()["environments"]["staging"]
    assert {(r["urn_name"], r["action"]) for r in preview["resources"]} == {
        ('enginelocal_document.instance["app-1"]', "update"), ("enginelocal_document.monitoring[0]", "create")}
    assert json.loads(definition.read_text())["spec"]["instance_type"] == "t3.2xlarge"  # preview changed nothing

    refresh = cli("refresh", "tfco", "--env", "staging", "--json", check=0).json()["environments"]["staging"]
    assert (refresh["changes"]["update"], refresh["changes"]["delete"]) == (1, 1), refresh
    update = next(r for r in refresh["resources"] if r["action"] == "update")
    assert update["urn_name"] == 'enginelocal_document.instance["app-1"]' and "content" in update["properties"]

    repair = cli("up", "tfco", "--env", "staging", "--json", check=0).json()["environments"]["staging"]
    assert (repair["changes"]["create"], repair["changes"]["update"]) == (1, 1)
    assert json.loads(definition.read_text())["spec"]["instance_type"] == "t3.micro"

    listed = cli("list", "tfco", "--json", check=0).json()["environments"]
    assert listed["staging"]["details"]["resource_count"] == 11

    cli("destroy", "tfco", "--yes", check=0)
    assert files_under(cli.home / "local-cloud/tfco") == []
    assert files_under(cli.home / "state/tfco") == []
    assert files_under(cli.home / "work/tfco") == []
    assert cli("outputs", "tfco", "--json", check=0).json()["environments"]["staging"]["status"] == "not-deployed"


def test_a_customer_without_terraform_never_runs_it(tf_cli: EngineCLI):
    run = tf_cli("up", "plain", "--env", "staging", "--json", check=0).json()
    assert run["environments"]["staging"]["tool"] == "pulumi"
    assert not list((tf_cli.home / "work").rglob("terraform")) and not list(tf_cli.home.rglob("*.tfstate"))


def test_engine_lock_names_the_holder_then_waits_when_asked(tf_cli: EngineCLI):
    cli = tf_cli
    with locks.acquire(cli.home / "locks", "tfco", "staging", "up"):
        run = cli("up", "tfco", "--env", "staging")
    assert run.code == 1
    assert "stack tfco/staging is locked by" in run.stdout and "(pid " in run.stdout and ", up) since" in run.stdout

    release, held = threading.Event(), threading.Event()

    def hold():
        with locks.acquire(cli.home / "locks", "tfco", "staging", "up"):
            held.set()
            release.wait(3)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    started = time.monotonic()
    waited = cli("up", "tfco", "--env", "staging", "--lock-timeout", "60", "--json")
    holder.join()
    assert waited.code == 0, waited.stdout + waited.stderr
    assert time.monotonic() - started >= 2  # it waited for the holder instead of failing
    assert all(p.read_text() == "" for p in (cli.home / "locks").rglob("*.lock"))  # released: no holder recorded


@pytest.fixture
def s3_tf(tmp_path, s3_server, monkeypatch):  # noqa: F811 - pytest fixture
    """A terraform-tagged tenant whose state lives on the S3 server (OpenTofu; HashiCorp Terraform on S3: test_terraform_versions.py)."""
    endpoint, client = s3_server
    url = f'"s3://fleet-state/tf?region=us-east-1&endpoint={endpoint}&use_path_style=true"'
    root = make_catalog(tmp_path / "c", {"tfco": (tenant_record("tfco", 3) + TOFU_PROPS + f"state:\n  url: {url}\n", SMALL_CONFIG.format(name="tf-shop"))})
    for k, v in CREDS.items():
        monkeypatch.setenv(k, v)
    return EngineCLI(tmp_path / "home", root), client


def test_concurrent_ups_on_s3_state(s3_tf):
    cli, client = s3_tf
    cmd = lambda: subprocess.Popen(  # noqa: E731
        [*ENGINE, "up", "tfco", "--env", "staging", "--json", "--lock-timeout", "120"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli.env(), cwd=cli.catalog)
    first, second = cmd(), cmd()
    results = [json.loads(p.communicate(timeout=300)[0]) for p in (first, second)]
    creates = sorted(r["environments"]["staging"]["changes"]["create"] for r in results)
    assert creates == [0, 11], results  # one created everything, the other waited and found nothing to do
    assert "tf/tfco/terraform/staging.tfstate" in keys(client, "tf/tfco/")
    assert not [k for k in keys(client, "tf/") if k.endswith(".tflock")]  # no lock left behind
    again = cli("up", "tfco", "--env", "staging", "--json", check=0).json()["environments"]["staging"]["changes"]
    assert (again["create"], again["update"], again["delete"]) == (0, 0, 0)


def test_a_state_lock_held_elsewhere_is_named(s3_tf):
    """Another machine holds OpenTofu's S3 lock file: the run fails naming it, and nothing changes."""
    cli, client = s3_tf
    cli("up", "tfco", "--env", "staging", check=0)
    before = client.get_object(Bucket="fleet-state", Key="tf/tfco/terraform/staging.tfstate")["Body"].read()
    lock = {"ID": "5e3f1c2a-0000-4000-8000-00000000beef", "Operation": "OperationTypeApply", "Info": "", "Who": "deployer@ci-runner-9",
            "Version": "1.10.6", "Created": "2026-11-26T10:00:00Z", "Path": "fleet-state/tf/tfco/terraform/staging.tfstate"}
    client.put_object(Bucket="fleet-state", Key="tf/tfco/terraform/staging.tfstate.tflock", Body=json.dumps(lock).encode())

    run = cli("up", "tfco", "--env", "staging", "--json")
    assert run.code == 1
    error = run.json()["environments"]["staging"]["error"]
    assert error.startswith("state is locked by deployer@ci-runner-9 (OperationTypeApply) since 2026-11-26 10:00:00 +0000 UTC, "
                            "lock ID 5e3f1c2a-0000-4000-8000-00000000beef."), error
    assert "`engine unlock tfco --env staging --lock-id 5e3f1c2a-0000-4000-8000-00000000beef --yes`" in error
    after = client.get_object(Bucket="fleet-state", Key="tf/tfco/terraform/staging.tfstate")["Body"].read()
    assert after == before  # state intact

    cleared = cli("unlock", "tfco", "--env", "staging", "--lock-id", lock["ID"], "--yes", check=0)
    assert "cleared the state lock" in cleared.stdout
    assert not [k for k in keys(client, "tf/") if k.endswith(".tflock")]
    again = cli("up", "tfco", "--env", "staging", "--json", check=0).json()["environments"]["staging"]["changes"]
    assert (again["create"], again["update"], again["delete"]) == (0, 0, 0)
