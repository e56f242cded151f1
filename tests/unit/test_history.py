"""Run history: the store (SQLite here; the same contract runs on PostgreSQL in
tests/integration/test_history_postgres.py), the recorder's best-effort rule, and `engine history`."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from engine import history
from engine.catalog import Catalog
from engine.drift import StackDrift
from engine.history import HistoryStore, Recorder
from engine.home import EngineHome
from engine.operations import Engine
from engine.results import Changes, StackResult
from tests.conftest import REPO, EngineCLI
from tests.fakerunner import FakeRunner

T0 = dt.datetime(2026, 5, 20, 12, 0, 0, tzinfo=dt.timezone.utc)


def result(customer="acme", environment="staging", operation="up", status="succeeded", error=None, duration=2.5, **changes) -> StackResult:
    return StackResult(customer, environment, f"{customer}/{environment}", "pulumi", operation, status,
                       changes=Changes(**changes), outputs={"db_password": "hunter2-secret"}, error=error, duration_s=duration)


def insert(store: HistoryStore, res: StackResult, minutes: int, recorder: Recorder | None = None, status: str | None = None) -> None:
    """A row finished at T0 + ``minutes``, so ordering tests don't depend on the clock."""
    recorder = recorder or Recorder(store, actor="alice", host="ci-1")
    store.insert(recorder.row(res, status, finished=T0 + dt.timedelta(minutes=minutes)))


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from engine.history import HistoryStore, Recorder
    from engine.results import Changes, StackResult
    url, worker, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    warnings = []
    recorder = Recorder(HistoryStore.from_url(url, Path(".")), warn=warnings.append)
    for i in range(count):
        recorder.stack_done(StackResult(f"c{worker}", "staging", "s", "pulumi", "up", "succeeded", changes=Changes(create=i)))
    assert not warnings, warnings
""")


class StoreContract:
    """What every history backend must do.  Subclasses provide the ``url`` fixture."""

    @pytest.fixture
    def store(self, url, tmp_path) -> HistoryStore:
        return HistoryStore.from_url(url, tmp_path)

    def test_records_and_reads_back_every_field(self, store, monkeypatch):
        monkeypatch.setenv("GITHUB_ACTOR", "octocat")
        monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.example")
        monkeypatch.setenv("GITHUB_REPOSITORY", "provider/manager")
        monkeypatch.setenv("GITHUB_RUN_ID", "42")
        recorder = Recorder(store, sha="a" * 40)
        long_error = "resource db failed: " + "x" * 900 + "\nsecond line"
        recorder.stack_done(result(status="failed", error=long_error, duration=12.345, create=3, update=1, delete=2, replace=1, same=4))
        (row,) = store.query()
        assert row["actor"] == "octocat" and row["host"]
        assert (row["customer"], row["environment"], row["tool"], row["operation"], row["status"]) == ("acme", "staging", "pulumi", "up", "failed")
        assert row["changes"] == {"create": 3, "update": 1, "delete": 2, "replace": 1, "same": 4}
        assert row["duration_s"] == 12.35
        assert row["error"] == long_error.splitlines()[0][:500] and len(row["error"]) == 500
        assert row["run_url"] == "https://github.example/provider/manager/actions/runs/42"
        assert row["sha"] == "a" * 40
        started = dt.datetime.fromisoformat(row["started_at"].replace("Z", "+00:00"))
        finished = dt.datetime.fromisoformat(row["finished_at"].replace("Z", "+00:00"))
        assert row["started_at"].endswith("Z") and abs((finished - started).total_seconds() - 12.345) < 0.01
        assert "hunter2-secret" not in json.dumps(row)  # outputs are never stored

    def test_a_successful_deploy_keeps_its_snapshot_and_a_rollback_names_its_source(self, store):
        from engine.results import RollbackInfo

        snapshot = {"version": 1, "inputs": {"customer_file": {"validated_sha256": "sha256:" + "c" * 64}}, "tool": {"version": "pulumi v3"},
                    "revision": {"commit": "b" * 40, "dirty": False, "digest": "sha256:" + "d" * 64}, "outputs": {"db_password": "[secret]"}}
        deployed = result(create=3)
        deployed.snapshot = snapshot
        Recorder(store, sha="a" * 40).stack_done(deployed)
        failed = result(status="failed", error="post-deploy test t failed")
        failed.snapshot = snapshot  # a failed deploy is never a snapshot
        Recorder(store).stack_done(failed)
        back = result(operation="rollback", update=1)
        back.snapshot, back.rollback = snapshot, RollbackInfo(source_run=deployed.run_id, source_sha="a" * 40, reason="tests failed")
        Recorder(store, sha="e" * 40).stack_done(back)
        rows = store.snapshots("acme", "staging")
        assert [(r["run_id"], r["operation"], r["rollback_of"]) for r in rows] == [(back.run_id, "rollback", deployed.run_id),
                                                                                  (deployed.run_id, "up", None)]
        assert rows[1]["revision"] == "git bbbbbbbbbbbb" and rows[1]["tool_version"] == "pulumi v3" and rows[1]["snapshot"]["sha"] == "a" * 40
        assert rows[0]["sha"] == "a" * 40  # a rollback applies its source's commit again
        assert store.latest_deploy("acme", "staging")["id"] == back.run_id
        assert "hunter2-secret" not in json.dumps(rows)  # outputs only as the snapshot recorded them: masked

    def test_newest_first_filters_and_limit(self, store):
        insert(store, result("acme", "staging", create=1), 1)
        insert(store, result("acme", "production", create=2), 2)
        insert(store, result("beta", "staging", create=3), 3)
        insert(store, result("acme", "staging", operation="preview", update=4), 4)
        rows = store.query()
        assert [(r["customer"], r["environment"], r["operation"]) for r in rows] == [
            ("acme", "staging", "preview"), ("beta", "staging", "up"), ("acme", "production", "up"), ("acme", "staging", "up")]
        assert [r["changes"]["create"] for r in store.query("acme")] == [0, 2, 1]
        assert [r["operation"] for r in store.query("acme", "staging")] == ["preview", "up"]
        assert [r["customer"] for r in store.query(environment="staging")] == ["acme", "beta", "acme"]
        assert [r["changes"]["update"] for r in store.query(limit=1)] == [4]
        assert store.query("nobody") == []
        assert store.query("acme'; DROP TABLE runs; --") == [] and len(store.query()) == 4

    def test_drift_rows_carry_the_drift_state(self, store):
        recorder = Recorder(store)
        drifted = StackDrift(None, result(operation="drift", update=2))
        remediated = StackDrift(None, result(environment="production", operation="drift", update=1),
                                remediation=result(environment="production", operation="remediate", update=1),
                                after_remediation=result(environment="production", operation="drift"))
        recorder.drift_done(drifted)
        recorder.drift_done(remediated)
        got = {(r["environment"], r["operation"]): r["status"] for r in store.query()}
        assert got == {("staging", "drift"): "drifted", ("production", "drift"): "remediated", ("production", "remediate"): "succeeded"}

    def test_migration_is_idempotent(self, url, tmp_path):
        for _ in range(3):
            store = HistoryStore.from_url(url, tmp_path)
            Recorder(store).stack_done(result())
        assert len(store.query(limit=100)) == 3
        with store._conn() as conn:
            assert sorted(store._execute(conn, "SELECT version FROM schema_version").fetchall()) == [(v,) for v, _ in history.MIGRATIONS]

    def test_a_version_1_history_is_upgraded_in_place(self, url, tmp_path, monkeypatch):
        """A history written before the portal's columns keeps its rows and gains committed_at and details."""
        monkeypatch.setattr(history, "MIGRATIONS", history.MIGRATIONS[:1])
        monkeypatch.setattr(history, "SCHEMA_VERSION", 1)
        old = HistoryStore.from_url(url, tmp_path)
        with old._conn() as conn:
            old._execute(conn, "INSERT INTO runs (started_at, finished_at, actor, host, customer, environment, tool, operation, status) "
                               "VALUES ('2026-01-01T00:00:00.000Z', '2026-01-01T00:00:01.000Z', 'a', 'h', 'acme', 'staging', 'pulumi', 'up', 'succeeded')")
        monkeypatch.undo()
        store = HistoryStore.from_url(url, tmp_path)
        Recorder(store, sha="b" * 40, committed_at="2026-01-01T00:00:00.000Z").stack_done(result())
        rows = store.query()
        assert [(r["customer"], r["sha"], r["committed_at"]) for r in rows] == [("acme", "b" * 40, "2026-01-01T00:00:00.000Z"), ("acme", None, None)]

    def test_latest_run_pointers_follow_every_insert(self, store):
        """The portal reads each stack's latest deployment, successful deployment, drift scan and compliance result by key;
        kept on insert, they equal a recomputation from the runs."""
        for minutes, (env, op, status) in enumerate([("staging", "up", "succeeded"), ("staging", "up", "failed"), ("staging", "up", "skipped"),
                                                     ("production", "drift", "drifted"), ("production", "up", "succeeded"),
                                                     ("production", "destroy", "succeeded"), ("staging", "preview", "succeeded"),
                                                     ("production", "drift", "in-sync")]):
            insert(store, result(environment=env, operation=op), minutes, status=status)
        Recorder(store).compliance_done(__import__("engine.compliance", fromlist=["RepoCompliance"]).RepoCompliance("acme-org/app", "acme"))
        read = "SELECT customer, environment, kind, run_id, operation, status FROM latest_runs ORDER BY environment, kind"
        kept = store.select(read)
        assert [(r["environment"], r["kind"], r["operation"], r["status"]) for r in kept] == [
            ("*", "compliance", "compliance", "compliant"), ("production", "deploy", "destroy", "succeeded"),
            ("production", "deployed", "destroy", "succeeded"), ("production", "drift", "drift", "in-sync"),
            ("staging", "deploy", "up", "failed"), ("staging", "deployed", "up", "succeeded")]
        store.rebuild_latest()
        assert store.select(read) == kept

    def test_concurrent_writers_threads(self, url, tmp_path):
        warnings: list[str] = []

        def work(worker: int) -> None:
            recorder = Recorder(HistoryStore.from_url(url, tmp_path), warn=warnings.append)  # each its own store: racing migrations too
            for i in range(15):
                recorder.stack_done(result(f"t{worker}", create=i))

        threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert warnings == []
        rows = HistoryStore.from_url(url, tmp_path).query(limit=1000)
        assert len(rows) == 120 and {r["customer"] for r in rows} == {f"t{w}" for w in range(8)}

    def test_concurrent_writers_processes(self, url, tmp_path):
        procs = [subprocess.Popen([sys.executable, "-c", WRITER, url, str(w), "25"], cwd=REPO, stderr=subprocess.PIPE, text=True)
                 for w in range(4)]
        for p in procs:
            _, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
        rows = HistoryStore.from_url(url, tmp_path).query(limit=1000)
        assert len(rows) == 100
        assert sorted(r["changes"]["create"] for r in rows if r["customer"] == "c2") == list(range(25))


class TestSQLiteStore(StoreContract):
    @pytest.fixture
    def url(self, tmp_path) -> str:
        return f"sqlite://{tmp_path / 'db' / 'history.sqlite3'}"


def test_default_store_is_sqlite_in_engine_home_in_wal_mode(tmp_path, monkeypatch):
    monkeypatch.delenv("ENGINE_HISTORY_URL", raising=False)
    recorder = history.recorder_from_env(tmp_path / "home")
    recorder.stack_done(result())
    path = tmp_path / "home" / "history.sqlite3"
    assert recorder.store.where == f"sqlite:///{path}"
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT customer, status FROM runs").fetchall() == [("acme", "succeeded")]
    assert b"hunter2-secret" not in b"".join(p.read_bytes() for p in path.parent.glob("history.sqlite3*"))


def test_postgres_url_selects_postgres_and_never_shows_the_password(tmp_path):
    store = HistoryStore.from_url("postgresql://engine:s3cret@db.example:5433/history?sslmode=require", tmp_path)
    assert store.dialect is history.POSTGRES
    assert store.where == "postgresql://db.example:5433/history" and "s3cret" not in store.where
    assert history.POSTGRES.sql(history.INSERT).count("%s") == len(history.COLUMNS) and "?" not in history.POSTGRES.sql(history.INSERT)


def test_a_broken_store_is_a_warning_not_a_failure(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    warnings: list[str] = []
    recorder = Recorder(HistoryStore.sqlite(blocker / "history.sqlite3"), warn=warnings.append)
    recorder.stack_done(result())  # does not raise
    assert len(warnings) == 1 and warnings[0].startswith("warning: run history not recorded for acme/staging")
    assert "the run's result is unaffected" in warnings[0]


def test_a_broken_store_does_not_change_an_engine_run(tmp_path, capsys):
    shutil.copytree(REPO / "stacks", tmp_path / "c" / "stacks")
    shutil.copytree(REPO / "examples", tmp_path / "c" / "examples")
    (tmp_path / "blocker").write_text("")

    recorder = Recorder(HistoryStore.sqlite(tmp_path / "blocker" / "history.sqlite3"))
    engine = Engine(catalog=Catalog(tmp_path / "c"), home=EngineHome(tmp_path / "home"), runners=lambda _t: FakeRunner())
    engine.stream.subscribe(recorder)
    run = engine.run("acme", "up")
    assert run.ok and run.exit_code == 0 and len(run.stacks) == 2
    assert capsys.readouterr().err.count("warning: run history not recorded") == 2


def test_history_and_feedback_both_subscribe_to_every_stack(tmp_path):
    """`engine event` adds GitHub feedback as one more subscriber; the history still records every stack."""
    from engine.stream import StackDone

    shutil.copytree(REPO / "stacks", tmp_path / "c" / "stacks")
    shutil.copytree(REPO / "examples", tmp_path / "c" / "examples")
    store = HistoryStore.sqlite(tmp_path / "h.sqlite3")
    engine = Engine(catalog=Catalog(tmp_path / "c"), home=EngineHome(tmp_path / "home"), runners=lambda _t: FakeRunner())
    engine.stream.subscribe(Recorder(store))
    feedback: list[str] = []
    engine.stream.subscribe(lambda e: feedback.append(e.result.environment) if isinstance(e, StackDone) else None)
    engine.run("acme", "preview")
    assert feedback == ["staging", "production"]
    assert sorted(r["environment"] for r in store.query()) == ["production", "staging"]


def test_list_is_not_recorded_and_an_invalid_url_disables_recording(tmp_path, monkeypatch):
    store = HistoryStore.sqlite(tmp_path / "h.sqlite3")
    Recorder(store).stack_done(result(operation="list"))
    assert store.query() == []
    monkeypatch.setenv("ENGINE_HISTORY_URL", "mysql://nope")
    warnings: list[str] = []
    recorder = history.recorder_from_env(tmp_path, warn=warnings.append)
    recorder.stack_done(result())
    assert recorder.store is None and warnings and "ENGINE_HISTORY_URL" in warnings[0]


def test_engine_history_command(tmp_path):
    home = tmp_path / "home"
    store = HistoryStore.sqlite(home / "history.sqlite3")
    insert(store, result("acme", "staging", create=3), 1)
    insert(store, result("acme", "production", status="failed", error="boom: quota exceeded", update=1, delete=2), 2)
    insert(store, result("beta", "staging", operation="destroy", delete=5), 3)
    empty = tmp_path / "anywhere"
    empty.mkdir()
    cli = EngineCLI(home, empty)  # no catalog needed

    table = cli("history", check=0).stdout.splitlines()
    assert table[0].split()[:3] == ["TIME", "(UTC)", "CUSTOMER/ENV"]
    assert "beta/staging" in table[1] and "destroy" in table[1] and "+0 ~0 -5" in table[1] and "alice" in table[1]
    assert "acme/production" in table[2] and "failed" in table[2] and "+0 ~1 -2" in table[2]
    assert table[3].strip() == "error: boom: quota exceeded"
    assert "2026-05-20 12:00:57" in table[4] and "+3 ~0 -0" in table[4]

    data = cli("history", "acme", "--json", check=0).json()
    assert data["history"] == f"sqlite:///{home / 'history.sqlite3'}"
    assert [(r["environment"], r["changes"]["create"]) for r in data["runs"]] == [("production", 0), ("staging", 3)]
    assert [r["environment"] for r in cli("history", "acme", "--env", "staging", "--json", check=0).json()["runs"]] == ["staging"]
    assert len(cli("history", "--limit", "1", "--json", check=0).json()["runs"]) == 1
    assert "no runs recorded for gamma" in cli("history", "gamma", check=0).stdout
    assert cli("history", "../etc").code == 2


def test_engine_history_with_no_database_yet(tmp_path):
    empty = tmp_path / "anywhere"
    empty.mkdir()
    cli = EngineCLI(tmp_path / "home", empty)
    assert cli("history", "--json", check=0).json()["runs"] == []
    assert not (tmp_path / "home" / "history.sqlite3").exists()


# -- ENGINE_HISTORY_URL: a password never leaks, a malformed URL is a configuration error ----------------

LEAKY_URLS = [
    # (URL, the password in every form it could be printed)
    ("postgresql://bob:pw%@127.0.0.1:1/db", ["pw%"]),  # bad percent-encoding: libpq's message quoted it
    ("postgresql://bob:s3cret-pw@[::1/db", ["s3cret-pw"]),  # libpq quotes the whole URL
    ("postgresql://bob:s3cret-pw@127.0.0.1:abc/db", ["s3cret-pw"]),  # urlsplit's ValueError was an internal error
    ("postgresql://bob:s3/cr?et-pw@127.0.0.1/db", ["s3/cr?et-pw", "et-pw"]),  # an unencoded '/': libpq reads a piece of it as the query
    ("postgresql://bob@127.0.0.1:1/db?password=s3cret-pw&bogus=1", ["s3cret-pw"]),
]


@pytest.mark.parametrize("url,secrets", LEAKY_URLS)
def test_history_url_password_never_leaks_and_a_malformed_url_is_a_configuration_error(tmp_path, url, secrets):
    home = tmp_path / "home"
    catalog = tmp_path / "c"
    shutil.copytree(REPO / "stacks", catalog / "stacks")
    shutil.copytree(REPO / "examples", catalog / "examples")

    class CLI(EngineCLI):
        def env(self):
            return {**super().env(), "ENGINE_HISTORY_URL": url}

    cli = CLI(home, catalog)
    for args in (["history"], ["history", "--json"]):
        run = cli(*args)
        assert run.code == 2, (args, run.stdout, run.stderr)
        shown = run.stdout + run.stderr
        assert "ENGINE_HISTORY_URL is not a valid PostgreSQL URL" in shown and "internal error" not in shown and "Traceback" not in shown
        assert not any(s in shown for s in secrets), shown
    data = cli("history", "--json").json()
    assert data["error"] == "InputError" and "percent-encode" in data["hint"]

    # recording is best effort: any command that runs stacks still works, with one warning and no password
    planned = cli("plan-targets", "acme", check=0)
    assert [t["environment"] for t in json.loads(planned.stdout)] == ["staging", "production"]
    assert planned.stderr.startswith("warning: run history disabled (the run's result is unaffected): ENGINE_HISTORY_URL is not a valid")
    assert not any(s in planned.stdout + planned.stderr for s in secrets)


def test_history_recording_warning_never_shows_the_password(tmp_path, monkeypatch):
    warnings: list[str] = []
    for url, secrets in LEAKY_URLS:
        monkeypatch.setenv("ENGINE_HISTORY_URL", url)
        recorder = history.recorder_from_env(tmp_path, warn=warnings.append)
        recorder.stack_done(result())  # no store: nothing recorded, nothing raised
        assert recorder.store is None
        assert warnings[-1].startswith("warning: run history disabled (the run's result is unaffected): ENGINE_HISTORY_URL is not a valid")
        assert not any(s in warnings[-1] for s in secrets), warnings[-1]

    # a well-formed URL whose server refuses: the driver's error text is shown, the password is not
    url = "postgresql://bob:p%40ss-w0rd@127.0.0.1:1/db?password=0ther-secret"
    store = HistoryStore.from_url(url, tmp_path)
    assert store.where == "postgresql://127.0.0.1:1/db"
    Recorder(store, warn=warnings.append).stack_done(result())
    assert "warning: run history not recorded for acme/staging in postgresql://127.0.0.1:1/db" in warnings[-1]
    assert "OperationalError" in warnings[-1]
    leak = RuntimeError(f"could not connect with {url} (password=p@ss-w0rd, user bob:p%40ss-w0rd@host)")
    shown = store.describe_error(leak)
    assert not any(s in shown for s in ("p%40ss-w0rd", "p@ss-w0rd", "0ther-secret")), shown
    assert shown.startswith("RuntimeError: could not connect with postgresql://bob:***@127.0.0.1:1/db")


def test_each_run_keeps_what_it_changed_by_name_never_a_value(tmp_path):
    from engine.compliance import Finding, RepoCompliance
    from engine.results import ResourceChange

    store = HistoryStore.sqlite(tmp_path / "h.sqlite3")
    recorder = Recorder(store)
    res = result(operation="drift", update=1, same=3)
    res.resources = [ResourceChange("db", "local:Database", "update", diffs=[{"path": "size_gb", "old": "hunter2-old", "new": "hunter2-new"}]),
                     ResourceChange("net", "local:Network", "same")]
    recorder.drift_done(StackDrift(None, res))
    recorder.compliance_done(RepoCompliance("acme-org/app", "acme", [Finding("acme-org/app", "tier", "gold", "silver", "differs from the source of truth")]))
    compliance, drift = store.query()
    assert drift["details"] == {"resources": [{"name": "db", "type": "local:Database", "action": "update", "properties": ["size_gb"]}], "more": 0}
    assert (compliance["customer"], compliance["environment"], compliance["operation"], compliance["status"]) == ("acme", "*", "compliance", "drifted")
    assert compliance["details"]["findings"] == [{"property": "tier", "actual": "gold", "expected": "silver", "reason": "differs from the source of truth"}]
    assert b"hunter2" not in b"".join(p.read_bytes() for p in tmp_path.glob("h.sqlite3*"))
