"""``engine event … --dry-run --source PATH``: a customer file tried with no GitHub at all, and dry runs that change nothing.

The runner is the fake one (tests/fakerunner.py) at the tool seam, so these tests see exactly which
operations a dry run asks for; tests/integration/test_dry_run.py runs the real tools.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest

from engine import triggers, wiring
from engine.dry_run import DryRunViolation, PreviewOnly
from engine.errors import ConfigError, InputError
from engine.events import parse_event, sign_dispatch
from engine.offline import OfflineGitHub
from engine.results import Operation, StackResult, Status
from engine.stream import EventStream, Notice
from tests.conftest import SMALL_CONFIG, EngineCLI, make_catalog, tenant_record
from tests.fakerunner import FakeRunner

SHA = "3333333333333333333333333333333333333333"
SECRET = "acme-dispatch-secret-for-offline-tests-0123456789"


def payload(tmp_path: Path, signed: bool = True, mode: str = "apply", pr: int | None = None) -> str:
    body = {"customer": "acme", "sha": SHA, "mode": mode, **({"pr": pr} if pr else {})}
    if signed:
        body["signature"] = sign_dispatch(SECRET, timestamp=int(time.time()), customer="acme", sha=SHA, ref=None, pr=pr, mode=mode,
                                          environment=None)
    path = tmp_path / f"event-{mode}-{signed}-{pr}.json"
    path.write_text(json.dumps({"action": "infra-change", "client_payload": body, "sender": {"login": "acme-bot"}}))
    return str(path)


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """A catalog with acme (its repository never contacted), a checkout of acme's repository, no GitHub credentials."""
    root = make_catalog(tmp_path / "catalog", {"acme": (tenant_record("acme", 1).replace("source: customers/acme\n", ""), None)})
    checkout = tmp_path / "checkout"
    (checkout / "infra").mkdir(parents=True)
    (checkout / "infra" / "variables.yml").write_text(SMALL_CONFIG.format(name="acme-app"))
    fake = FakeRunner()
    monkeypatch.setitem(wiring.RUNNERS, "pulumi", lambda _w: fake)
    cli = EngineCLI(tmp_path / "home", root)
    env = {k: v for k, v in cli.env().items() if k not in ("GITHUB_TOKEN", "ENGINE_GITHUB_TOKEN", "ENGINE_GITHUB_APP_ID",
                                                             "ENGINE_GITHUB_APP_PRIVATE_KEY", "GITHUB_API_URL")}
    env.update({"ENGINE_DISPATCH_SECRETS": json.dumps({"acme": SECRET}), "GITHUB_API_URL": "http://127.0.0.1:9"})  # nothing listens there
    cli.env = lambda: env  # type: ignore[method-assign]
    return cli, checkout, fake, tmp_path


def test_an_offline_dry_run_of_an_apply_previews_and_lists_every_write_it_would_make(offline):
    cli, checkout, fake, tmp = offline
    run = cli("event", "repository_dispatch", payload(tmp), "--dry-run", "--source", str(checkout), "--json")
    assert run.code == 0, run.stdout + run.stderr
    result = run.json()
    assert {op for _env, op in fake.calls} == {"preview"}  # never up: a dry run only reads and previews
    assert result["operation"] == "preview" and result["dry_run"]["requested"] == "up" and result["dry_run"]["ran"] == "preview"
    assert result["dry_run"]["would_refuse"] == []
    assert [w["stack"] for w in result["dry_run"]["would_apply"]] == ["acme/staging", "acme/production"]
    assert result["dry_run"]["would_apply"][0]["summary"] == "1 create"
    github = result["dry_run"]["would_write"]["github"]
    assert [w.split(" ", 2)[:2] for w in github if "/statuses/" in w and "/deployments/" not in w][-1] == \
        ["POST", f"/repos/acme-org/app/statuses/{SHA}"]
    assert sum(1 for w in github if w.startswith("POST /repos/acme-org/app/deployments ")) == 2  # one per environment
    assert sum(1 for w in github if w.startswith("POST /repos/acme-org/app/deployments/0/statuses")) == 2
    assert len(result["dry_run"]["would_write"]["state"]) == 2
    notes = " ".join(result["dry_run"]["notes"])
    assert "working tree" in notes and "not checked offline" in notes and "tenant record" in notes
    assert not (cli.home / "state").exists()


def test_the_text_output_says_a_preview_ran_and_what_would_have_been_written(offline):
    cli, checkout, _fake, tmp = offline
    run = cli("event", "repository_dispatch", payload(tmp, pr=12), "--dry-run", "--source", str(checkout))
    assert run.code == 0, run.stdout + run.stderr
    assert "DRY RUN — preview ran instead of up: nothing was applied and no GitHub write was made." in run.stdout
    assert "would apply:\n  acme/staging: 1 create; would record the apply in the stack's state" in run.stdout
    assert f"POST /repos/acme-org/app/statuses/{SHA}  status infra/staging → pending: deploying with pulumi…" in run.stdout
    assert "POST /repos/acme-org/app/issues/12/comments  comment (" in run.stdout  # a pull request gets its comment
    assert "preview acme: 2/2 environments ok" in run.stdout


def test_an_unsigned_dispatch_is_still_previewed_but_the_refusal_is_said(offline):
    cli, checkout, fake, tmp = offline
    run = cli("event", "repository_dispatch", payload(tmp, signed=False), "--dry-run", "--source", str(checkout), "--json")
    assert run.code == 0, run.stdout + run.stderr
    (refusal,) = run.json()["dry_run"]["would_refuse"]
    assert refusal.startswith("dispatch for customer 'acme' refused: it is not signed (client_payload.signature is missing")
    assert f"warning: a real run would refuse this event: {refusal}" in run.stderr
    assert ("staging", "preview") in fake.calls


def test_a_dry_run_without_credentials_or_source_says_what_to_pass(offline):
    cli, _checkout, fake, tmp = offline
    run = cli("event", "repository_dispatch", payload(tmp), "--dry-run")
    assert run.code == 2, run.stdout + run.stderr
    assert run.stderr.startswith("error: --dry-run without GitHub credentials needs --source PATH")
    assert "hint: pass --source PATH" in run.stderr
    assert fake.calls == [] and not (cli.home / "state").exists()


def test_source_without_dry_run_is_refused(offline):
    cli, checkout, fake, tmp = offline
    run = cli("event", "repository_dispatch", payload(tmp), "--source", str(checkout))
    assert run.code == 2 and run.stderr.startswith("error: --source is only for --dry-run"), run.stderr
    assert fake.calls == []


def test_a_source_that_is_not_a_directory_is_bad_input(offline):
    cli, _checkout, fake, tmp = offline
    run = cli("event", "repository_dispatch", payload(tmp), "--dry-run", "--source", str(tmp / "nowhere"))
    assert run.code == 2 and f"--source {tmp / 'nowhere'}: not a directory" in run.stderr, run.stderr
    assert fake.calls == []


def test_a_bad_customer_file_in_the_checkout_names_file_line_and_key(offline):
    cli, checkout, fake, tmp = offline
    (checkout / "infra" / "variables.yml").write_text("project_name: acme-app\nenvironments:\n  staging:\n    instance_typo: t3.micro\n")
    run = cli("event", "repository_dispatch", payload(tmp), "--dry-run", "--source", str(checkout))
    assert run.code == 2
    assert f"{checkout.resolve()}/infra/variables.yml" in run.stderr and "environments.staging.instance_typo" in run.stderr
    assert fake.calls == []


def test_the_offline_client_reads_only_inside_the_checkout(tmp_path):
    checkout = tmp_path / "checkout"
    (checkout / "infra").mkdir(parents=True)
    (checkout / "infra" / "variables.yml").write_text("project_name: x\n")
    (tmp_path / "secret.yml").write_text("not yours\n")
    (checkout / "infra" / "link.yml").symlink_to(tmp_path / "secret.yml")
    api = OfflineGitHub(source=checkout, head=SHA)
    assert api.file_at("acme-org/app", "infra/variables.yml", SHA) == b"project_name: x\n"
    assert api.file_at("acme-org/app", "infra/missing.yml", SHA) is None
    with pytest.raises(ConfigError, match="outside the checkout"):
        api.file_at("acme-org/app", "infra/link.yml", SHA)
    assert api.default_branch_head("acme-org/app") == ("(default branch)", SHA)
    assert api.custom_properties("acme-org/app") == {}


def test_offline_without_a_commit_takes_the_checkouts_head(tmp_path):
    checkout = tmp_path / "checkout"
    (checkout / ".git" / "refs" / "heads").mkdir(parents=True)
    (checkout / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (checkout / ".git" / "refs" / "heads" / "main").write_text(SHA + "\n")
    assert OfflineGitHub(source=checkout).default_branch_head("acme-org/app") == ("main", SHA)
    with pytest.raises(InputError, match="cannot tell the head"):
        OfflineGitHub(source=tmp_path).default_branch_head("acme-org/app")


class NeverDeployed(FakeRunner):
    def run(self, target, operation):
        if str(operation) == "list":
            self.calls.append((target.environment, "list"))
            return StackResult.for_target(target, operation, Status.NOT_DEPLOYED)
        self.backends.append(target.backend_url)
        return super().run(target, operation)

    backends: list[str] = []


def test_preview_only_never_changes_a_stack_and_previews_a_new_one_against_scratch_state():
    from engine.planning import StackTarget

    local = StackTarget(customer="acme", environment="staging", stack="staging", project="acme", tool="pulumi", program="local",
                        backend_url="file:///var/state/acme", config={})
    remote = dataclasses.replace(local, backend_url="s3://state-bucket/acme")
    for target, asked in ((local, []), (remote, [("staging", "list")])):  # local state is answered from its files, S3 is asked
        inner = NeverDeployed()
        inner.backends = []
        stream = EventStream()
        notices: list[str] = []
        stream.subscribe(lambda event: notices.append(event.text) if isinstance(event, Notice) else None)
        runner = PreviewOnly(inner, stream)
        for operation in (Operation.UP, Operation.DESTROY, Operation.REFRESH, Operation.REMEDIATE):
            with pytest.raises(DryRunViolation):
                runner.run(target, operation)
        result = runner.run(target, Operation.PREVIEW)
        assert inner.calls == [*asked, ("staging", "preview")]
        (scratch,) = inner.backends
        assert scratch.startswith("file:///") and scratch != target.backend_url  # the real state is never handed to the preview
        assert result.status == "succeeded" and notices == ["not deployed yet: previewed against an empty state (nothing was created)"]

    deployed = FakeRunner(deployed={"staging"})
    PreviewOnly(deployed).run(local, Operation.PREVIEW)
    assert deployed.calls == [("staging", "preview")]  # a deployed stack is previewed against its own state


def test_a_dry_run_client_never_runs_an_operation_that_changes_resources(tmp_path):
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    request = parse_event("repository_dispatch", {"action": "infra-change", "client_payload": {"customer": "acme", "sha": SHA, "mode": "apply"}})
    with pytest.raises(DryRunViolation):
        triggers.handle(request, engine=None, api=OfflineGitHub(source=checkout, head=SHA), run_url=None, operation="up")  # type: ignore[arg-type]


def test_an_offline_manual_dispatch_without_a_commit_runs_the_checkouts_head(offline):
    cli, checkout, fake, tmp = offline
    (checkout / ".git" / "refs" / "heads").mkdir(parents=True)
    (checkout / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (checkout / ".git" / "refs" / "heads" / "main").write_text(SHA + "\n")
    event = tmp / "manual.json"
    event.write_text(json.dumps({"inputs": {"customer": "acme", "mode": "apply", "sha": ""}}))
    run = cli("event", "workflow_dispatch", str(event), "--dry-run", "--source", str(checkout), "--json")
    assert run.code == 0, run.stdout + run.stderr
    statuses = [w for w in run.json()["dry_run"]["would_write"]["github"] if "/statuses/" in w and "/deployments/" not in w]
    assert statuses and all(w.startswith(f"POST /repos/acme-org/app/statuses/{SHA} ") for w in statuses)
    assert any(f"main at {SHA[:12]}" in note for note in run.json()["dry_run"]["notes"])
    assert ("staging", "preview") in fake.calls
