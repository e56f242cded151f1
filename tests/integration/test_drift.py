"""Fleet drift on real stacks (Pulumi and Terraform, local target): detect, never write, remediate."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import SMALL_CONFIG, EngineCLI, make_catalog, tenant_record

TF = 'properties:\n  infrastructure_tools: [terraform]\n  terraform_version: "1.6"\n  drift_auto_remediate: true\n'
PULUMI_FIX = "properties:\n  drift_auto_remediate: true\n"


def state_files(home: Path) -> dict[str, bytes]:
    files = [p for p in (home / "state").rglob("*") if p.is_file() and "/history/" not in str(p) and "/backups/" not in str(p)
             and not p.name.endswith(".bak") and "/locks/" not in str(p)]
    return {str(p.relative_to(home)): p.read_bytes() for p in files}


def edit_json(path: Path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def test_drift_detects_names_and_remediates_without_touching_state_when_only_checking(tmp_path):
    root = make_catalog(tmp_path / "c", {
        "pulco": (tenant_record("pulco", 1) + PULUMI_FIX, SMALL_CONFIG.format(name="pul-app")),
        "tfco": (tenant_record("tfco", 2) + TF, SMALL_CONFIG.format(name="tf-app")),
        "other": (tenant_record("other", 3), SMALL_CONFIG.format(name="other-app")),  # never deployed
    })
    cli = EngineCLI(tmp_path / "home", root)
    cli("up", "pulco", check=0)
    cli("up", "tfco", check=0)

    clean = cli("drift", "--all", "--json")
    assert clean.code == 0, clean.stdout
    summary = clean.json()["summary"]
    assert (summary["in-sync"], summary["not-deployed"], summary["drifted"]) == (4, 2, 0)

    cloud = cli.home / "local-cloud"
    edit_json(cloud / "pulco/staging/compute/app-1/instance.json", lambda d: d["spec"].update(instance_type="t3.2xlarge"))
    edit_json(cloud / "tfco/production/compute/app-2/instance.json", lambda d: d["spec"].update(vcpu=64))
    (cloud / "tfco/staging/monitoring/alarms.json").unlink()

    before = state_files(cli.home)
    drifted = cli("drift", "--all", "--json", "--parallel", "3")
    assert drifted.code == 3, drifted.stdout + drifted.stderr
    assert state_files(cli.home) == before  # drift never wrote state
    stacks = {f"{s['customer']}/{s['environment']}": s for s in drifted.json()["stacks"]}
    assert stacks["pulco/staging"]["state"] == "drifted"
    (res,) = stacks["pulco/staging"]["resources"]
    assert (res["name"], res["action"], res["diffs"]) == ("app-1", "update", [{"path": "spec.instance_type", "old": "t3.micro", "new": "t3.2xlarge"}])
    (tfres,) = stacks["tfco/production"]["resources"]
    assert tfres["name"] == 'enginelocal_document.instance["app-2"]'
    assert {"path": "content.spec.vcpu", "old": 2, "new": 64} in tfres["diffs"]
    assert [(r["name"], r["action"]) for r in stacks["tfco/staging"]["resources"]] == [("enginelocal_document.monitoring[0]", "delete")]
    assert stacks["pulco/production"]["state"] == "in-sync"

    human = cli("drift", "pulco", "tfco")
    assert human.code == 3
    assert "app-1.spec.instance_type: 't3.micro' → 't3.2xlarge'" in human.stdout

    fixed = cli("drift", "--all", "--remediate", "--json")
    assert fixed.code == 0, fixed.stdout + fixed.stderr
    states = {f"{s['customer']}/{s['environment']}": s["state"] for s in fixed.json()["stacks"]}
    assert states["pulco/staging"] == states["tfco/production"] == states["tfco/staging"] == "remediated"
    remediation = next(s for s in fixed.json()["stacks"] if s["customer"] == "pulco" and s["environment"] == "staging")["remediation"]
    assert remediation["status"] == "succeeded" and remediation["changes"]["update"] == 1 and remediation["at"]
    assert json.loads((cloud / "pulco/staging/compute/app-1/instance.json").read_text())["spec"]["instance_type"] == "t3.micro"
    assert cli("drift", "--all", "--json").code == 0


def test_remediation_needs_the_tenants_opt_in(tmp_path):
    root = make_catalog(tmp_path / "c", {"optout": (tenant_record("optout", 4), SMALL_CONFIG.format(name="opt-out"))})
    cli = EngineCLI(tmp_path / "home", root)
    cli("up", "optout", "--env", "staging", check=0)
    edit_json(cli.home / "local-cloud/optout/staging/compute/app-1/instance.json", lambda d: d["spec"].update(vcpu=99))
    run = cli("drift", "optout", "--remediate", "--json")
    assert run.code == 3
    (stack,) = [s for s in run.json()["stacks"] if s["environment"] == "staging"]
    assert stack["state"] == "drifted" and "remediation" not in stack


def test_sharding_splits_the_fleet_without_overlap(tmp_path):
    root = make_catalog(tmp_path / "c", {f"c{i}": (tenant_record(f"c{i}", 10 + i), SMALL_CONFIG.format(name=f"app-{i}")) for i in range(3)})
    cli = EngineCLI(tmp_path / "home", root)
    seen = []
    for shard in ("1/2", "2/2"):
        data = cli("drift", "--all", "--shard", shard, "--json", check=0).json()
        seen += [f"{s['customer']}/{s['environment']}" for s in data["stacks"]]
    assert sorted(seen) == sorted(f"c{i}/{e}" for i in range(3) for e in ("staging", "production"))
    assert cli("drift", "--all", "--shard", "3/2").code == 2


def test_four_drifted_pulumi_stacks_are_remediated_at_once(tmp_path):
    """Remediation runs the Pulumi program (an inline program keeps process-global state, pulumi#6052): each
    remediation is its own `engine up --refresh` process, so four at once neither race nor mix programs."""
    tenants = {f"rem{i}": (tenant_record(f"rem{i}", 40 + i) + PULUMI_FIX, SMALL_CONFIG.format(name=f"rem-app-{i}")) for i in range(4)}
    cli = EngineCLI(tmp_path / "home", make_catalog(tmp_path / "c", tenants))
    assert cli("up", "--all", "--env", "staging", "--parallel", "2", "--json").code == 0
    cloud = cli.home / "local-cloud"
    for i in range(4):
        edit_json(cloud / f"rem{i}/staging/compute/app-1/instance.json", lambda d: d["spec"].update(instance_type="t3.2xlarge"))

    run = cli("drift", "--all", "--env", "staging", "--remediate", "--parallel", "4", "--json")
    assert run.code == 0, run.stdout[-3000:] + run.stderr[-3000:]
    stacks = {s["customer"]: s for s in run.json()["stacks"]}
    assert {c: s["state"] for c, s in stacks.items()} == {f"rem{i}": "remediated" for i in range(4)}
    for i in range(4):
        assert stacks[f"rem{i}"]["remediation"]["status"] == "succeeded" and stacks[f"rem{i}"]["remediation"]["changes"]["update"] == 1
        spec = json.loads((cloud / f"rem{i}/staging/compute/app-1/instance.json").read_text())["spec"]
        # each stack got its own program's desired state back: its own type, its own tenant's tags and address
        assert spec["instance_type"] == "t3.micro" and spec["tags"]["customer"] == f"rem{i}"
        assert spec["private_ip"].startswith(f"10.{(40 + i) // 4}.")
    assert cli("drift", "--all", "--env", "staging").code == 0
