"""Slack and Teams notifications (engine/notify, engine/reporters/notify.py) against local servers that refuse what
Slack or Teams would refuse (tests/fakenotify: Block Kit, the Adaptive Card 1.5 schema) and inject faults.

The engine runs as a user runs it (`engine up`, `engine drift`, `engine compliance`), with a fake runner at the tool
seam; the messages go over real HTTP through slack_sdk and httpx.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from engine import wiring
from engine.notify import delivery
from engine.notify.delivery import Destination
from engine.notify.message import Context, message_for
from engine.reporters import notify as notify_reporter
from engine.reporters.notify import slack_payload, teams_payload
from engine.results import SECRET_MASK, Changes, ResourceChange, StackResult
from engine.stream import DriftOpened, StackDone, StackStarted
from tests.conftest import SMALL_CONFIG, EngineCLI, make_catalog, tenant_record
from tests.fakenotify.fixture import chat_server  # noqa: F401 - pytest fixture
from tests.fakenotify.server import BOT_TOKEN, FakeChat
from tests.fakerunner import FakeRunner

SHA = "0123456789abcdef0123456789abcdef01234567"


class DriftingRunner(FakeRunner):
    """Deploys like FakeRunner; a drift check finds ``drifted`` environments changed outside the engine."""

    def __init__(self, fail=frozenset(), error: str = "boom", outputs: dict | None = None):
        super().__init__(fail=fail)
        self.drifted: set[str] = set()
        self.error = error
        self.outputs = outputs or {}

    stream = None  # the engine's event stream (set when the wiring builds the runner): real runners publish StackStarted

    def run(self, target, operation):
        self.calls.append((target.environment, str(operation)))
        if self.stream is not None and str(operation) != "drift":
            self.stream.publish(StackStarted(target, operation))
        if str(operation) == "drift":
            if target.environment in self.drifted:
                change = ResourceChange("acme-web-0", "local:index:Instance", "update", ["size"],
                                        diffs=[{"path": "size", "old": "t3.micro", "new": "t3.large"}])
                return StackResult.for_target(target, operation, "succeeded", changes=Changes(update=1, same=4), resources=[change])
            return StackResult.for_target(target, operation, "succeeded", changes=Changes(same=5))
        failed = target.environment in self.fail
        return StackResult.for_target(target, operation, "failed" if failed else "succeeded", changes=Changes(create=3, update=1),
                                      error=self.error if failed else None, outputs=self.outputs, duration_s=4.2)


def notifications_yaml(*entries: str) -> str:
    return "notifications:\n" + "".join(entries)


SLACK = "  - channel: slack\n    webhook_env: NOTIFY_SLACK_ACME\n"
TEAMS = "  - channel: teams\n    webhook_env: NOTIFY_TEAMS_ACME\n"


@pytest.fixture
def engine_with_chat(tmp_path, chat_server, monkeypatch):  # noqa: F811
    """(run the engine, the runner, the server): tenant acme (staging, production) notifying a Slack and a Teams channel."""
    runner = DriftingRunner()
    monkeypatch.setitem(wiring.RUNNERS, "pulumi", lambda w: setattr(runner, "stream", w.stream) or runner)
    monkeypatch.setitem(notify_reporter.PACE_S, "slack-webhook", 0.0)
    monkeypatch.setattr(delivery, "BACKOFF_S", 0.05)  # server errors: retried at once (the rate-limit tests wait for real)
    monkeypatch.setitem(notify_reporter.PACE_S, "slack-api", 0.0)
    root = make_catalog(tmp_path / "catalog", {"acme": (tenant_record("acme", 1) + notifications_yaml(SLACK, TEAMS), SMALL_CONFIG.format(name="acme-app"))})
    cli = EngineCLI(tmp_path / "home", root)
    env = {**cli.env(), "NOTIFY_SLACK_ACME": chat_server.slack_webhook(), "NOTIFY_TEAMS_ACME": chat_server.teams_webhook(),
           "GITHUB_REPOSITORY": "provider/manager", "GITHUB_RUN_ID": "4242", "GITHUB_ACTOR": "deploy-bot", "ENGINE_NOTIFY_MAX_WAIT_S": "5"}
    env = {k: v for k, v in env.items() if not k.startswith("GITHUB_TOKEN")}
    cli.env = lambda: env  # type: ignore[method-assign]
    return cli, runner, chat_server


def slack_texts(payload: dict) -> str:
    return json.dumps(payload, ensure_ascii=False)


def facts(card_message: dict) -> dict[str, str]:
    card = card_message["attachments"][0]["content"]
    (fact_set,) = [b for b in card["body"] if b["type"] == "FactSet"]
    return {f["title"]: f["value"] for f in fact_set["facts"]}


# --- deploys ------------------------------------------------------------------------------------------------------

def test_a_deploy_and_a_failure_reach_slack_and_teams_in_shapes_both_accept(engine_with_chat):
    cli, runner, chat = engine_with_chat
    runner.fail = {"production"}
    run = cli("up", "acme")
    assert run.code == 1  # production failed: the deploy's own exit code
    slack, teams = chat.of("slack-webhook"), chat.of("teams")
    assert [m.payload["blocks"][0]["text"]["text"] for m in slack] == ["Deploy succeeded: acme/staging", "Deploy failed: acme/production"]
    ok, failed = (facts(m.payload) for m in teams)
    assert ok == {"Customer": "acme", "Environment": "staging", "Changes": "3 create, 1 update, 0 replace, 0 delete", "Tool": "pulumi", "Duration": "4 s"}
    assert failed["Environment"] == "production"
    # the link to the run, on both services
    link = "https://github.com/provider/manager/actions/runs/4242"
    assert slack[1].payload["blocks"][-1]["elements"][0]["url"] == link
    assert teams[1].payload["attachments"][0]["content"]["actions"][0]["url"] == link
    assert "boom" in slack_texts(slack[1].payload) and "boom" in slack_texts(teams[1].payload)  # the error
    assert "by deploy-bot" in slack_texts(slack[0].payload)
    # one id per message, the same on every attempt of it
    ids = [m.headers["x-engine-notification-id"] for m in slack]
    assert len(set(ids)) == 2


def test_a_deploy_from_a_github_event_carries_its_commit(engine_with_chat, monkeypatch):
    cli, _runner, chat = engine_with_chat
    message = message_for(StackDone(None, StackResult("acme", "staging", "acme/staging", "pulumi", "up", "succeeded")),
                          Context("deploy-bot", None, SHA))
    assert message.commit == SHA
    assert Destination("teams-webhook", "V", chat.teams_webhook()).send(teams_payload(message), message.key).ok
    assert facts(chat.of("teams")[0].payload)["Commit"] == SHA[:12]


def test_only_the_events_and_environments_a_channel_asks_for_are_sent(tmp_path, chat_server, monkeypatch):  # noqa: F811
    runner = DriftingRunner(fail={"production"})
    monkeypatch.setitem(wiring.RUNNERS, "pulumi", lambda w: setattr(runner, "stream", w.stream) or runner)
    entry = "  - channel: slack\n    webhook_env: NOTIFY_SLACK_ACME\n    events: [deploy.started, deploy.failed]\n    environments: [production]\n"
    root = make_catalog(tmp_path / "c", {"acme": (tenant_record("acme", 1) + notifications_yaml(entry), SMALL_CONFIG.format(name="acme-app"))})
    monkeypatch.setenv("NOTIFY_SLACK_ACME", chat_server.slack_webhook())
    EngineCLI(tmp_path / "home", root)("up", "acme", check=1)
    assert [m.payload["blocks"][0]["text"]["text"] for m in chat_server.messages] == [
        "Deploy started: acme/production", "Deploy failed: acme/production"]


def test_a_channel_is_paced_to_one_message_a_second(tmp_path, chat_server, monkeypatch):  # noqa: F811
    """Slack allows about one message a second per webhook: a burst (a three-environment deploy) is spread out."""
    monkeypatch.setitem(wiring.RUNNERS, "pulumi", lambda _w: DriftingRunner())
    root = make_catalog(tmp_path / "c", {"acme": (tenant_record("acme", 1) + notifications_yaml(SLACK), SMALL_CONFIG.format(name="acme-app"))})
    monkeypatch.setenv("NOTIFY_SLACK_ACME", chat_server.slack_webhook())
    EngineCLI(tmp_path / "home", root)("up", "acme", check=0)
    first, second = chat_server.messages
    assert second.at - first.at >= 0.95


# --- drift and compliance -----------------------------------------------------------------------------------------

def test_drift_is_notified_when_it_opens_and_when_it_is_resolved_not_on_every_scan(engine_with_chat):
    cli, runner, chat = engine_with_chat
    runner.drifted = {"production"}
    assert cli("drift", "acme").code == 3
    assert cli("drift", "acme").code == 3  # still drifted: nothing new to say
    runner.drifted = set()
    assert cli("drift", "acme").code == 0
    titles = [m.payload["blocks"][0]["text"]["text"] for m in chat.of("slack-webhook")]
    assert titles == ["Drift detected: acme/production", "Drift resolved: acme/production"]
    detail = "update acme-web-0 (local:index:Instance): size: t3.micro → t3.large"
    assert detail in json.dumps(chat.of("slack-webhook")[0].payload, ensure_ascii=False)  # plain_text: as it is
    opened = chat.of("teams")[0].payload
    assert opened["attachments"][0]["content"]["body"][3]["text"] == detail.replace("(", "\\(").replace(")", "\\)")
    assert [b["text"] for b in opened["attachments"][0]["content"]["body"] if b["type"] == "TextBlock"][0] == "Drift detected: acme/production"


def test_drift_dry_run_prints_the_messages_and_sends_none(engine_with_chat):
    cli, runner, chat = engine_with_chat
    runner.drifted = {"staging"}
    run = cli("drift", "acme", "--dry-run")
    assert run.code == 3
    assert chat.messages == [] and chat.attempts == []
    assert "notification (not sent) to Slack webhook $NOTIFY_SLACK_ACME: drift.opened acme/staging" in run.stderr
    assert "notification (not sent) to Teams webhook $NOTIFY_TEAMS_ACME: drift.opened acme/staging" in run.stderr
    assert '"type": "AdaptiveCard"' in run.stderr and '"blocks": [' in run.stderr
    assert "127.0.0.1" not in run.stderr  # the webhook URLs are secrets: named by their variable only


def test_engine_notify_print_shows_a_deploys_messages_without_sending(engine_with_chat):
    cli, _runner, chat = engine_with_chat
    env = cli.env()
    cli.env = lambda: {**env, "ENGINE_NOTIFY": "print"}  # type: ignore[method-assign]
    run = cli("up", "acme", "--env", "staging", check=0)
    assert chat.attempts == []
    assert run.stderr.count("notification (not sent)") == 2


def test_a_compliance_violation_reaches_the_providers_channel(tmp_path, chat_server, monkeypatch):  # noqa: F811
    from tests.conftest import compliance_catalog
    from tests.fakegithub.server import FakeGitHub

    with FakeGitHub() as github:
        root, cmdb = compliance_catalog(tmp_path, github, ["terraform", "chef"])
        (root / "notifications.yml").write_text("notifications:\n  - channel: slack\n    token_env: NOTIFY_SLACK_BOT\n"
                                                 "    slack_channel: C0PROVIDER1\n    events: [compliance.violation]\n")
        cli = EngineCLI(tmp_path / "home", root)
        env = {**cli.env(), "GITHUB_API_URL": github.url, "GITHUB_TOKEN": "test-token", "NOTIFY_SLACK_BOT": BOT_TOKEN,
               "ENGINE_NOTIFY_SLACK_API_URL": chat_server.slack_api}
        cli.env = lambda: env  # type: ignore[method-assign]
        run = cli("compliance", "--source", str(cmdb))
    assert run.code == 3, run.stdout + run.stderr
    (message,) = chat_server.of("slack-api")
    assert message.payload["channel"] == "C0PROVIDER1"
    assert message.payload["metadata"]["event_payload"]["id"] == message.headers["x-engine-notification-id"]
    text = slack_texts(message.payload)
    assert "beta-org/site" in text and "terraform_version: 1.5 (expected 1.8): differs from the source of truth" in text


# --- faults -------------------------------------------------------------------------------------------------------

def test_a_rate_limit_waits_what_retry_after_asks_then_posts_once(engine_with_chat):
    cli, _runner, chat = engine_with_chat
    chat.inject("slack-webhook", 429, retry_after="1")
    chat.inject("teams", 429, retry_after="1")
    cli("up", "acme", "--env", "staging", check=0)
    for service in ("slack-webhook", "teams"):
        attempts = [(at, status) for s, at, status in chat.attempts if s == service]
        assert [status for _, status in attempts] == [429, 200]
        assert attempts[1][0] - attempts[0][0] >= 1.0  # measured: the wait Retry-After asked for
        assert len(chat.of(service)) == 1


def test_server_errors_are_retried_with_backoff_and_the_message_posted_once(engine_with_chat):
    cli, _runner, chat = engine_with_chat
    chat.inject("slack-webhook", 500, times=2)
    chat.inject("teams", 503)
    cli("up", "acme", "--env", "staging", check=0)
    assert [s for svc, _, s in chat.attempts if svc == "slack-webhook"] == [500, 500, 200]
    assert [s for svc, _, s in chat.attempts if svc == "teams"] == [503, 200]
    assert len(chat.of("slack-webhook")) == 1 and len(chat.of("teams")) == 1


def test_a_message_that_arrived_before_the_connection_dropped_is_not_sent_again(engine_with_chat):
    cli, _runner, chat = engine_with_chat
    chat.inject("slack-webhook", drop=True)
    chat.inject("teams", drop=True)
    run = cli("up", "acme", "--env", "staging", check=0)
    assert len(chat.of("slack-webhook")) == 1 and len(chat.of("teams")) == 1  # arrived once, never twice
    assert [s for _, _, s in chat.attempts] == [None, None]
    assert run.stderr.count("may or may not have been posted; not retried") == 2


def test_a_failing_webhook_never_changes_the_deploys_result(engine_with_chat):
    cli, _runner, chat = engine_with_chat
    chat.inject(None, 500, times=100)
    env = cli.env()
    cli.env = lambda: {**env, "NOTIFY_TEAMS_ACME": "http://127.0.0.1:9/nothing-listens-here"}  # type: ignore[method-assign]
    run = cli("up", "acme", "--json")
    assert run.code == 0
    assert [s["status"] for s in run.json()["environments"].values()] == ["succeeded", "succeeded"]
    assert chat.messages == []
    assert "deploy.succeeded for acme/staging not delivered to Slack webhook $NOTIFY_SLACK_ACME after 4 attempts: HTTP 500" in run.stderr
    assert "not delivered to Teams webhook $NOTIFY_TEAMS_ACME after 4 attempts: connection refused" in run.stderr
    assert "the run's result is unaffected" in run.stderr
    assert "127.0.0.1" not in run.stderr


def test_a_channel_whose_variable_is_not_set_is_a_warning_once(engine_with_chat):
    cli, _runner, chat = engine_with_chat
    env = {k: v for k, v in cli.env().items() if k != "NOTIFY_TEAMS_ACME"}
    cli.env = lambda: env  # type: ignore[method-assign]
    run = cli("up", "acme", check=0)
    assert len(chat.of("slack-webhook")) == 2 and chat.of("teams") == []
    assert run.stderr.count("$NOTIFY_TEAMS_ACME is not set") == 1


def test_a_rate_limit_longer_than_the_engine_waits_is_given_up_at_once(engine_with_chat):
    cli, _runner, chat = engine_with_chat
    chat.inject("slack-webhook", 429, retry_after="3600")
    run = cli("up", "acme", "--env", "staging", check=0)
    assert [s for svc, _, s in chat.attempts if svc == "slack-webhook"] == [429]
    assert "the service asked to wait 3600 s, more than ENGINE_NOTIFY_MAX_WAIT_S (5 s)" in run.stderr


# --- what is never sent -------------------------------------------------------------------------------------------

CANARY = "canary-7c1e5a9b3d"


def test_secrets_never_reach_a_payload_or_a_warning(engine_with_chat):
    cli, runner, chat = engine_with_chat
    slack_url = cli.env()["NOTIFY_SLACK_ACME"]
    runner.fail = {"production"}
    # a tool error quoting the passphrase and the other channel's webhook URL; a secret output (masked by the runner)
    runner.error = f"provider said: passphrase {CANARY}-passphrase rejected; posting to {slack_url} failed"
    runner.outputs = {"db_password": SECRET_MASK, "endpoint": "10.0.0.5"}
    env = cli.env()
    cli.env = lambda: {**env, "ENGINE_PASSPHRASE_ACME": f"{CANARY}-passphrase"}  # type: ignore[method-assign]
    chat.inject("teams", 500, times=100)  # Teams fails: its warning is printed too
    run = cli("up", "acme")
    assert run.code == 1
    received = json.dumps([m.payload for m in chat.messages])
    assert chat.messages and CANARY not in received and slack_url not in received
    assert f"passphrase {SECRET_MASK} rejected; posting to {SECRET_MASK} failed" in received
    assert CANARY not in run.stderr and slack_url not in run.stderr and cli.env()["NOTIFY_TEAMS_ACME"] not in run.stderr


def test_customer_text_is_escaped_for_each_format():
    hostile = "<!channel> *all* & [click](https://evil.example) {{DATE(2024-01-01T00:00:00Z)}}\n- item"
    result = StackResult("acme", "production", "acme/production", "pulumi", "up", "failed", error=hostile)
    message = message_for(StackDone(None, result), Context(actor="<@U123>"))
    slack = slack_payload(message)
    context = slack["blocks"][-1]["elements"][0]["text"]
    assert context == "deploy.failed · by &lt;@U123&gt;"  # mrkdwn: &, < and > are entities, nothing is a mention
    (details,) = [b for b in slack["blocks"] if b["type"] == "section" and b["text"]["type"] == "plain_text"]
    assert details["text"]["text"] == hostile  # plain_text: shown as written, never interpreted
    card = teams_payload(message)["attachments"][0]["content"]
    first, second = (b["text"] for b in card["body"] if b.get("fontType") == "Monospace")
    assert first.startswith(r"\<\!channel\> \*all\* & \[click\]\(https://evil.example\)")
    assert "{{" not in first and second == "\\- item"


def test_every_rendering_is_accepted_by_the_local_services():
    """Each event, rendered for each service, with long and hostile text, passes the servers' checks."""
    long_error = "\n".join(f"line {i}: " + "x" * 400 for i in range(40))
    results = [StackResult("acme", "production", "acme/production", "pulumi", "up", status, error=long_error if status == "failed" else None,
                           changes=Changes(create=1)) for status in ("succeeded", "failed")]
    blocked = StackResult("acme", "production", "acme/production", "pulumi", "up", "blocked",
                          error="blocked by policy: m7g.2xlarge is not allowed in production",
                          policy={"denied": True, "decisions": [{"rule": "instance_types", "level": "deny",
                                                                 "message": "m7g.2xlarge is not allowed in production"}]})
    drift = StackResult("a" * 32, "e" * 20, "x/y", "terraform", "drift", "succeeded", changes=Changes(update=30),
                        resources=[ResourceChange(f"r{i}" * 40, "t", "update", ["p"], diffs=[{"path": "p", "old": "<a>", "new": "&b"}]) for i in range(30)])
    target = type("T", (), {"customer": "acme", "environment": "production"})()
    events = [StackDone(None, r) for r in results] + [StackDone(None, blocked), DriftOpened(target, drift)]
    messages = [message_for(e, Context("bot", "https://github.com/o/r/actions/runs/1", SHA)) for e in events]
    assert [m.event for m in messages] == ["deploy.succeeded", "deploy.failed", "policy.blocked", "drift.opened"]
    assert messages[2].details == ("instance_types: m7g.2xlarge is not allowed in production",)
    with FakeChat() as chat:
        for m in messages:
            assert Destination("slack-webhook", "V", chat.slack_webhook()).send(slack_payload(m), m.key).ok
            assert Destination("teams-webhook", "V", chat.teams_webhook()).send(teams_payload(m), m.key).ok
            assert Destination("slack-api", "V", BOT_TOKEN, slack_channel="#ops", api_url=chat.slack_api).send(slack_payload(m), m.key).ok
        assert chat.violations == []
    assert messages[3].more == 20 and "… and 20 more" in json.dumps(slack_payload(messages[3]), ensure_ascii=False)


def test_the_local_services_refuse_what_slack_and_teams_would_refuse():
    """The checks can fail: a block Slack does not know, an over-long header, a card key Teams does not know."""
    message = message_for(StackDone(None, StackResult("acme", "staging", "acme/staging", "pulumi", "up", "succeeded")), Context())
    slack, card = slack_payload(message), teams_payload(message)
    bad_slack = [{**slack, "blocks": [{"type": "table", "rows": []}]},
                 {**slack, "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}]},
                 {**slack, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "<!channel> hi"}}]},
                 {"blocks": slack["blocks"]}]
    bad_card = json.loads(json.dumps(card))
    bad_card["attachments"][0]["content"]["msteams"] = {"width": "Full"}
    with FakeChat() as chat:
        for payload in bad_slack:
            assert not Destination("slack-webhook", "V", chat.slack_webhook()).send(payload, "k").ok
        assert not Destination("teams-webhook", "V", chat.teams_webhook()).send(bad_card, "k").ok
        assert len(chat.violations) == 5 and chat.messages == []
        assert any("msteams" in v for v in chat.violations)


# --- configuration ------------------------------------------------------------------------------------------------

def test_a_bad_notifications_file_is_bad_input_naming_file_line_and_key(tmp_path):
    root = make_catalog(tmp_path / "c", {"acme": (tenant_record("acme", 1), SMALL_CONFIG.format(name="acme-app"))})
    (root / "notifications.yml").write_text("notifications:\n  - channel: slack\n    webhook_env: https://hooks.slack.com/services/T0/B0/secretpart\n")
    run = EngineCLI(tmp_path / "home", root)("up", "acme")
    assert run.code == 2
    assert re.search(r"notifications\.yml:3: notifications\[0\]\.webhook_env: expected the name of an environment variable", run.stderr)
    assert "secretpart" not in run.stderr
    assert not (tmp_path / "home" / "state").exists()


def test_slacks_web_api_waits_retry_after_too_and_posts_once(chat_server):  # noqa: F811
    message = message_for(StackDone(None, StackResult("acme", "staging", "acme/staging", "pulumi", "up", "succeeded")), Context())
    chat_server.inject("slack-api", 429, retry_after="1")
    delivery = Destination("slack-api", "V", BOT_TOKEN, slack_channel="#ops", api_url=chat_server.slack_api).send(slack_payload(message), message.key)
    assert delivery.ok and delivery.attempts == 2 and delivery.waited_s >= 1.0
    assert [status for _, _, status in chat_server.attempts] == [429, 200]
    assert chat_server.attempts[1][1] - chat_server.attempts[0][1] >= 1.0
    assert len(chat_server.of("slack-api")) == 1


# --- the renderings (golden files) --------------------------------------------------------------------------------

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "notify"


def check_golden(name: str, payload: dict) -> None:
    path = GOLDEN / f"{name}.json"
    text = json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text()


@pytest.mark.parametrize("service", ["slack", "teams"])
def test_a_failed_deploy_and_a_drift_render_as_the_golden_files(service):
    context = Context("deploy-bot", "https://github.com/provider/manager/actions/runs/4242", SHA)
    failed = StackResult("acme", "production", "acme/production", "terraform", "up", "failed", changes=Changes(create=1, update=2),
                         error="Error: creating instance \"web\": quota exceeded\n  on main.tf line 12", duration_s=61.0)
    drift = StackResult("acme", "staging", "acme/staging", "pulumi", "drift", "succeeded", changes=Changes(update=1, delete=1, same=6),
                        resources=[ResourceChange("acme-web-0", "local:index:Instance", "update", ["size"],
                                                  diffs=[{"path": "size", "old": "t3.micro", "new": "t3.large"}]),
                                   ResourceChange("acme-alarm", "local:index:Alarm", "delete")])
    target = type("Target", (), {"customer": "acme", "environment": "staging"})()
    render = slack_payload if service == "slack" else teams_payload
    check_golden(f"{service}-deploy-failed", render(message_for(StackDone(None, failed), context)))
    check_golden(f"{service}-drift-opened", render(message_for(DriftOpened(target, drift), context)))
