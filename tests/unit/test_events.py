"""GitHub events → run requests: everything in an event is untrusted."""

from __future__ import annotations

import json
import os

import pytest

from engine.errors import InputError
from engine.events import load_event, parse_event

SHA = "0123456789abcdef0123456789abcdef01234567"


def dispatch(**client_payload) -> dict:
    return {"action": "infra-change", "client_payload": client_payload, "repository": {"full_name": "provider/manager"}}


def test_repository_dispatch_plan_and_apply():
    req = parse_event("repository_dispatch", dispatch(customer="acme", sha=SHA, pr=7, mode="plan"))
    assert (req.customer, req.sha, req.pr, req.mode, req.operation) == ("acme", SHA, 7, "plan", "preview")
    req = parse_event("repository_dispatch", dispatch(customer="acme", sha=SHA, ref="refs/heads/main", mode="apply", environment="staging"))
    assert (req.mode, req.operation, req.environments, req.feedback_repository) == ("apply", "up", ("staging",), None)


def test_workflow_dispatch_inputs_are_strings():
    req = parse_event("workflow_dispatch", {"inputs": {"customer": "acme", "sha": SHA, "pr": "12", "environment": "", "mode": "apply"}})
    assert (req.pr, req.mode, req.environments) == (12, "apply", ())


def test_manager_pull_request_reports_to_the_manager_repository():
    payload = {"pull_request": {"number": 3, "head": {"sha": SHA}}, "repository": {"full_name": "provider/manager"}}
    req = parse_event("pull_request", payload, customer="acme")
    assert (req.pr, req.sha, req.mode, req.feedback_repository) == (3, SHA, "plan", "provider/manager")


HOSTILE = [
    ("shell", dispatch(customer="acme; rm -rf /", sha=SHA), "client_payload.customer"),
    ("subshell", dispatch(customer="$(curl evil)", sha=SHA), "client_payload.customer"),
    ("traversal", dispatch(customer="../beta", sha=SHA), "client_payload.customer"),
    ("sha-injection", dispatch(customer="acme", sha=SHA[:39] + "`"), "client_payload.sha"),
    ("ref-injection", dispatch(customer="acme", sha=SHA, ref="refs/heads/x;$(id)"), "client_payload.ref"),
    ("env-traversal", dispatch(customer="acme", sha=SHA, environment="../../etc"), "client_payload.environment"),
    ("extra-key", dispatch(customer="acme", sha=SHA, repository="attacker/repo"), "client_payload.repository"),
    ("pr-string", dispatch(customer="acme", sha=SHA, pr="7; id"), "client_payload.pr"),
    ("mode", dispatch(customer="acme", sha=SHA, mode="destroy"), "client_payload.mode"),
    ("newline", dispatch(customer="acme\nbeta", sha=SHA), "client_payload.customer"),
]


@pytest.mark.parametrize("case", HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_payloads_are_rejected_naming_the_key(case):
    _, payload, key = case
    with pytest.raises(InputError) as err:
        parse_event("repository_dispatch", payload, "event.json")
    assert err.value.exit_code == 2
    assert key in str(err.value)
    assert "curl evil" not in str(err.value) or "'$(curl evil)'" in str(err.value)  # shown only quoted, as data


def test_wrong_dispatch_type_and_unsupported_events():
    with pytest.raises(InputError, match="is not 'infra-change'"):
        parse_event("repository_dispatch", {"action": "deploy-everything", "client_payload": {}})
    with pytest.raises(InputError, match="does not start a deployment") as err:
        parse_event("schedule", {})
    assert "engine drift" in err.value.hint
    with pytest.raises(InputError, match="needs --customer"):
        parse_event("push", {"after": SHA, "repository": {"full_name": "p/m"}})


def test_oversized_and_malformed_payload_files(tmp_path):
    big = tmp_path / "big.json"
    big.write_text(json.dumps(dispatch(customer="acme", sha=SHA, junk="x" * (1024 * 1024))))
    with pytest.raises(InputError, match="the limit is"):
        load_event("repository_dispatch", big)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        load_event("repository_dispatch", bad)


def test_deeply_nested_payload_is_bad_input_not_a_crash(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000)
    with pytest.raises(InputError, match="nests arrays or objects too deeply") as err:
        load_event("repository_dispatch", deep)
    assert err.value.exit_code == 2


def test_only_regular_files_are_read_as_payloads(tmp_path):
    with pytest.raises(InputError, match="/dev/zero is not a regular file"):  # its size reports 0: it used to be read forever
        load_event("repository_dispatch", "/dev/zero")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # no writer: opening it must not block
    with pytest.raises(InputError, match="is not a regular file"):
        load_event("repository_dispatch", fifo)
    with pytest.raises(InputError, match="cannot read the event payload .*missing.json: No such file"):
        load_event("repository_dispatch", tmp_path / "missing.json")


def test_payload_size_is_measured_by_reading_not_by_what_the_file_reports(monkeypatch):
    """/proc files are regular files that report size 0 whatever they hold: the limit must still hold."""
    monkeypatch.setattr("engine.events.MAX_EVENT_BYTES", 64)
    with pytest.raises(InputError, match="/proc/self/maps is too large: the limit is 64 bytes"):
        load_event("repository_dispatch", "/proc/self/maps")


def test_validation_errors_keep_the_case_of_patterns():
    with pytest.raises(InputError) as err:
        parse_event("repository_dispatch", dispatch(customer="acme", sha=SHA, ref="refs/heads/a b"), "event.json")
    assert "it must match the pattern ^refs/(heads|tags|pull)/[A-Za-z0-9._/-]{1,200}$" in str(err.value)
