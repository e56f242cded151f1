"""Safe change with the real tools: post-deploy tests after a deploy, rollbacks to an earlier deploy (by hand, and
automatically when a test fails), and a damaged state restored from its backup.  One pair of deploys per tool."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from engine.home import EngineHome
from engine.results import Operation
from engine.rollback import RevisionPulumiRunner
from engine.stream import EventStream
from engine.wiring import Wiring
from tests.conftest import REPO, EngineCLI, make_catalog, tenant_record

CONFIG = """\
project_name: {name}
environments:
  production:
    instance_type: t3.small
    instance_count: {count}
    volume_size_gb: {disk}
database:
  engine: postgres
monitoring:
  alert_email: ops@example.com
"""
GIB = 2**30


def local_cloud(cli: EngineCLI, customer: str) -> dict[str, object]:
    """What is on disk for a customer's production: every file's content (JSON documents) or size (disks, databases)."""
    root = cli.home / "local-cloud" / customer / "production"
    found: dict[str, object] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        key = str(path.relative_to(root))
        found[key] = json.loads(path.read_text()) if path.suffix == ".json" else path.stat().st_size
    return found


def write_config(root: Path, customer: str, name: str, count: int, disk: int) -> None:
    (root / "customers" / customer / "infra" / "variables.yml").write_text(CONFIG.format(name=name, count=count, disk=disk))


def production(run) -> dict:
    return run.json()["environments"]["production"]


def test_pulumi_rollback_by_hand_then_automatically_after_a_failed_test_then_a_damaged_state_restored(tmp_path):
    root = make_catalog(tmp_path / "catalog", {"acme": (tenant_record("acme", 1, rollback_on_failure="true"),
                                                         CONFIG.format(name="acme-shop", count=1, disk=20))})
    cli = EngineCLI(tmp_path / "home", root)

    # two different successful deploys, each tested (production is tested by default) and snapshotted
    first = production(cli("up", "acme", "--json", check=0))
    assert first["details"]["tests"]["status"] == "passed" and first["details"]["tests"]["passed"] == 5
    good_files = local_cloud(cli, "acme")
    assert good_files["compute/app-1/root.img"] == 20 * GIB
    write_config(root, "acme", "acme-shop", count=2, disk=30)
    second = production(cli("up", "acme", "--json", check=0))
    assert second["details"]["tests"]["status"] == "passed" and local_cloud(cli, "acme")["compute/app-2/root.img"] == 30 * GIB

    # engine rollback --previous: previewed, applied only with --yes, then outputs and resources are the first deploy's
    shown = cli("rollback", "acme", "--env", "production", "--previous", check=0)
    assert "delete   app-2" in shown.stdout and "not applied" in shown.stdout and local_cloud(cli, "acme") != good_files
    back = cli("rollback", "acme", "--env", "production", "--previous", "--yes", "--json", check=0).json()
    assert back["source"]["run_id"] == first["run_id"] and back["rollback"]["status"] == "succeeded"
    assert back["rollback"]["outputs"] == first["outputs"]
    assert local_cloud(cli, "acme") == good_files

    # a provider test the next deploy fails (it expects bigger disks than the program makes): the environment fails with
    # the test named, is rolled back to the last good deploy, and the history shows both runs
    tests = root / "programs" / "local" / "tests"
    shutil.copytree(REPO / "programs" / "local" / "tests", tests)
    (tests / "test_disk_floor.py").write_text(
        "from pathlib import Path\n\n\ndef test_every_disk_has_room_for_the_nightly_dumps(stack):\n"
        "    for disk in sorted((Path(stack.settings['local_root']) / 'compute').glob('app-*/root.img')):\n"
        "        size = disk.stat().st_size // 2**30\n"
        "        assert size >= 50, f'{disk.parent.name}: disk is {size} GB, the nightly dumps need 50 GB'\n")
    write_config(root, "acme", "acme-shop", count=1, disk=40)
    failed_run = cli("up", "acme", "--json")
    assert failed_run.code == 1
    failed = production(failed_run)
    assert failed["status"] == "failed"
    assert failed["error"] == ("post-deploy test test_disk_floor.py::test_every_disk_has_room_for_the_nightly_dumps failed: "
                               "AssertionError: app-1: disk is 40 GB, the nightly dumps need 50 GB")
    rolled = failed["details"]["rolled_back"]
    assert rolled["status"] == "succeeded" and rolled["source_run"] == back["rollback"]["run_id"]
    assert local_cloud(cli, "acme") == good_files
    assert production(cli("outputs", "acme", "--json", check=0))["outputs"] == first["outputs"]
    history = [r for r in cli("history", "acme", "--json", check=0).json()["runs"] if r["operation"] in ("up", "rollback")]
    assert [(r["operation"], r["status"], r["rollback_of"]) for r in history] == [
        ("rollback", "succeeded", back["rollback"]["run_id"]), ("up", "failed", None), ("rollback", "succeeded", first["run_id"]),
        ("up", "succeeded", None), ("up", "succeeded", None)]
    assert history[0]["id"] == rolled["run_id"]

    # the customer reverts the change; then a state file damaged by hand: the preview sees it; an older backup is refused
    # (the live state is newer), the newest one is restored, and the next preview shows no changes
    write_config(root, "acme", "acme-shop", count=1, disk=20)
    checkpoint = cli.home / "state" / "acme" / ".pulumi" / "stacks" / "acme" / "production.json"
    data = json.loads(checkpoint.read_text())
    data["checkpoint"]["latest"]["resources"] = [r for r in data["checkpoint"]["latest"]["resources"] if not r["urn"].endswith("::monitoring")]
    checkpoint.write_text(json.dumps(data))
    damaged = production(cli("preview", "acme", "--json", check=0))["changes"]
    assert (damaged["create"], damaged["update"], damaged["delete"]) == (1, 0, 0)
    backups = cli("state", "backups", "acme", "--env", "production", "--json", check=0).json()["backups"]
    assert backups and {b["tool"] for b in backups} == {"pulumi"} and all(b["location"].startswith(str(cli.home / "state" / "acme" / "backups")) for b in backups)
    refused = cli("state", "restore", "acme", "--env", "production", "--backup", backups[-1]["id"], "--yes")
    assert refused.code == 2 and "is newer than backup" in refused.stderr and "--force" in refused.stderr
    restored = cli("state", "restore", "acme", "--env", "production", "--yes", "--json", check=0).json()
    assert restored["backup"]["id"] == backups[0]["id"] and restored["result"]["operation"] == "restore"
    after = production(cli("preview", "acme", "--json", check=0))["changes"]
    assert (after["create"], after["update"], after["delete"], after["replace"]) == (0, 0, 0, 0)

    # a rollback to another program revision runs its Pulumi in a child process importing that revision's programs/:
    # here a copy of the same code, which must preview the restored stack as unchanged
    copy = tmp_path / "revision"
    shutil.copytree(REPO / "programs", copy / "programs", ignore=shutil.ignore_patterns("__pycache__", "tests"))
    home = EngineHome(cli.home)
    (target,) = Wiring(catalog_root=root, home=home).engine().plan("acme", ["production"])
    preview = RevisionPulumiRunner(copy, home, EventStream(), home.passphrase).run(target, Operation.PREVIEW)
    assert preview.status == "succeeded" and preview.changes.total_changes == 0, preview.error
    assert "app-1" in json.dumps(local_cloud(cli, "acme"))  # nothing was destroyed along the way


def git(repo: Path, *args: str) -> None:
    env = {"GIT_AUTHOR_NAME": "provider", "GIT_AUTHOR_EMAIL": "p@example.com", "GIT_COMMITTER_NAME": "provider",
           "GIT_COMMITTER_EMAIL": "p@example.com", "PATH": "/usr/bin:/bin", "HOME": str(repo)}
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)


def test_terraform_rollback_to_an_older_module_revision_and_a_damaged_state_restored(tmp_path):
    # the provider's catalog is a git checkout with its own module (terraform/local): the second deploy ships a module change
    root = make_catalog(tmp_path / "catalog", {"tfco": (tenant_record("tfco", 3) + "properties:\n  infrastructure_tools: [terraform]\n",
                                                         CONFIG.format(name="tf-shop", count=1, disk=20))})
    shutil.copytree(REPO / "terraform" / "local", root / "terraform" / "local", ignore=shutil.ignore_patterns("__pycache__"))
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", "module v1")
    cli = EngineCLI(tmp_path / "home", root)
    first = production(cli("up", "tfco", "--json", check=0))
    assert first["details"]["tests"]["status"] == "passed" and first["details"]["tests"]["directory"] == "terraform/local/tests"
    assert first["details"]["tests"]["passed"] == 5  # the four shared with the Pulumi program, and its own database test
    good_files = local_cloud(cli, "tfco")

    module = root / "terraform" / "local" / "main.tf"
    module.write_text(module.read_text().replace('{ destination = "0.0.0.0/0", target = each.value }',
                                                 '{ destination = "0.0.0.0/0", target = each.value }, { destination = "10.255.0.0/16", target = "vpn" }'))
    git(root, "commit", "-qam", "module v2: a VPN route")
    second = production(cli("up", "tfco", "--json", check=0))
    assert second["changes"]["update"] == 2 and local_cloud(cli, "tfco") != good_files

    back = cli("rollback", "tfco", "--env", "production", "--previous", "--yes", "--json", check=0).json()
    assert back["source"]["run_id"] == first["run_id"] and back["source"]["revision"].startswith("git ")
    assert back["preview"]["changes"]["update"] == 2  # previewed with module v1 from git, not the checkout's v2
    assert back["rollback"]["status"] == "succeeded" and back["rollback"]["outputs"] == first["outputs"]
    assert local_cloud(cli, "tfco") == good_files
    assert "vpn" in module.read_text()  # the checkout is left as it is

    # the provider reverts the module change; then a state damaged by hand (a resource dropped from it) is restored from
    # the newest backup, and the next preview shows no changes
    git(root, "revert", "--no-edit", "HEAD")
    state = cli.home / "state" / "tfco" / "terraform" / "production.tfstate"
    data = json.loads(state.read_text())
    data["resources"] = [r for r in data["resources"] if r.get("name") != "monitoring"]
    state.write_text(json.dumps(data))
    assert production(cli("preview", "tfco", "--json", check=0))["changes"]["create"] == 1
    restored = cli("state", "restore", "tfco", "--env", "production", "--yes", "--json", check=0).json()
    assert restored["result"]["status"] == "succeeded" and restored["backup"]["reason"] == "after-up"
    after = production(cli("preview", "tfco", "--json", check=0))["changes"]
    assert (after["create"], after["update"], after["delete"], after["replace"]) == (0, 0, 0, 0)
