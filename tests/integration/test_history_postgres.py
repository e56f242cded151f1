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
