"""Dispatch authentication: a dispatch for customer X runs only when it proves it comes from X's repository.

A dispatch is signed with HMAC-SHA256 and X's own dispatch secret over every field that decides what
runs; a pull request it names must be an open pull request of X's repository whose head is the
dispatched commit.  Refusals are exit 2, one line, and nothing is written to GitHub.  The CLI tests
here stop before any tool runs, so they need no tool binary: the GitHub side is the local
schema-checking server.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import triggers
from engine.config import TenantRecord
from engine.errors import ConfigError, InputError
from engine.events import dispatch_message, parse_event, sign_dispatch
from tests.conftest import REPO, SMALL_CONFIG, EngineCLI, make_catalog, tenant_record
from tests.fakegithub.fixture import github_server  # noqa: F401 - pytest fixture

SHA = "1111111111111111111111111111111111111111"
SHA2 = "2222222222222222222222222222222222222222"
ACME_SECRET = "acme-dispatch-secret-0123456789abcdef"
BETA_SECRET = "beta-dispatch-secret-0123456789abcdef"
SECRETS = {"ENGINE_DISPATCH_SECRETS": json.dumps({"acme": ACME_SECRET, "beta": BETA_SECRET})}
NOW = 1_760_000_000


def record(**extra) -> TenantRecord:
    return TenantRecord.model_validate({"customer": "acme", "repository": "acme-org/app", "network_index": 1, **extra})


def signed(secret: str = ACME_SECRET, timestamp: int = NOW, sender: str = "acme-bot", **payload) -> dict:
    """A repository_dispatch event as GitHub delivers it, signed like the customer template signs it."""
    fields = {"customer": "acme", "sha": SHA, "ref": None, "pr": None, "mode": "plan", "environment": None}
    fields.update({k: v for k, v in payload.items() if k in fields})
    client_payload = {k: v for k, v in {**fields, **payload}.items() if v is not None}
    client_payload["signature"] = sign_dispatch(secret, timestamp=timestamp, **fields)
    return {"action": "infra-change", "client_payload": client_payload, "sender": {"login": sender}}


def authenticate(event: dict, name: str = "repository_dispatch", rec: TenantRecord | None = None, env=SECRETS, now=NOW + 60):
    request = parse_event(name, event, "event.json")
    triggers.authenticate(request, rec or record(), env, now=now)
    return request


# -- the signature ------------------------------------------------------------------------


def test_a_dispatch_signed_with_the_customers_secret_is_accepted():
    request = authenticate(signed(pr=7, ref="refs/pull/7/merge"))
    assert (request.customer, request.sha, request.pr) == ("acme", SHA, 7)
    inputs = {"customer": "acme", "sha": SHA, "pr": "12", "environment": "staging", "mode": "apply"}
    inputs["signature"] = sign_dispatch(ACME_SECRET, timestamp=NOW, customer="acme", sha=SHA, ref=None, pr=12, mode="apply",
                                        environment="staging")
    assert authenticate({"inputs": inputs}, "workflow_dispatch").environments == ("staging",)


def test_an_unsigned_dispatch_is_refused_naming_the_missing_key():
    event = signed()
    del event["client_payload"]["signature"]
    with pytest.raises(InputError, match=r"dispatch for customer 'acme' refused: it is not signed \(client_payload.signature is missing") as err:
        authenticate(event)
    assert err.value.exit_code == 2 and "\n" not in err.value.message and err.value.hint is None
    with pytest.raises(InputError, match=r"inputs.signature is missing"):
        authenticate({"inputs": {"customer": "acme", "sha": SHA, "mode": "plan"}}, "workflow_dispatch")


def test_another_customers_secret_cannot_start_runs_for_acme():
    with pytest.raises(InputError, match="client_payload.signature does not match") as err:
        authenticate(signed(secret=BETA_SECRET))
    assert BETA_SECRET not in str(err.value) and ACME_SECRET not in str(err.value)


SIGNED_FIELDS = [("sha", SHA2), ("pr", 8), ("mode", "apply"), ("environment", "production"), ("ref", "refs/heads/other"),
                 ("customer", "beta")]


@pytest.mark.parametrize(("key", "value"), SIGNED_FIELDS, ids=[f[0] for f in SIGNED_FIELDS])
def test_a_captured_signature_cannot_be_replayed_with_any_field_changed(key, value):
    event = signed(pr=7, ref="refs/heads/main", environment="staging")
    event["client_payload"][key] = value
    rec = record(customer=value) if key == "customer" else None
    with pytest.raises(InputError, match="does not match"):
        authenticate(event, rec=rec)


def test_the_signing_time_is_part_of_the_signature_and_bounded():
    event = signed(timestamp=NOW)
    event["client_payload"]["signature"] = event["client_payload"]["signature"].replace(f"t={NOW}", f"t={NOW + 3600}")
    with pytest.raises(InputError, match="does not match"):
        authenticate(event)
    with pytest.raises(InputError, match="signed 31 days ago; signatures are accepted for 30 days"):
        authenticate(signed(timestamp=NOW), now=NOW + 31 * 86400)
    with pytest.raises(InputError, match="signed 3600 seconds in the future"):
        authenticate(signed(timestamp=NOW + 3600), now=NOW)
    authenticate(signed(timestamp=NOW), now=NOW + 29 * 86400)  # an approval that waited four weeks still runs


def test_the_signature_is_compared_in_constant_time(monkeypatch):
    calls = []
    real = triggers.hmac.compare_digest
    monkeypatch.setattr(triggers.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    authenticate(signed())
    assert len(calls) == 1


@pytest.mark.parametrize(("env", "reason"), [
    ({}, "ENGINE_DISPATCH_SECRETS is not set"),
    ({"ENGINE_DISPATCH_SECRETS": "{not json " + ACME_SECRET}, "ENGINE_DISPATCH_SECRETS is not a JSON object"),
    ({"ENGINE_DISPATCH_SECRETS": json.dumps([ACME_SECRET])}, "ENGINE_DISPATCH_SECRETS is not a JSON object"),
    ({"ENGINE_DISPATCH_SECRETS": json.dumps({"beta": BETA_SECRET})}, "ENGINE_DISPATCH_SECRETS has no entry for 'acme'"),
    ({"ENGINE_DISPATCH_SECRETS": json.dumps({"acme": "short"})}, r"not a string \(or a list of strings\) of at least 32 characters"),
    ({"ENGINE_DISPATCH_SECRETS": json.dumps({"acme": [ACME_SECRET, "short"]})}, "of at least 32 characters"),
], ids=["unset", "not-json", "not-an-object", "no-entry", "weak", "weak-in-rotation"])
def test_a_missing_or_bad_secrets_table_refuses_every_dispatch_without_showing_it(env, reason):
    with pytest.raises(InputError, match=reason) as err:
        authenticate(signed(), env=env)
    assert err.value.exit_code == 2 and ACME_SECRET not in err.value.message and BETA_SECRET not in err.value.message


def test_during_a_rotation_the_new_and_the_old_secret_are_both_accepted():
    new = "acme-new-dispatch-secret-0123456789abcdef"
    rotating = {"ENGINE_DISPATCH_SECRETS": json.dumps({"acme": [new, ACME_SECRET]})}
    authenticate(signed(secret=new), env=rotating)
    authenticate(signed(secret=ACME_SECRET), env=rotating)
    with pytest.raises(InputError, match="does not match"):
        authenticate(signed(secret=BETA_SECRET), env=rotating)


def test_allowed_senders_still_restricts_a_correctly_signed_dispatch():
    rec = record(allowed_senders=["acme-bot"])
    authenticate(signed(sender="acme-bot"), rec=rec)
    with pytest.raises(InputError, match="mallory may not trigger runs for customer 'acme'"):
        authenticate(signed(sender="mallory"), rec=rec)


def test_the_opt_out_for_a_provider_relay_needs_allowed_senders():
    with pytest.raises(Exception, match="needs allowed_senders"):
        record(dispatch_auth="allowed_senders")
    relay = record(dispatch_auth="allowed_senders", allowed_senders=["provider-relay[bot]"])
    unsigned = signed(sender="provider-relay[bot]")
    del unsigned["client_payload"]["signature"]
    authenticate(unsigned, rec=relay, env={})
    unsigned["sender"]["login"] = "mallory"
    with pytest.raises(InputError, match="mallory may not trigger"):
        authenticate(unsigned, rec=relay, env={})


def test_a_malformed_signature_is_bad_input_naming_the_key():
    event = signed()
    event["client_payload"]["signature"] = "sha256=deadbeef"
    with pytest.raises(ConfigError, match=r"client_payload.signature: 'sha256=deadbeef' is not allowed here: expected 't=<unix time>,v1=<64 hex digits>'"):
        parse_event("repository_dispatch", event, "event.json")


def test_the_signed_text_is_one_line_per_field():
    text = dispatch_message(customer="acme", sha=SHA, ref=None, pr=7, mode="plan", environment=None, timestamp=NOW).decode()
    assert text == f"infra-change.v1\nt={NOW}\ncustomer=acme\nsha={SHA}\nref=\npr=7\nmode=plan\nenvironment=\n"


def test_the_operator_signing_script_matches_the_engine():
    proc = subprocess.run([sys.executable, str(REPO / ".github/scripts/sign_dispatch.py"), "--customer", "acme", "--sha", SHA,
                           "--pr", "7", "--mode", "apply", "--environment", "staging", "--timestamp", str(NOW)],
                          capture_output=True, text=True, env={"DISPATCH_SECRET": ACME_SECRET, "PATH": "/usr/bin:/bin"},
                          stdin=subprocess.DEVNULL, timeout=60)
    assert proc.returncode == 0, proc.stderr
    inputs = {"customer": "acme", "sha": SHA, "pr": "7", "environment": "staging", "mode": "apply", "signature": proc.stdout.strip()}
    authenticate({"inputs": inputs}, "workflow_dispatch")
    assert ACME_SECRET not in proc.stdout + proc.stderr


# -- manager-repository events ------------------------------------------------------------


def test_manager_events_report_only_to_the_repository_the_run_belongs_to():
    payload = {"pull_request": {"number": 3, "head": {"sha": SHA, "repo": {"full_name": "mallory/fork"}}},
               "repository": {"full_name": "provider/manager"}}
    request = parse_event("pull_request", payload, customer="acme")
    assert triggers.feedback_repository(request, {"GITHUB_REPOSITORY": "provider/manager"}) == "provider/manager"
    forged = parse_event("pull_request", {**payload, "repository": {"full_name": "victim/other"}}, customer="acme")
    with pytest.raises(InputError, match="the pull_request event is for victim/other, but this run belongs to provider/manager"):
        triggers.feedback_repository(forged, {"GITHUB_REPOSITORY": "provider/manager"})
    triggers.authenticate(request, record(), {})  # GitHub's own event in the manager repository: nothing to sign


# -- through the CLI: one line, exit 2, nothing written to GitHub -------------------------


@pytest.fixture
def gh(tmp_path, github_server):  # noqa: F811
    records = {"acme": (tenant_record("acme", 1).replace("source: customers/acme\n", ""), None),
               "beta": (tenant_record("beta", 2).replace("source: customers/beta\n", ""), None)}
    root = make_catalog(tmp_path / "catalog", records)
    github_server.add_repo("acme-org", "app")
    github_server.set_ref("acme-org", "app", "main", SHA)
    github_server.put_file("acme-org", "app", SHA, "infra/variables.yml", SMALL_CONFIG.format(name="acme-app"))
    cli = EngineCLI(tmp_path / "home", root)
    env = cli.env()
    env.update({"GITHUB_API_URL": github_server.url, "GITHUB_TOKEN": "test-token", "GITHUB_REPOSITORY": "provider/manager",
                "GITHUB_RUN_ID": "1", "ENGINE_GITHUB_TIMEOUT": "2", "ENGINE_GITHUB_MAX_RETRY_WAIT": "1", **SECRETS})
    cli.env = lambda: env  # type: ignore[method-assign]
    return cli, github_server, tmp_path


def write(tmp_path: Path, event: dict, name: str = "event.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(event))
    return str(path)


def refused(run, server, reason: str) -> None:
    assert run.code == 2, run.stdout + run.stderr
    assert run.stderr.splitlines() == [f"error: {reason}"], run.stderr
    assert server.writes() == []
    assert ACME_SECRET not in run.stdout + run.stderr


def test_unsigned_or_wrongly_signed_dispatches_are_refused_before_any_github_call(gh):
    cli, server, tmp = gh
    unsigned = signed(timestamp=int(time.time()))
    del unsigned["client_payload"]["signature"]
    run = cli("event", "repository_dispatch", write(tmp, unsigned, "unsigned.json"))
    refused(run, server, "dispatch for customer 'acme' refused: it is not signed (client_payload.signature is missing;"
                         " docs/SETUP.md, dispatch authentication)")
    run = cli("event", "repository_dispatch", write(tmp, signed(secret=BETA_SECRET, timestamp=int(time.time())), "beta.json"))
    refused(run, server, "dispatch for customer 'acme' refused: client_payload.signature does not match"
                         " (signed with another secret, or the payload was changed after signing)")
    assert server.requests == []  # not even a read: the refusal needs nothing from GitHub


PULLS = [
    ("missing", None, "acme-org/app has no pull request #5"),
    ("closed", dict(head_sha=SHA, state="closed"), "pull request #5 of acme-org/app is closed, not open"),
    ("other-head", dict(head_sha=SHA2), f"the head of pull request #5 of acme-org/app is {SHA2[:12]}, not the dispatched commit {SHA[:12]}"),
]


@pytest.mark.parametrize(("_", "pull", "reason"), PULLS, ids=[p[0] for p in PULLS])
def test_a_dispatch_can_only_comment_on_an_open_pull_request_whose_head_is_its_commit(gh, _, pull, reason):
    cli, server, tmp = gh
    if pull is not None:
        server.add_pull("acme-org", "app", 5, **pull)
    server.add_issue("acme-org", "app", "an unrelated issue", number=6)
    run = cli("event", "repository_dispatch", write(tmp, signed(pr=5, timestamp=int(time.time()))))
    refused(run, server, f"dispatch for customer 'acme' refused: {reason}")
    run = cli("event", "repository_dispatch", write(tmp, signed(pr=6, timestamp=int(time.time())), "issue.json"))
    refused(run, server, "dispatch for customer 'acme' refused: acme-org/app has no pull request #6")


def test_a_pull_request_without_its_commit_is_refused(gh):
    cli, server, tmp = gh
    inputs = {"customer": "acme", "pr": "5", "mode": "plan"}
    inputs["signature"] = sign_dispatch(ACME_SECRET, timestamp=int(time.time()), customer="acme", sha=None, ref=None, pr=5,
                                        mode="plan", environment=None)
    run = cli("event", "workflow_dispatch", write(tmp, {"inputs": inputs}))
    refused(run, server, "pull request #5 needs the commit (sha) it is about")


def test_refused_github_credentials_are_reported_without_the_token(gh):
    cli, server, tmp = gh
    cli.env()["GITHUB_TOKEN"] = "not-a-real-token-refused-by-the-server"
    run = cli("event", "repository_dispatch", write(tmp, signed(timestamp=int(time.time()))))
    assert run.code == 1, run.stdout + run.stderr
    lines = run.stderr.splitlines()
    assert lines[0].startswith("error: GitHub refused the engine's credentials (401: Bad credentials) on GET /repos/acme-org/app/"), lines
    assert lines[1].startswith("hint: check ENGINE_GITHUB_TOKEN / GITHUB_TOKEN") and len(lines) == 2
    assert "not-a-real-token" not in run.stdout + run.stderr and "internal error" not in run.stderr and "Traceback" not in run.stderr
    assert server.writes() == []
