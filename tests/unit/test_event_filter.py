"""Events filtered at the door: an event that asks for nothing ends with exit 0 and one line saying why.

A push that deletes a branch or tag, a push of a tag, a push to a branch other than the default one
and a pull-request action that does not change the code (closed, labeled, locked…) start no run:
``parse_event`` returns ``NothingToDo`` and ``engine event`` prints its reason, reading and writing
nothing.  Tested first with GitHub's own published example payloads
(tests/fixtures/github-payloads/README.md), then with variants of them.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from engine import triggers
from engine.errors import ConfigError, InputError
from engine.events import NothingToDo, RunRequest, load_event, parse_event
from tests.conftest import EngineCLI, make_catalog, tenant_record

PAYLOADS = Path(__file__).resolve().parent.parent / "fixtures" / "github-payloads"
PR_HEAD = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"  # pull request #2's head in GitHub's examples
NEW_BRANCH_HEAD = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"  # `after` of push/with-new-branch
SHA = "0123456789abcdef0123456789abcdef01234567"


def published(path: str) -> dict:
    return json.loads((PAYLOADS / path).read_text())


def event_name(path: str) -> str:
    return path.split("/", 1)[0]


RUNS = [  # (payload, mode, pr, sha)
    ("push/with-new-branch.payload.json", "apply", None, NEW_BRANCH_HEAD),
    ("pull_request/opened.payload.json", "plan", 2, PR_HEAD),
    ("pull_request/synchronize.payload.json", "plan", 2, PR_HEAD),
    ("pull_request/reopened.payload.json", "plan", 2, PR_HEAD),
]
NOTHING = [  # (payload, the reason printed)
    ("push/payload.json", "push deletes refs/tags/simple-tag, so there is no commit to apply"),
    *[(f"pull_request/{action}.payload.json",
       f"pull_request action '{action}' does not change the code to plan (only opened, synchronize and reopened do)")
      for action in ("closed", "labeled", "locked", "ready_for_review")],
]


@pytest.mark.parametrize(("path", "mode", "pr", "sha"), RUNS, ids=[r[0] for r in RUNS])
def test_published_payloads_that_ask_for_a_run_become_a_request_for_the_right_commit(path, mode, pr, sha):
    request = load_event(event_name(path), PAYLOADS / path, customer="acme")
    assert isinstance(request, RunRequest)
    assert (request.customer, request.sha, request.pr, request.mode) == ("acme", sha, pr, mode)
    assert (request.feedback_repository, request.sender) == ("Codertocat/Hello-World", "Codertocat")


@pytest.mark.parametrize(("path", "reason"), NOTHING, ids=[n[0] for n in NOTHING])
def test_published_payloads_that_ask_for_nothing_say_why(path, reason):
    skip = load_event(event_name(path), PAYLOADS / path, customer="acme")
    assert skip == NothingToDo(event_name(path), reason)
    assert skip.to_dict() == {"ok": True, "event": event_name(path), "skipped": reason}


def test_the_published_dispatch_examples_are_not_infra_changes():
    with pytest.raises(InputError) as err:
        load_event("repository_dispatch", PAYLOADS / "repository_dispatch/payload.json")
    assert err.value.message == "repository_dispatch type 'on-demand-test' is not 'infra-change'"
    with pytest.raises(ConfigError) as err:
        load_event("workflow_dispatch", PAYLOADS / "workflow_dispatch/payload.json")
    assert [(p.key_path, p.reason) for p in err.value.problems] == [
        ("inputs.customer", "required key is missing"),
        ("inputs.name", "unknown key; allowed keys: customer, environment, mode, pr, sha, signature")], err.value.problems


def variant(path: str, **changes) -> dict:
    payload = copy.deepcopy(published(path))
    payload.update(changes)
    return payload


PUSHES = [  # variants of GitHub's own push example
    ("tag-created", dict(ref="refs/tags/v1.2.0", deleted=False, created=True, after=SHA),
     "push of refs/tags/v1.2.0 is not a push to a branch; only branches are applied"),
    ("branch-deleted", dict(ref="refs/heads/feature", deleted=True, after="0" * 40),
     "push deletes refs/heads/feature, so there is no commit to apply"),
    ("after-all-zeros", dict(ref="refs/heads/master", deleted=False, after="0" * 40),
     "push deletes refs/heads/master, so there is no commit to apply"),
    ("other-branch", dict(ref="refs/heads/feature/x", deleted=False, after=SHA),
     "push to feature/x is not a push to the default branch (master); only the default branch is applied"),
]


@pytest.mark.parametrize(("_", "changes", "reason"), PUSHES, ids=[p[0] for p in PUSHES])
def test_pushes_that_deploy_nothing(_, changes, reason):
    assert parse_event("push", variant("push/with-new-branch.payload.json", **changes), customer="acme") == NothingToDo("push", reason)


def test_a_push_to_the_default_branch_is_an_apply_of_its_head():
    request = parse_event("push", variant("push/with-new-branch.payload.json", created=False, after=SHA), customer="acme")
    assert isinstance(request, RunRequest) and (request.sha, request.mode) == (SHA, "apply")


def test_what_asks_for_nothing_needs_no_customer():
    """Filtered at the door: a deleted tag says so even when the workflow passes no --customer."""
    assert isinstance(parse_event("push", published("push/payload.json")), NothingToDo)
    assert isinstance(parse_event("pull_request", published("pull_request/closed.payload.json")), NothingToDo)
    with pytest.raises(InputError, match="needs --customer"):
        parse_event("pull_request", published("pull_request/opened.payload.json"))


def test_event_text_in_a_reason_is_escaped():
    ref = "refs/heads/x\x1b[2J\n::error::owned"
    skip = parse_event("push", variant("push/payload.json", ref=ref), customer="acme")
    assert skip.reason == "push deletes refs/heads/x\\x1b[2J\\n::error::owned, so there is no commit to apply"
    action = "label\u202eed\r##[error]" + "x" * 200
    skip = parse_event("pull_request", variant("pull_request/labeled.payload.json", action=action), customer="acme")
    assert "\u202e" not in skip.reason and "\r" not in skip.reason and "##[" not in skip.reason
    assert skip.reason == ("pull_request action 'label\\u202eed\\r#\\x23[error]" + "x" * 22 + "…' does not change the code to plan"
                           " (only opened, synchronize and reopened do)")  # at most 40 characters of it


@pytest.mark.parametrize(("event", "changes", "message"), [
    ("push", dict(deleted="yes"), "event: deleted is not true or false"),
    ("push", dict(ref=["refs/heads/main"]), "event: ref is not a Git ref (refs/…)"),
    ("push", dict(ref="main"), "event: ref is not a Git ref (refs/…)"),
    ("pull_request", dict(action={"closed": True}), "event: action is not a string"),
], ids=["deleted", "ref-type", "ref-shape", "action"])
def test_malformed_filter_fields_are_bad_input(event, changes, message):
    path = "push/payload.json" if event == "push" else "pull_request/opened.payload.json"
    with pytest.raises(InputError) as err:
        parse_event(event, variant(path, **changes), customer="acme")
    assert err.value.message == message and err.value.exit_code == 2


def test_dispatches_are_never_filtered():
    """A dispatch asks for what it says (and is signed for it): no field of GitHub's envelope turns it into nothing."""
    event = variant("repository_dispatch/payload.json", action="infra-change", deleted=True,
                    client_payload={"customer": "acme", "sha": SHA, "ref": "refs/heads/main", "mode": "apply"})
    assert isinstance(parse_event("repository_dispatch", event), RunRequest)


# -- a manual dispatch with an empty sha: the head of the default branch --------------------------


class Heads:
    """The one GitHub read ``resolve_commit`` makes."""

    def __init__(self):
        self.reads: list[str] = []

    def default_branch_head(self, repository: str) -> tuple[str, str]:
        self.reads.append(repository)
        return "main", SHA


@pytest.mark.parametrize("mode", ["plan", "apply"])
def test_a_manual_dispatch_without_a_sha_runs_the_default_branch_head(mode):
    from engine.config import TenantRecord

    record = TenantRecord.model_validate({"customer": "acme", "repository": "acme-org/app", "network_index": 1})
    request = parse_event("workflow_dispatch", {"inputs": {"customer": "acme", "sha": "", "mode": mode}})
    assert request.sha is None
    triggers.check_request(request)  # an apply without a sha is no longer refused for a manual dispatch
    api = Heads()
    resolved = triggers.resolve_commit(request, record, api)  # type: ignore[arg-type] - the one method it calls
    assert (resolved.sha, resolved.mode, api.reads) == (SHA, mode, ["acme-org/app"])
    given = parse_event("workflow_dispatch", {"inputs": {"customer": "acme", "sha": "f" * 40, "mode": mode}})
    assert triggers.resolve_commit(given, record, api).sha == "f" * 40 and api.reads == ["acme-org/app"]  # no read


def test_only_a_manual_dispatch_may_leave_the_commit_out():
    with pytest.raises(InputError, match=r"apply needs the commit to deploy \(sha\)"):
        triggers.check_request(RunRequest("repository_dispatch", "acme", None, None, "apply"))
    with pytest.raises(InputError, match=r"pull request #5 needs the commit \(sha\) it is about"):
        triggers.check_request(RunRequest("workflow_dispatch", "acme", None, 5, "plan"))


# -- through the CLI: exit 0, one line, nothing read or written ---------------------------------


@pytest.fixture
def offline(tmp_path) -> EngineCLI:
    """An engine with no GitHub credentials and no GitHub at all: a filtered event needs neither."""
    root = make_catalog(tmp_path / "catalog", {"acme": (tenant_record("acme", 1), None)})
    cli = EngineCLI(tmp_path / "home", root)
    env = {k: v for k, v in cli.env().items() if not k.startswith(("GITHUB_", "ENGINE_GITHUB_"))}
    env["GITHUB_API_URL"] = "http://127.0.0.1:9"  # nothing listens: any GitHub call would fail the run
    cli.env = lambda: env  # type: ignore[method-assign]
    return cli


@pytest.mark.parametrize(("path", "reason"), NOTHING, ids=[n[0] for n in NOTHING])
def test_engine_event_says_nothing_to_do_in_one_line_and_exits_0(offline, path, reason):
    run = offline("event", event_name(path), str(PAYLOADS / path), "--customer", "acme", "--mode", "apply")
    assert run.code == 0, run.stdout + run.stderr
    assert run.stdout.splitlines() == [f"nothing to do: {reason}"] and run.stderr == ""
    as_json = offline("event", event_name(path), str(PAYLOADS / path), "--customer", "acme", "--json", check=0)
    assert json.loads(as_json.stdout) == {"ok": True, "event": event_name(path), "skipped": reason}
    assert not (offline.home / "state").exists() and not (offline.home / "local-cloud").exists()


def test_a_payload_written_by_hand_may_leave_out_what_github_always_sends():
    """`ref`, `deleted` and `action` are checked when present; a payload written for a local try may omit them."""
    push = parse_event("push", {"after": SHA, "repository": {"full_name": "provider/manager"}}, customer="acme")
    pull = parse_event("pull_request", {"pull_request": {"number": 3, "head": {"sha": SHA}}, "repository": {"full_name": "p/m"}},
                       customer="acme")
    assert (push.mode, push.sha, pull.mode, pull.pr) == ("apply", SHA, "plan", 3)
