"""Run history on a real PostgreSQL server: the store contract, and `engine up` + `engine history` with ENGINE_HISTORY_URL."""

from __future__ import annotations

import pytest

from tests.conftest import SMALL_CONFIG, EngineCLI, make_catalog, tenant_record
from tests.postgres import postgres_server, postgres_url  # noqa: F401 - fixtures
from tests.unit.test_history import StoreContract


class TestPostgresStore(StoreContract):
    @pytest.fixture
    def url(self, postgres_url) -> str:  # noqa: F811 - the fixture, by name
        return postgres_url


def test_engine_up_records_each_environment_in_postgres(tmp_path, postgres_url, monkeypatch):  # noqa: F811
    monkeypatch.setenv("ENGINE_HISTORY_URL", postgres_url)
    monkeypatch.delenv("GITHUB_ACTOR", raising=False)
    root = make_catalog(tmp_path / "catalog", {"hist": (tenant_record("hist", 7), SMALL_CONFIG.format(name="hist-app"))})
    cli = EngineCLI(tmp_path / "home", root)

    up = cli("up", "hist", "--json", check=0).json()["environments"]
    again = cli("up", "hist", "--env", "staging", "--json", check=0).json()["environments"]
    assert again["staging"]["changes"]["create"] == 0

    runs = cli("history", "--json", check=0).json()
    assert runs["history"].startswith("postgresql://127.0.0.1:")
    got = [(r["customer"], r["environment"], r["operation"], r["status"], r["changes"]) for r in runs["runs"]]
    assert got == [
        ("hist", "staging", "up", "succeeded", again["staging"]["changes"]),
        ("hist", "production", "up", "succeeded", up["production"]["changes"]),
        ("hist", "staging", "up", "succeeded", up["staging"]["changes"]),
    ]
    assert up["staging"]["changes"]["create"] > 0 and up["production"]["changes"]["create"] > 0
    assert all(r["tool"] == "pulumi" and r["actor"] and r["duration_s"] > 0 for r in runs["runs"])
    assert not (cli.home / "history.sqlite3").exists()  # the URL switched the store

    production = cli("history", "hist", "--env", "production", check=0).stdout.splitlines()
    assert len(production) == 2 and "hist/production" in production[1] and f"+{up['production']['changes']['create']} ~0 -0" in production[1]

    # the history write never changes the result: an unreachable server is a warning, the deploy still succeeds
    monkeypatch.setenv("ENGINE_HISTORY_URL", "postgresql://postgres@127.0.0.1:1/none")
    run = cli("up", "hist", "--env", "staging", "--json", check=0)
    assert run.json()["ok"] is True and "warning: run history not recorded for hist/staging" in run.stderr


def test_history_database_password_never_leaks_with_a_real_server(tmp_path, postgres_server, postgres_url, monkeypatch):  # noqa: F811
    monkeypatch.delenv("GITHUB_ACTOR", raising=False)
    root = make_catalog(tmp_path / "catalog", {"hist": (tenant_record("hist", 7), SMALL_CONFIG.format(name="hist-app"))})
    cli = EngineCLI(tmp_path / "home", root)
    port = postgres_server.port
    database = postgres_url.rsplit("/", 1)[1]

    # a malformed URL: the deploy goes on with one warning; `engine history` is a configuration error (exit 2)
    monkeypatch.setenv("ENGINE_HISTORY_URL", f"postgresql://postgres:pw%@127.0.0.1:{port}/{database}")
    up = cli("up", "hist", "--env", "staging", "--json", check=0)
    assert up.json()["ok"] is True
    assert "warning: run history disabled (the run's result is unaffected): ENGINE_HISTORY_URL is not a valid PostgreSQL URL" in up.stderr
    for args in (["history"], ["history", "--json"]):
        run = cli(*args)
        assert run.code == 2 and "ENGINE_HISTORY_URL is not a valid PostgreSQL URL" in run.stdout + run.stderr
        assert "pw%" not in run.stdout + run.stderr and "internal error" not in run.stdout + run.stderr

    # the server refuses (no such database): the driver's error is shown, neither password is
    monkeypatch.setenv("ENGINE_HISTORY_URL", f"postgresql://postgres:s3cr%40t-pw@127.0.0.1:{port}/missing_db?password=0ther-pw")
    preview = cli("preview", "hist", "--env", "staging", check=0)
    missing = cli("history", "--json")
    for shown in (preview.stderr, missing.json()["message"] + missing.stderr):
        assert 'database "missing_db" does not exist' in shown, shown
        assert not any(s in shown for s in ("s3cr%40t-pw", "s3cr@t-pw", "0ther-pw")), shown
    assert not any(s in missing.stdout for s in ("s3cr%40t-pw", "s3cr@t-pw", "0ther-pw"))
    assert missing.code == 1 and missing.json()["message"].startswith(f"cannot read the run history in postgresql://127.0.0.1:{port}/missing_db")

    # with a password in a working URL (trust auth ignores it), rows are recorded and `history` names the store without it
    monkeypatch.setenv("ENGINE_HISTORY_URL", f"postgresql://postgres:s3cr%40t-pw@127.0.0.1:{port}/{database}")
    cli("preview", "hist", "--env", "staging", check=0)
    runs = cli("history", "--json", check=0)
    assert runs.json()["history"] == f"postgresql://127.0.0.1:{port}/{database}" and "s3cr" not in runs.stdout
    assert [(r["environment"], r["operation"]) for r in runs.json()["runs"]] == [("staging", "preview")]
