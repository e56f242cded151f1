"""``--dry-run`` changes nothing anywhere: not the resources, not the state, not GitHub — and says what it would have written.

Real stacks (Pulumi, local target) and the schema-checking local GitHub server.  Every file under
the engine home's ``state/`` and ``local-cloud/`` is compared byte for byte before and after.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from engine.events import sign_dispatch
from tests.conftest import compliance_catalog, SMALL_CONFIG, EngineCLI, make_catalog, tenant_record
from tests.fakegithub.fixture import github_server  # noqa: F401 - pytest fixture

SHA = "4444444444444444444444444444444444444444"
OWNER, REPO = "acme-org", "app"
SECRET = "acme-dispatch-secret-for-the-dry-run-tests-012345"
# the commit the event names asks for a second staging instance: the preview has something to show
CHANGED = SMALL_CONFIG.format(name="acme-app").replace("    instance_type: t3.micro\n", "    instance_type: t3.micro\n    instance_count: 2\n", 1)


def content(path: Path) -> tuple[int, str]:
    """(size, digest of every byte): the local target's disk images are sparse 20 GiB files, so the digest covers
    the data extents (where they lie and what they hold; a hole reads as zeros) instead of reading gigabytes of zeros."""
    digest, size = hashlib.sha256(), path.stat().st_size
    with open(path, "rb") as fh:
        fd, pos = fh.fileno(), 0
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:  # ENXIO: only a hole is left
                break
            end = os.lseek(fd, start, os.SEEK_HOLE)
            os.lseek(fd, start, os.SEEK_SET)
            digest.update(f"{start}-{end}:".encode())
            while start < end:
                chunk = os.read(fd, min(end - start, 1 << 20))
                digest.update(chunk)
                start += len(chunk)
            pos = end
    return size, digest.hexdigest()


def files_under(home: Path, *parts: str) -> dict[str, tuple[int, str]]:
    """Every file under each of ``parts`` of the engine home (state and resources, nothing left out) → its content."""
    found: dict[str, tuple[int, str]] = {}
    for part in parts:
        for path in sorted((home / part).rglob("*")):
            if path.is_file():
                found[str(path.relative_to(home))] = content(path)
    return found


def signed_dispatch(tmp_path: Path, **fields) -> str:
    body = {"customer": "acme", "sha": SHA, **fields}
    body["signature"] = sign_dispatch(SECRET, timestamp=int(time.time()), customer="acme", sha=SHA, ref=body.get("ref"),
                                      pr=body.get("pr"), mode=body.get("mode", "plan"), environment=body.get("environment"))
    path = tmp_path / "event.json"
    path.write_text(json.dumps({"action": "infra-change", "client_payload": body, "sender": {"login": "acme-bot"}}))
    return str(path)


@pytest.fixture
def deployed(tmp_path, github_server):  # noqa: F811
    """acme's staging deployed for real (its customer file read from GitHub); production never deployed."""
    record = tenant_record("acme", 1).replace("source: customers/acme\n", "")
    root = make_catalog(tmp_path / "catalog", {"acme": (record, None)})
    github_server.add_repo(OWNER, REPO, properties={"infrastructure_tools": ["pulumi"]})
    github_server.put_file(OWNER, REPO, "main", "infra/variables.yml", SMALL_CONFIG.format(name="acme-app"))
    github_server.put_file(OWNER, REPO, SHA, "infra/variables.yml", CHANGED)
    github_server.set_ref(OWNER, REPO, "main", SHA)
    github_server.add_pull(OWNER, REPO, 8, SHA)
    cli = EngineCLI(tmp_path / "home", root)
    env = cli.env()
    env.update({"GITHUB_API_URL": github_server.url, "GITHUB_TOKEN": "test-token", "GITHUB_REPOSITORY": "provider/manager",
                "GITHUB_RUN_ID": "99", "ENGINE_GITHUB_TIMEOUT": "2", "ENGINE_GITHUB_MAX_RETRY_WAIT": "1",
                "ENGINE_DISPATCH_SECRETS": json.dumps({"acme": SECRET})})
    cli.env = lambda: env  # type: ignore[method-assign]
    cli("up", "acme", "--env", "staging", check=0)  # reads the default branch from GitHub (the tenant has no local source)
    return cli, github_server, tmp_path


def assert_previewed_an_apply(result: dict) -> None:
    assert result["operation"] == "preview", result["operation"]  # a preview ran …
    assert (result["dry_run"]["requested"], result["dry_run"]["ran"]) == ("up", "preview")  # … in place of the apply
    would = {w["stack"]: w for w in result["dry_run"]["would_apply"]}
    assert would["acme/staging"]["changes"]["create"] > 0 and would["acme/staging"]["changes"]["delete"] == 0
    assert would["acme/production"]["changes"]["create"] > 0 and would["acme/production"]["changes"]["same"] == 0  # never deployed
    github = result["dry_run"]["would_write"]["github"]
    for env in ("staging", "production"):
        assert any(w.startswith(f"POST /repos/{OWNER}/{REPO}/statuses/{SHA} ") and f'"context": "infra/{env}"' in w for w in github)
        assert any(w.startswith(f"POST /repos/{OWNER}/{REPO}/deployments ") and f'"environment": "{env}"' in w for w in github)
        assert any(w.startswith(f"POST /repos/{OWNER}/{REPO}/deployments/") and f'"environment": "{env}"' in w for w in github)
    assert sum(1 for w in github if w.startswith(f"POST /repos/{OWNER}/{REPO}/issues/8/comments ")) == 2  # one comment per environment
    assert len(result["dry_run"]["would_write"]["state"]) == 2


def test_a_dry_run_apply_against_a_deployed_stack_changes_no_state_no_resource_and_nothing_on_github(deployed):
    cli, server, tmp = deployed
    before = files_under(cli.home, "state", "local-cloud")
    assert any("local-cloud/acme/staging" in p for p in before) and any(p.startswith("state/") for p in before)
    writes_before = len(server.writes())

    run = cli("event", "repository_dispatch", signed_dispatch(tmp, mode="apply", pr=8), "--mode", "apply", "--dry-run", "--json")
    assert run.code == 0, run.stdout + run.stderr
    assert files_under(cli.home, "state", "local-cloud") == before  # byte for byte, production's stack not even created
    assert len(server.writes()) == writes_before
    result = run.json()
    assert_previewed_an_apply(result)
    assert result["dry_run"]["would_refuse"] == [] and result["dry_run"]["notes"] == []
    assert "[dry-run] would POST" in run.stderr

    # the same without any GitHub credentials: the customer's checkout stands in for the repository
    checkout = tmp / "checkout"
    (checkout / "infra").mkdir(parents=True)
    (checkout / "infra" / "variables.yml").write_text(CHANGED)
    for key in ("GITHUB_TOKEN", "ENGINE_GITHUB_TOKEN"):
        cli.env().pop(key, None)
    requests_before = len(server.requests)
    offline = cli("event", "repository_dispatch", signed_dispatch(tmp, mode="apply", pr=8), "--mode", "apply", "--dry-run",
                  "--source", str(checkout), "--json")
    assert offline.code == 0, offline.stdout + offline.stderr
    assert files_under(cli.home, "state", "local-cloud") == before
    assert len(server.requests) == requests_before  # not one request: reads come from the checkout
    assert_previewed_an_apply(offline.json())
    assert any("working tree" in note for note in offline.json()["dry_run"]["notes"])

    # what the dry run said an apply of production would create is what a real apply creates (and the scratch preview left
    # nothing behind that a real deploy would trip over)
    predicted = {w["stack"]: w for w in offline.json()["dry_run"]["would_apply"]}["acme/production"]["changes"]["create"]
    cli.env()["GITHUB_TOKEN"] = "test-token"
    real = cli("up", "acme", "--env", "production", "--json", check=0).json()
    assert real["environments"]["production"]["changes"]["create"] == predicted


def test_drift_remediate_dry_run_leaves_the_stack_drifted_and_lists_the_remediation(tmp_path, github_server):  # noqa: F811
    record = tenant_record("acme", 1).replace("acme-org/app", "acme-org/shop") + "properties:\n  drift_auto_remediate: true\n"
    root = make_catalog(tmp_path / "c", {"acme": (record, SMALL_CONFIG.format(name="acme-app"))})
    github_server.add_repo("acme-org", "shop")
    cli = EngineCLI(tmp_path / "home", root)
    env = cli.env()
    env.update({"GITHUB_API_URL": github_server.url, "GITHUB_TOKEN": "test-token", "GITHUB_REPOSITORY": "provider/manager",
                "ENGINE_GITHUB_TIMEOUT": "2", "ENGINE_GITHUB_MAX_RETRY_WAIT": "1"})
    cli.env = lambda: env  # type: ignore[method-assign]
    cli("up", "acme", "--env", "staging", check=0)
    definition = cli.home / "local-cloud/acme/staging/compute/app-1/instance.json"
    doc = json.loads(definition.read_text())
    doc["spec"]["instance_type"] = "t3.2xlarge"
    definition.write_text(json.dumps(doc))
    before = files_under(cli.home, "state", "local-cloud")

    run = cli("drift", "acme", "--env", "staging", "--remediate", "--report", "github", "--dry-run", "--json")
    assert run.code == 3, run.stdout + run.stderr  # still drifted: nothing was put back
    assert files_under(cli.home, "state", "local-cloud") == before
    assert github_server.writes() == []
    data = run.json()
    (stack,) = data["stacks"]
    assert stack["state"] == "drifted" and "remediation" not in stack
    (would,) = data["dry_run"]["would_remediate"]
    assert would["stack"] == "acme/staging" and would["command"] == "engine up acme --env staging --refresh"
    assert would["resources"] == [{"name": "app-1", "type": "local:Instance", "action": "update",
                                   "diffs": [{"path": "spec.instance_type", "old": "t3.micro", "new": "t3.2xlarge"}]}]
    (issue,) = data["dry_run"]["would_write"]["github"]
    assert issue.startswith("POST /repos/acme-org/shop/issues ")

    text = cli("drift", "acme", "--env", "staging", "--remediate", "--dry-run")
    assert text.code == 3
    assert "DRY RUN — no stack was remediated and no GitHub write was made." in text.stdout
    assert "acme/staging: `engine up acme --env staging --refresh` — puts back 1 resource(s)" in text.stdout
    assert files_under(cli.home, "state", "local-cloud") == before


def test_compliance_remediate_dry_run_writes_nothing_and_lists_every_write(tmp_path, github_server):  # noqa: F811
    root, _cmdb = compliance_catalog(tmp_path, github_server, ["terraform"])
    cli = EngineCLI(tmp_path / "home", root)
    env = cli.env()
    env.update({"GITHUB_API_URL": github_server.url, "GITHUB_TOKEN": "test-token", "ENGINE_GITHUB_TIMEOUT": "2"})
    cli.env = lambda: env  # type: ignore[method-assign]

    run = cli("compliance", "--source", str(tmp_path / "cmdb.csv"), "--remediate", "--dry-run", "--json")
    assert run.code == 3, run.stdout + run.stderr  # still drifted
    assert github_server.writes() == [] and not (cli.home / "audit").exists()
    data = run.json()["dry_run"]
    (patch,) = data["would_write"]["github"]
    assert patch.startswith("PATCH /repos/beta-org/site/properties/values ")
    (record,) = data["would_append_audit"]
    assert record["repository"] == "beta-org/site"
    assert {c["property"]: (c["from"], c["to"]) for c in record["changes"]}["terraform_version"] == ("1.5", "1.8")

    text = cli("compliance", "--source", str(tmp_path / "cmdb.csv"), "--remediate", "--dry-run")
    assert "dry run — these writes were NOT made:" in text.stdout
    assert "would append to" in text.stdout and "terraform_version: '1.5' → '1.8'" in text.stdout
    assert github_server.writes() == [] and not (cli.home / "audit").exists()


def test_trying_a_customer_file_before_onboarding_leaves_no_state_at_all(tmp_path):
    """A tenant whose repository is not connected yet, no GitHub credentials: the file is tried from a checkout, nothing is kept."""
    root = make_catalog(tmp_path / "catalog", {"acme": (tenant_record("acme", 1).replace("source: customers/acme\n", ""), None)})
    checkout = tmp_path / "checkout"
    (checkout / "infra").mkdir(parents=True)
    (checkout / "infra" / "variables.yml").write_text(SMALL_CONFIG.format(name="acme-app"))
    cli = EngineCLI(tmp_path / "home", root)
    env = {k: v for k, v in cli.env().items() if k not in ("GITHUB_TOKEN", "ENGINE_GITHUB_TOKEN", "ENGINE_GITHUB_APP_ID")}
    cli.env = lambda: env  # type: ignore[method-assign]
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "infra-change", "client_payload": {"customer": "acme", "sha": SHA, "mode": "apply"}}))

    run = cli("event", "repository_dispatch", str(event), "--dry-run", "--source", str(checkout))
    assert run.code == 0, run.stdout + run.stderr
    assert "acme/staging: 11 create; would record the apply in the stack's state" in run.stdout
    assert "a real run would REFUSE this event: dispatch for customer 'acme' refused" in run.stdout  # unsigned: said, and previewed
    assert files_under(cli.home, "state", "local-cloud") == {}
