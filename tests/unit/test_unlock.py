"""`engine unlock` never clears the lock of a run that is still going (issue 9, item 5)."""

from __future__ import annotations

from engine import locks
from tests.conftest import cli  # noqa: F401 - fixture: a fresh home over a copy of the repository's catalog


def test_unlock_is_refused_while_a_run_holds_the_stack(cli):  # noqa: F811
    with locks.acquire(cli.home / "locks", "acme", "staging", "up"):  # a run is going
        run = cli("unlock", "acme", "--env", "staging", "--yes")
    assert run.code == 1
    assert "stack acme/staging is locked by" in run.stderr and ", up) since" in run.stderr
    assert "not unlocking a stack while a run is going" in run.stderr
    assert not (cli.home / "state" / "acme" / ".pulumi").exists()  # pulumi was never started: nothing was cancelled
    with locks.acquire(cli.home / "locks", "acme", "staging", "up"):
        as_json = cli("unlock", "acme", "--env", "staging", "--yes", "--json")
    assert as_json.code == 1 and as_json.json()["error"] == "StackLockedError"


def test_unlock_of_a_terraform_stack_is_refused_too(tmp_path):
    from tests.conftest import EngineCLI, SMALL_CONFIG, make_catalog, tenant_record

    root = make_catalog(tmp_path / "c", {"tfco": (tenant_record("tfco", 7) + "properties:\n  infrastructure_tools: [terraform]\n",
                                                  SMALL_CONFIG.format(name="tf-app"))})
    tf = EngineCLI(tmp_path / "home", root)
    with locks.acquire(tf.home / "locks", "tfco", "staging", "apply"):
        run = tf("unlock", "tfco", "--env", "staging", "--lock-id", "abc-123", "--yes")
    assert run.code == 1 and "not unlocking a stack while a run is going" in run.stderr
