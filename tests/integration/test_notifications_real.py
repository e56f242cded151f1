"""Notifications from real runs: Pulumi deploys the local target, a hand edit drifts it, the engine repairs it — and
the local Slack and Teams endpoints (tests/fakenotify), which refuse what the services would refuse, get one message
per event, also when the first attempt is rate limited."""

from __future__ import annotations

import json

from tests.conftest import SMALL_CONFIG, EngineCLI, make_catalog, tenant_record
from tests.fakenotify.fixture import chat_server  # noqa: F401 - pytest fixture

NOTIFY = ("notifications:\n  - channel: slack\n    webhook_env: NOTIFY_SLACK_ACME\n"
          "  - channel: teams\n    webhook_env: NOTIFY_TEAMS_ACME\n    events: [deploy.failed, drift.opened, drift.resolved]\n")


def titles(chat, service: str) -> list[str]:
    if service == "teams":
        return [m.payload["attachments"][0]["content"]["body"][0]["text"] for m in chat.of("teams")]
    return [m.payload["blocks"][0]["text"]["text"] for m in chat.of(service)]


def test_a_real_deploy_drift_and_repair_are_notified_once_each(tmp_path, chat_server):  # noqa: F811
    root = make_catalog(tmp_path / "c", {"acme": (tenant_record("acme", 1) + NOTIFY, SMALL_CONFIG.format(name="acme-app"))})
    cli = EngineCLI(tmp_path / "home", root)
    env = {**cli.env(), "NOTIFY_SLACK_ACME": chat_server.slack_webhook(), "NOTIFY_TEAMS_ACME": chat_server.teams_webhook(),
           "GITHUB_REPOSITORY": "provider/manager", "GITHUB_RUN_ID": "99", "ENGINE_NOTIFY_MAX_WAIT_S": "5"}
    cli.env = lambda: env  # type: ignore[method-assign]

    chat_server.inject("slack-webhook", 429, retry_after="1")
    deployed = cli("up", "acme", "--env", "staging", "--json")
    assert deployed.code == 0, deployed.stderr
    created = deployed.json()["environments"]["staging"]["changes"]["create"]
    assert titles(chat_server, "slack-webhook") == ["Deploy succeeded: acme/staging"]
    fields = {f["text"].split("\n")[0]: f["text"].split("\n")[1] for f in chat_server.of("slack-webhook")[0].payload["blocks"][1]["fields"]}
    assert fields["*Changes*"] == f"{created} create, 0 update, 0 replace, 0 delete" and created > 0
    assert [s for svc, _, s in chat_server.attempts if svc == "slack-webhook"] == [429, 200]

    definition = cli.home / "local-cloud/acme/staging/compute/app-1/instance.json"
    doc = json.loads(definition.read_text())
    doc["spec"]["instance_type"] = "t3.xlarge"
    definition.write_text(json.dumps(doc))
    assert cli("drift", "acme", "--env", "staging").code == 3
    opened = json.dumps(chat_server.of("slack-webhook")[-1].payload, ensure_ascii=False)
    assert "Drift detected: acme/staging" in opened and "app-1" in opened and "t3.xlarge" in opened

    cli("up", "acme", "--env", "staging", "--refresh", check=0)  # puts the desired state back
    assert cli("drift", "acme", "--env", "staging").code == 0
    assert titles(chat_server, "slack-webhook") == ["Deploy succeeded: acme/staging", "Drift detected: acme/staging",
                                                    "Drift repair succeeded: acme/staging", "Drift resolved: acme/staging"]
    assert titles(chat_server, "teams") == ["Drift detected: acme/staging", "Drift resolved: acme/staging"]
