"""The example customer, end to end, with the real pulumi CLI and the local target."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.conftest import EngineCLI


def resources_on_disk(cli: EngineCLI, customer: str = "acme") -> list[Path]:
    root = cli.home / "local-cloud" / customer
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_up_twice_drift_refresh_and_destroy(cli: EngineCLI):
    # 1. first deploy: both environments, outputs printed, secrets masked
    first = cli("up", "acme", check=0)
    assert "acme/staging  [pulumi] up: ok" in first.stdout and "acme/production  [pulumi] up: ok" in first.stdout
    assert "vpc_cidr           10.0.68.0/22" in first.stdout  # staging slot 1
    assert "vpc_cidr           10.0.64.0/22" in first.stdout  # production slot 0
    assert "database_password  [secret]" in first.stdout

    db = cli.home / "local-cloud/acme/production/database/acme-shop.sqlite3"
    with sqlite3.connect(db) as conn:
        password = dict(conn.execute("SELECT key, value FROM engine_meta"))["password"]
    assert len(password) > 20 and password not in first.stdout + first.stderr

    prod_disks = sorted((cli.home / "local-cloud/acme/production/compute").glob("app-*/root.img"))
    assert [d.stat().st_size for d in prod_disks] == [40 * 2**30, 40 * 2**30]  # instance_count 2, volume 40 GB

    # 2. second up: nothing to do
    second = cli("up", "acme", "--json", check=0).json()
    for env in ("staging", "production"):
        changes = second["environments"][env]["changes"]
        assert (changes["create"], changes["update"], changes["delete"], changes["replace"]) == (0, 0, 0, 0), changes
        assert changes["same"] > 0
    assert second["environments"]["production"]["outputs"]["database_password"] == "[secret]"
    assert password not in json.dumps(second)

    # 3. out-of-band change: somebody resizes staging's instance definition by hand
    definition = cli.home / "local-cloud/acme/staging/compute/app-1/instance.json"
    doc = json.loads(definition.read_text())
    doc["spec"]["instance_type"] = "t3.xlarge"
    definition.write_text(json.dumps(doc))
    (cli.home / "local-cloud/acme/staging/monitoring/alarms.json").unlink()

    refresh = cli("refresh", "acme", "--env", "staging", "--json", check=0).json()["environments"]["staging"]
    assert refresh["changes"]["update"] == 1 and refresh["changes"]["delete"] == 1, refresh["changes"]
    assert {(r["urn_name"], r["action"]) for r in refresh["resources"]} >= {("app-1", "update"), ("monitoring", "delete")}

    preview = cli("preview", "acme", "--env", "staging", "--json", check=0).json()["environments"]["staging"]
    assert preview["changes"]["update"] == 1 and preview["changes"]["create"] == 1, preview["changes"]
    assert json.loads(definition.read_text())["spec"]["instance_type"] == "t3.xlarge"  # preview changed nothing

    repair = cli("up", "acme", "--env", "staging", "--json", check=0).json()["environments"]["staging"]
    assert repair["changes"]["update"] == 1 and repair["changes"]["create"] == 1
    assert json.loads(definition.read_text())["spec"]["instance_type"] == "t3.micro"
    assert (cli.home / "local-cloud/acme/staging/monitoring/alarms.json").exists()

    # 4. outputs and list read the stacks without running the program
    outputs = cli("outputs", "acme", "--json", check=0).json()["environments"]
    assert outputs["staging"]["outputs"]["instance_ips"] == ["10.0.70.10"]
    assert outputs["production"]["outputs"]["database_password"] == "[secret]"
    listed = cli("list", "acme", "--json", check=0).json()["environments"]
    assert listed["staging"]["details"]["resource_count"] > 10

    # 5. destroy: no resources, no stacks, nothing left behind
    gone = cli("destroy", "acme", "--yes", "--json", check=0).json()["environments"]
    assert gone["production"]["changes"]["delete"] >= 12
    assert resources_on_disk(cli) == []
    after = cli("list", "acme", "--json", check=0).json()["environments"]
    assert {e: v["status"] for e, v in after.items()} == {"staging": "not-deployed", "production": "not-deployed"}
    stack_files = list((cli.home / "state/acme/.pulumi/stacks").rglob("*.json")) if (cli.home / "state/acme/.pulumi/stacks").exists() else []
    assert stack_files == []
    assert cli("outputs", "acme", "--json", check=0).json()["environments"]["staging"]["status"] == "not-deployed"


def test_a_locked_stack_names_its_holder(cli: EngineCLI):
    cli("up", "acme", "--env", "staging", check=0)
    lock_dir = cli.home / "state/acme/.pulumi/locks/organization/acme/staging"
    assert lock_dir.is_dir() and not any(lock_dir.iterdir())  # pulumi left no lock behind

    (lock_dir / "4b5ad6d3-0c1f-4f4e-9d59-1b1b2a0c0d11.json").write_text(json.dumps(
        {"pid": 4242, "username": "deployer", "hostname": "ci-runner-7", "timestamp": "2026-11-26T10:00:00Z"}))
    run = cli("up", "acme", "--env", "staging")
    assert run.code == 1
    assert "stack acme/staging is locked by deployer@ci-runner-7 (pid 4242) since 2026-11-26T10:00:00Z" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr

    cleared = cli("unlock", "acme", "--env", "staging", "--yes", check=0)
    assert "cleared the lock" in cleared.stdout
    again = cli("up", "acme", "--env", "staging", "--json", check=0).json()["environments"]["staging"]
    assert again["changes"]["create"] == 0 and again["changes"]["update"] == 0


def test_a_failing_resource_is_reported_clearly_and_stops_the_rollout(cli: EngineCLI):
    blocker = cli.home / "local-cloud/acme/staging/network"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a directory")  # the network cannot be created here
    run = cli("up", "acme", "--json")
    assert run.code == 1
    data = run.json()
    staging, production = data["environments"]["staging"], data["environments"]["production"]
    assert staging["status"] == "failed" and staging["error"].startswith("vpc: FileExistsError")
    assert "Traceback" not in run.stdout + run.stderr
    assert production["status"] == "skipped"
    assert not (cli.home / "local-cloud/acme/production").exists()  # production was never touched


def test_two_concurrent_ups_on_one_stack(cli: EngineCLI):
    import subprocess

    from tests.conftest import ENGINE

    env = {**cli.env(), "ENGINE_LOCAL_LATENCY_S": "0.3"}

    def start(*extra: str) -> subprocess.Popen:
        return subprocess.Popen([*ENGINE, "up", "acme", "--env", "staging", "--json", "--quiet", *extra], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env, cwd=cli.catalog)

    first, second = start(), start()
    results = [(p.wait(timeout=300), json.loads(p.stdout.read())) for p in (first, second)]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 1], results
    loser = next(data for code, data in results if code == 1)["environments"]["staging"]
    assert loser["error"].startswith("stack acme/staging is locked by ") and ", up) since " in loser["error"]

    # with a lock timeout the second one waits its turn instead, and finds nothing left to do
    first, second = start("--lock-timeout", "120"), start("--lock-timeout", "120")
    waited = [(p.wait(timeout=300), json.loads(p.stdout.read())) for p in (first, second)]
    assert [code for code, _ in waited] == [0, 0], waited
    locks = cli.home / "state/acme/.pulumi/locks"
    assert not [p for p in locks.rglob("*.json")]  # no lock left behind
    assert cli("preview", "acme", "--env", "staging", "--json", check=0).json()["environments"]["staging"]["changes"]["create"] == 0
