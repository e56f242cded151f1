"""Snapshots and rollback (engine/snapshots.py, engine/rollback.py): every successful deploy is recorded with its
inputs and revision; a rollback applies one again — previewed first, refused when it cannot be faithful."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from engine import rollback, snapshots, wiring
from engine.catalog import Catalog
from engine.errors import InputError
from engine.history import HistoryStore, Recorder
from engine.home import EngineHome
from engine.operations import Engine
from engine.post_deploy import AfterDeploy
from engine.results import FailedTest, PostDeployOutcome, StackResult, Status
from tests.conftest import SMALL_CONFIG, EngineCLI, make_catalog, tenant_record
from tests.fakegithub.fixture import github_server  # noqa: F401 - pytest fixture
from tests.fakerunner import FakeRunner


class RecordingRunner(FakeRunner):
    """A fake tool that remembers the settings each operation was given."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.configs: list[tuple[str, str, int]] = []  # (environment, operation, instance_count)

    def run(self, target, operation, gate=None):
        self.configs.append((target.environment, str(operation), target.config["instance_count"]))
        result = super().run(target, operation, gate)
        result.outputs = {"instance_count": target.config["instance_count"], "database_password": "[secret]"}
        return result


class FailingTests:
    """Post-deploy tests that fail while ``failing`` is set (a disk smaller than the test expects)."""

    failing = False

    def run(self, target, result, reveal):
        if self.failing:
            result.tests = PostDeployOutcome("failed", 4, 1, failures=[FailedTest("test_local_target.py::test_disk", "disk is 20 GB, 40 GB requested")])
            result.status, result.error = Status.FAILED, result.tests.describe()
        else:
            result.tests = PostDeployOutcome("passed", 5)
        return result


def catalog(tmp_path: Path, **record) -> Path:
    return make_catalog(tmp_path / "c", {"acme": (tenant_record("acme", 1, **record), SMALL_CONFIG.format(name="acme-app"))})


def set_count(root: Path, environment: str, count: int) -> None:
    path = root / "customers" / "acme" / "infra" / "variables.yml"
    text = path.read_text()
    marker = f"  {environment}:\n    instance_type: "
    head, rest = text.split(marker, 1)
    line, tail = rest.split("\n", 1)
    tail = "\n".join(ln for ln in tail.split("\n") if not ln.startswith("    instance_count:"))
    path.write_text(f"{head}{marker}{line}\n    instance_count: {count}\n{tail}")


def engine_with(tmp_path: Path, root: Path, runner: FakeRunner, tests) -> tuple[Engine, HistoryStore]:
    store = HistoryStore.sqlite(tmp_path / "h.sqlite3")
    w = wiring.Wiring(catalog_root=root, home=EngineHome(tmp_path / "home"))
    after = AfterDeploy(tests, w.revision_of, lambda: store, lambda tool, source: runner, w.stream)
    engine = Engine(catalog=Catalog(root), home=w.home, runners=lambda _t: runner, stream=w.stream, after_deploy=after)
    engine.stream.subscribe(Recorder(store, sha="a" * 40))
    return engine, store


def test_a_failed_post_deploy_test_rolls_back_to_the_last_good_deploy_and_both_runs_are_recorded(tmp_path):
    root = catalog(tmp_path, rollback_on_failure="[production]")
    runner, tests = RecordingRunner(), FailingTests()
    engine, store = engine_with(tmp_path, root, runner, tests)
    first = engine.run("acme", "up", ["production"])
    assert first.ok and first.stacks[0].tests.status == "passed"
    good = store.snapshots("acme", "production")[0]
    assert good["snapshot"]["inputs"]["settings"]["instance_count"] == 2 and good["snapshot"]["sha"] == "a" * 40

    set_count(root, "production", 5)
    tests.failing = True
    second = engine.run("acme", "up", ["production"])
    failed = second.stacks[0]
    assert failed.status == "failed" and second.exit_code == 1
    assert failed.error == "post-deploy test test_local_target.py::test_disk failed: disk is 20 GB, 40 GB requested"
    assert failed.rolled_back["status"] == "succeeded" and failed.rolled_back["source_run"] == good["run_id"]
    assert failed.rolled_back["outputs"]["instance_count"] == 2
    # the rollback applied the first deploy's settings again, with no new preview or policy gate in between
    assert runner.configs[-2:] == [("production", "up", 5), ("production", "up", 2)]
    rows = store.query("acme", "production")
    assert [(r["operation"], r["status"], r["rollback_of"]) for r in rows] == [
        ("rollback", "succeeded", good["run_id"]), ("up", "failed", None), ("up", "succeeded", None)]
    assert failed.rolled_back["run_id"] == rows[0]["id"]
    assert [s["run_id"] for s in store.snapshots("acme", "production")] == [rows[0]["id"], good["run_id"]]  # the failure is no snapshot


def test_without_rollback_on_failure_a_failed_test_only_fails(tmp_path):
    root = catalog(tmp_path)
    runner, tests = RecordingRunner(), FailingTests()
    engine, store = engine_with(tmp_path, root, runner, tests)
    engine.run("acme", "up", ["production"])
    tests.failing = True
    failed = engine.run("acme", "up", ["production"]).stacks[0]
    assert failed.status == "failed" and failed.rolled_back is None
    assert [r["operation"] for r in store.query("acme", "production")] == ["up", "up"]


def test_a_first_deploy_that_fails_its_tests_has_nothing_to_roll_back_to_and_says_so(tmp_path):
    root = catalog(tmp_path, rollback_on_failure="true")
    runner, tests = RecordingRunner(), FailingTests()
    tests.failing = True
    engine, _store = engine_with(tmp_path, root, runner, tests)
    failed = engine.run("acme", "up", ["production"]).stacks[0]
    assert failed.rolled_back == {"status": "not-run", "error": "no earlier successful deploy of this environment is recorded"}


def snapshot_row(store: HistoryStore, run_id: int) -> rollback.Source:
    return next(rollback._source(r) for r in store.snapshots("acme", "staging") if r["run_id"] == run_id)


def test_previous_is_the_deploy_before_the_current_one_and_to_names_a_run(tmp_path):
    root = catalog(tmp_path)
    runner = RecordingRunner()
    engine, store = engine_with(tmp_path, root, runner, FailingTests())
    engine.run("acme", "up", ["staging"])
    set_count(root, "staging", 3)
    engine.run("acme", "up", ["staging"])
    first, second = sorted(r["run_id"] for r in store.snapshots("acme", "staging"))
    assert rollback.choose(store, "acme", "staging", previous=True).run_id == first
    assert rollback.choose(store, "acme", "staging", to=second).run_id == second
    with pytest.raises(InputError, match=r"run 999 is not a successful deploy of acme/staging"):
        rollback.choose(store, "acme", "staging", to=999)
    with pytest.raises(InputError, match="--to RUN_ID or --previous"):
        rollback.choose(store, "acme", "staging")
    with pytest.raises(InputError, match="has no successful deploy recorded"):
        rollback.choose(store, "acme", "production", previous=True)


def test_a_rollback_across_a_tool_switch_or_another_state_location_is_refused(tmp_path):
    root = catalog(tmp_path)
    engine, store = engine_with(tmp_path, root, RecordingRunner(), FailingTests())
    engine.run("acme", "up", ["staging"])
    source = rollback.choose(store, "acme", "staging", to=store.snapshots("acme", "staging")[0]["run_id"])
    (target,) = engine.plan("acme", ["staging"])
    with pytest.raises(InputError, match=r"deployed with Pulumi at run \d+, but its tenant now selects Terraform: a rollback across a tool switch"):
        rollback.rollback_target(dataclasses.replace(target, tool="terraform"), source)
    with pytest.raises(InputError, match="kept its state elsewhere"):
        rollback.rollback_target(dataclasses.replace(target, backend_url="file:///elsewhere/acme"), source)
    assert rollback.rollback_target(target, source).config == source.snapshot["inputs"]["settings"]


def test_the_snapshot_records_inputs_revision_tool_and_masked_outputs(tmp_path):
    root = catalog(tmp_path)
    engine, store = engine_with(tmp_path, root, RecordingRunner(), FailingTests())
    engine.run("acme", "up", ["staging"])
    row = store.snapshots("acme", "staging")[0]
    snap = row["snapshot"]
    text = (root / "customers" / "acme" / "infra" / "variables.yml").read_text()
    assert snap["inputs"]["customer_file"]["content"] == text and snap["inputs"]["customer_file"]["sha256"].startswith("sha256:")
    assert snap["inputs"]["tenant_record_sha256"].startswith("sha256:") and snap["inputs"]["properties"]["infrastructure_tools"] == ["pulumi"]
    assert snap["tool"]["name"] == "pulumi" and snap["tool"]["version"].startswith("pulumi v")
    assert snap["revision"]["files"] == ["programs/__init__.py", "programs/local"] and snap["revision"]["digest"].startswith("sha256:")
    assert snap["outputs"]["database_password"] == "[secret]"
    assert row["revision"] == snapshots.Revision.from_dict(snap["revision"]).label


# -- revisions: git commit or digest, materialized for a rollback -------------------------------------------------------

def git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
           "PATH": "/usr/bin:/bin", "HOME": str(repo)}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout.strip()


def test_an_older_module_revision_is_materialized_from_git_and_checked_against_its_digest(tmp_path):
    repo = tmp_path / "manager"
    (repo / "terraform" / "local").mkdir(parents=True)
    module = repo / "terraform" / "local" / "main.tf"
    module.write_text('resource "x" "y" { size = 20 }\n')
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "v1")
    files = snapshots.program_files("terraform", "local")
    old = snapshots.source_revision(repo, files)
    assert old.commit == git(repo, "rev-parse", "HEAD") and not old.dirty and old.label == f"git {old.commit[:12]}"

    module.write_text('resource "x" "y" { size = 40 }\n')
    dirty = snapshots.source_revision(repo, files)
    assert dirty.dirty and dirty.label.startswith("sha256:") and dirty.digest != old.digest
    module.write_text('resource "x" "y" { size = 80 }\n')
    git(repo, "commit", "-qam", "v2")
    current = snapshots.source_revision(repo, files)

    assert snapshots.materialize(current, current) is None  # the same code: nothing to fetch
    copy = snapshots.materialize(old, current)
    try:
        assert (copy / "terraform" / "local" / "main.tf").read_text() == 'resource "x" "y" { size = 20 }\n'
    finally:
        import shutil

        shutil.rmtree(copy)
    with pytest.raises(InputError, match="not available: it was deployed from files that were not committed"):
        snapshots.materialize(dirty, current)
    gone = dataclasses.replace(old, commit="f" * 40)
    with pytest.raises(InputError, match=r"git ffffffffffff\) is not available in .*manager"):
        snapshots.materialize(gone, current)


# -- the command -----------------------------------------------------------------------------------------------------

@pytest.fixture
def fake_cli(tmp_path, monkeypatch):
    root = catalog(tmp_path)
    runner = RecordingRunner()
    monkeypatch.setitem(wiring.RUNNERS, "pulumi", lambda _w: runner)
    cli = EngineCLI(tmp_path / "home", root)
    cli.in_process = True
    return cli, root, runner


def test_engine_rollback_previews_first_and_applies_only_with_yes(fake_cli):
    cli, root, runner = fake_cli
    cli("up", "acme", "--env", "staging", check=0)
    set_count(root, "staging", 3)
    cli("up", "acme", "--env", "staging", check=0)
    listed = cli("rollback", "acme", "--env", "staging", "--list", "--json", check=0).json()["snapshots"]
    assert [s["operation"] for s in listed] == ["up", "up"]

    shown = cli("rollback", "acme", "--env", "staging", "--previous", check=0)
    assert "not applied: this is what the rollback would change; run it with --yes" in shown.stdout
    assert runner.configs[-1] == ("staging", "preview", 1)

    done = cli("rollback", "acme", "--env", "staging", "--previous", "--yes", "--json", check=0).json()
    assert done["applied"] and done["rollback"]["operation"] == "rollback" and done["rollback"]["outputs"]["instance_count"] == 1
    assert done["rollback"]["details"]["rollback_of"]["source_run"] == listed[1]["run_id"]
    assert runner.configs[-2:] == [("staging", "preview", 1), ("staging", "up", 1)]
    history = cli("history", "acme", "--json", check=0).json()
    assert history["runs"][0]["operation"] == "rollback" and history["runs"][0]["rollback_of"] == listed[1]["run_id"]


def test_engine_rollback_refuses_a_customer_file_that_no_longer_validates(fake_cli, tmp_path):
    cli, root, _runner = fake_cli
    cli("up", "acme", "--env", "staging", check=0)
    store = HistoryStore.sqlite(tmp_path / "home" / "history.sqlite3")
    row = store.snapshots("acme", "staging")[0]
    snap = row["snapshot"]
    snap["inputs"]["customer_file"]["content"] = snap["inputs"]["customer_file"]["content"].replace("t3.micro", "t3.tiny")
    store.execute("UPDATE snapshots SET snapshot = ? WHERE run_id = ?", (json.dumps(snap), row["run_id"]))
    refused = cli("rollback", "acme", "--env", "staging", "--to", str(row["run_id"]), "--yes")
    assert refused.code == 2 and "unknown instance type 't3.tiny'" in refused.stderr


# -- what the customer sees on GitHub (the local schema-checking server) -----------------------------------------------

def test_the_customer_sees_the_failed_test_and_the_automatic_rollback_in_status_comment_and_deployments(tmp_path, github_server):  # noqa: F811
    from engine.github import GitHubAPI, Settings as GitHubSettings
    from engine.reporters.github import Feedback, marker
    from engine.results import Changes, RollbackInfo

    sha, good = "1" * 40, "2" * 40
    github_server.add_repo("acme-org", "app")
    github_server.add_pull("acme-org", "app", 5, sha)
    api = GitHubAPI(GitHubSettings(api_url=github_server.url, token="test-token", timeout=5, max_retry_wait=1, writes_per_minute=100_000))
    feedback = Feedback(api, "acme-org/app", sha, 5, "apply", "https://github.example/run/1")
    tests = PostDeployOutcome("failed", 4, 1, failures=[FailedTest("test_local_target.py::test_every_instance_disk_has_the_requested_size",
                                                                  "AssertionError: app-1: disk is 20 GB, 40 GB requested")])
    failed = StackResult("acme", "production", "acme/production", "pulumi", "up", "failed", changes=Changes(update=1, same=10),
                         error=tests.describe(), tests=tests)
    feedback.stack_done(failed)
    status = [s for s in github_server.statuses("acme-org", "app", sha) if s["context"] == "infra/production"][-1]
    assert status["state"] == "failure" and "test_every_instance_disk_has_the_requested_size failed" in status["description"]

    # the rollback: the failed deploy's result learns about it, then the rollback run is reported
    failed.rolled_back = {"status": "succeeded", "source_run": 7, "source_sha": good, "changes": {"update": 1, "same": 10}, "outputs": {}}
    back = StackResult("acme", "production", "acme/production", "pulumi", "rollback", "succeeded", changes=Changes(update=1, same=10),
                       rollback=RollbackInfo(source_run=7, source_sha=good, reason=failed.error, revision="git 0123456789ab"))
    feedback.stack_done(back)
    status = [s for s in github_server.statuses("acme-org", "app", sha) if s["context"] == "infra/production"][-1]
    assert status["state"] == "failure" and status["description"].startswith("rolled back to run 7 (2222222) after: post-deploy test")
    (comment,) = [c for c in github_server.comments("acme-org", "app", 5) if c["body"].startswith(marker("acme", "production"))]
    assert "**Post-deploy tests:** ❌ 1 failed, 4 passed" in comment["body"] and "rolled back to run 7 (commit `2222222`)" in comment["body"]
    deployments = {d["sha"]: d for d in github_server.deployments("acme-org", "app")}
    assert deployments[sha]["statuses"][-1]["state"] == "failure"
    assert deployments[good]["task"] == "deploy:rollback" and deployments[good]["statuses"][-1]["state"] == "success"
    assert "rollback to run 7" in deployments[good]["description"]
    assert feedback.log == []
