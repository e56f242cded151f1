"""The customer's `wait-for-infra.yml` polls the engine's commit statuses correctly (issue 11, item 7).

The workflow's own `run:` script is taken from the template and run with bash exactly as GitHub runs
it (the step's `shell:`), its `env:` filled as GitHub would, against the local GitHub server. `gh` is a
small stand-in for `gh api ENDPOINT` (the only call the script makes) that behaves as the real one does
(cli/cli pkg/cmd/api/api.go: the body on stdout; for HTTP ≥ 400 also "gh: <message> (HTTP <code>)" on
stderr and exit 1), sending GH_TOKEN to $GITHUB_API_URL. The statuses come from the real engine
(`engine event`) wherever a run is cheap enough, otherwise from the engine's own reporter (`Feedback`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from engine.github import GitHubAPI, Settings
from engine.reporters.github import Feedback
from engine.results import Changes, StackResult
from tests.conftest import SMALL_CONFIG
from tests.fakegithub.fixture import github_server  # noqa: F401 - pytest fixture
from tests.integration.test_github_loop import OWNER, REPO, SHA, SHA2, dispatch, loop, pull  # noqa: F401 - loop is a fixture

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "templates/customer/.github/workflows/wait-for-infra.yml"

FAKE_GH = '''#!{python}
"""`gh api ENDPOINT` (GET) as the real gh does it, against $GITHUB_API_URL with $GH_TOKEN; anything else is refused."""
import json, os, sys, urllib.error, urllib.request

if len(sys.argv) != 3 or sys.argv[1] != "api" or sys.argv[2].startswith("-"):
    sys.exit(f"fake gh: only `gh api ENDPOINT` is implemented, not {{sys.argv[1:]}}")
request = urllib.request.Request(os.environ["GITHUB_API_URL"].rstrip("/") + "/" + sys.argv[2].lstrip("/"),
                                 headers={{"Authorization": "token " + os.environ["GH_TOKEN"], "Accept": "*/*"}})
try:
    with urllib.request.urlopen(request, timeout=10) as response:
        sys.stdout.write(response.read().decode())
except urllib.error.HTTPError as error:
    body = error.read().decode()
    sys.stdout.write(body)
    try:
        message = json.loads(body).get("message")
    except ValueError:
        message = None
    sys.stderr.write(f"gh: {{message}} (HTTP {{error.code}})\\n" if message else f"gh: HTTP {{error.code}}\\n")
    sys.exit(1)
except OSError as error:
    sys.exit(f"error connecting to the API: {{error}}")
'''

# A clock the script reads (`date +%s`) and advances (`sleep N`): an hour of polling every 10 seconds takes
# 360 × 0.05 s of real time, and the engine still gets real time to report while the script polls.
FAKE_DATE = '#!/usr/bin/env bash\nif [ "$*" = "+%s" ]; then cat "$FAKE_CLOCK"; else exec /usr/bin/date "$@"; fi\n'
FAKE_SLEEP = '#!/usr/bin/env bash\necho $(( $(cat "$FAKE_CLOCK") + $1 )) > "$FAKE_CLOCK"\n/usr/bin/sleep 0.05\n'


def poll_step() -> dict:
    doc = yaml.safe_load(WORKFLOW.read_text())
    (step,) = [s for s in doc["jobs"]["wait"]["steps"] if s.get("id") == "poll"]
    return step


def shell_command(step: dict, script: Path) -> list[str]:
    """How GitHub runs a `run:` script on Linux ("jobs.<job_id>.steps[*].shell" in GitHub's workflow syntax)."""
    shell = step.get("shell")
    if shell is None:
        return ["bash", "-e", str(script)]
    if shell == "bash":
        return ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)]
    raise AssertionError(f"the test does not know how GitHub runs shell {shell!r}")


@dataclass
class Waited:
    code: int
    log: str
    outputs: dict[str, str]
    summary: str

    @property
    def polls(self) -> int:
        return sum(1 for line in self.log.splitlines() if " infra/" in line and line[:2].isdigit())


def parse_outputs(text: str) -> dict[str, str]:
    """$GITHUB_OUTPUT as the runner reads it: name=value lines and name<<DELIMITER blocks."""
    outputs, lines = {}, iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            value = []
            for more in lines:
                if more == delimiter:
                    break
                value.append(more)
            outputs[name] = "\n".join(value)
        elif line:
            name, value = line.split("=", 1)
            outputs[name] = value
    return outputs


STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def no_wait_left_running():
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:  # a test that failed before reading its result
            proc.kill()
            proc.communicate()


class Wait:
    """One run of the step, in the background; ``result()`` waits for it."""

    def __init__(self, tmp: Path, server, *, sha: str, environment: str = "staging", stage: str = "plan", timeout_minutes: str = "600",
                 poll_seconds: str = "10", name: str = "wait"):
        step = poll_step()
        self.dir = tmp / name
        bin_dir = self.dir / "bin"
        bin_dir.mkdir(parents=True)
        (bin_dir / "gh").write_text(FAKE_GH.format(python=sys.executable))
        (bin_dir / "date").write_text(FAKE_DATE)
        (bin_dir / "sleep").write_text(FAKE_SLEEP)
        (self.dir / "clock").write_text(f"{int(time.time())}\n")
        for tool in bin_dir.iterdir():
            tool.chmod(0o755)
        script = self.dir / "step.sh"
        script.write_text(step["run"])
        self.output, self.summary = self.dir / "output", self.dir / "summary"
        self.output.touch()
        self.summary.touch()
        env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "HOME": str(self.dir), "GITHUB_API_URL": server.url,
               "GITHUB_OUTPUT": str(self.output), "GITHUB_STEP_SUMMARY": str(self.summary), "FAKE_CLOCK": str(self.dir / "clock"),
               # the step's env:, as GitHub fills it for these inputs
               "GH_TOKEN": "test-token", "REPO": f"{OWNER}/{REPO}", "SHA": sha, "ENVIRONMENT": environment, "STAGE": stage,
               "TIMEOUT_MINUTES": timeout_minutes, "POLL_SECONDS": poll_seconds}
        self.proc = subprocess.Popen(shell_command(step, script), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        STARTED.append(self.proc)

    def result(self, timeout: float = 120) -> Waited:
        try:
            log, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            log, _ = self.proc.communicate()
            raise AssertionError(f"the wait was still polling after {timeout} s:\n{log[-2000:]}") from None
        return Waited(self.proc.returncode, log, parse_outputs(self.output.read_text()), self.summary.read_text())


def reads(server, sha: str) -> int:
    return sum(1 for r in server.requests if r["method"] == "GET" and r["path"].endswith(f"/commits/{sha}/status"))


def until(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def reporter(server, sha: str, mode: str, requested_mode: str | None = None) -> Feedback:
    """The engine's own GitHub reporter, writing to the local server as `engine event` does."""
    api = GitHubAPI(Settings.from_env({"GITHUB_API_URL": server.url, "GITHUB_TOKEN": "test-token", "ENGINE_GITHUB_TIMEOUT": "5"}))
    return Feedback(api, f"{OWNER}/{REPO}", sha, None, mode, "https://github.example/provider/manager/actions/runs/1",
                    requested_mode=requested_mode, sleep=lambda _s: None)


def stack(status: str = "succeeded", operation: str = "up", **kw) -> StackResult:
    return StackResult("acme", "staging", "acme/staging", "pulumi", operation, status, **kw)


# -- with the real engine ------------------------------------------------------------------------------------------


def test_a_pull_request_plan_is_waited_for_from_pending_to_success(loop):  # noqa: F811
    cli, server, tmp = loop
    pull(server, 17, SHA)
    waiting = Wait(tmp, server, sha=SHA, stage="plan")
    until(lambda: reads(server, SHA) >= 1)  # it is polling before the engine reports anything
    cli("event", "repository_dispatch", dispatch(tmp, customer="acme", sha=SHA, pr=17, mode="plan"), check=0)
    done = waiting.result()
    assert done.code == 0, done.log
    assert done.outputs == {"state": "success", "description": "plan: 11 create"}
    states = [line.split()[2] for line in done.log.splitlines() if " infra/staging: " in line]
    assert states[0] == "absent" and states[-1] == "success", done.log
    assert "### infra/staging on 111111111111: success" in done.summary


def test_an_apply_is_waited_for_past_the_plan_step_and_a_failed_deploy_fails_the_wait(loop):  # noqa: F811
    cli, server, tmp = loop
    blocker = cli.home / "local-cloud/acme/staging/network"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("in the way")  # staging's deploy fails: FileExistsError
    push = dispatch(tmp, customer="acme", sha=SHA, ref="refs/heads/main", mode="apply")
    waiting = Wait(tmp, server, sha=SHA, stage="apply")
    cli("event", "repository_dispatch", push, "--mode", "plan", check=0)  # the workflow's plan step: infra/staging stays pending
    polled = reads(server, SHA)
    until(lambda: reads(server, SHA) >= polled + 2)
    assert waiting.proc.poll() is None  # "planned …; waiting for apply" is no answer for stage apply
    cli("event", "repository_dispatch", push, "--env", "staging", check=1)
    done = waiting.result()
    assert done.code == 1 and done.outputs["state"] == "failure", done.log
    assert done.outputs["description"].startswith("vpc: FileExistsError")
    assert "::error title=infra/staging failure::vpc: FileExistsError" in done.log


def test_a_commit_superseded_before_its_apply_ends_the_wait_at_once(loop):  # noqa: F811
    """A push queued behind a newer one: the engine refuses to apply it (`infra/apply` failure, "superseded: …"),
    so its `infra/<env>` never gets a final answer. Waiting on it ends at once; waiting on the newer commit is
    not disturbed by the older commit's statuses."""
    cli, server, tmp = loop
    server.put_file(OWNER, REPO, SHA2, "infra/variables.yml", SMALL_CONFIG.format(name="acme-app"))
    old_plan = reporter(server, SHA, "plan", requested_mode="apply")
    old_plan.stack_done(stack(operation="preview", changes=Changes(create=11)))  # its plan step ran: pending "waiting for apply"
    server.set_ref(OWNER, REPO, "main", SHA2)  # a newer commit is merged before the older one's apply job starts
    cli("event", "repository_dispatch", dispatch(tmp, customer="acme", sha=SHA, ref="refs/heads/main", mode="apply"), "--env", "staging",
        check=2)
    old = Wait(tmp, server, sha=SHA, stage="apply", timeout_minutes="60", name="old").result()
    assert old.code == 1 and old.outputs["state"] == "superseded", old.log
    assert old.outputs["description"].startswith("superseded: 1111111 is not the head of main (2222222)")
    assert old.polls == 1

    new = Wait(tmp, server, sha=SHA2, stage="apply", name="new")
    reporter(server, SHA2, "apply").status("staging", "pending", "deploying with pulumi…")
    until(lambda: reads(server, SHA2) >= 2)
    assert new.proc.poll() is None
    reporter(server, SHA2, "apply").stack_done(stack(changes=Changes(create=11)))
    done = new.result()
    assert done.code == 0 and done.outputs == {"state": "success", "description": "applied: 11 create"}, done.log


def test_a_rejected_customer_file_ends_the_wait_with_the_reason(loop):  # noqa: F811
    """The engine reports a bad customer file as `infra/configuration` and never reaches `infra/<env>`."""
    cli, server, tmp = loop
    pull(server, 5, SHA2)
    server.put_file(OWNER, REPO, SHA2, "infra/variables.yml", "project_name: acme-app\nenvironments:\n  staging:\n    instance_typo: t3.micro\n")
    cli("event", "repository_dispatch", dispatch(tmp, customer="acme", sha=SHA2, pr=5), check=2)
    done = Wait(tmp, server, sha=SHA2, stage="plan", timeout_minutes="60").result()
    assert done.code == 1 and done.outputs["state"] == "failure", done.log
    assert done.outputs["description"].startswith("infra/variables.yml: line 4: environments.staging.instance_typo: unknown key")
    assert "::error title=infra/configuration failure::infra/variables.yml" in done.log
    assert done.polls == 1


# -- statuses written by the engine's reporter ---------------------------------------------------------------------


def test_a_status_that_stays_pending_times_out_after_the_given_minutes(github_server, tmp_path):  # noqa: F811
    server = github_server
    reporter(server, SHA, "plan", requested_mode="apply").stack_done(stack(operation="preview", changes=Changes(create=2)))
    done = Wait(tmp_path, server, sha=SHA, stage="apply", timeout_minutes="2", poll_seconds="30").result()
    assert done.code == 1 and done.outputs["state"] == "timeout", done.log
    assert done.outputs["description"] == "no final apply result after 2 minutes (last: pending planned (2 create); waiting for apply)"
    assert done.polls == 5  # at 0, 30, 60, 90 and 120 seconds
    assert "::error title=infra/staging timed out::" in done.log


def test_github_errors_while_polling_are_retried(github_server, tmp_path):  # noqa: F811
    server = github_server
    server.inject("GET", rf"/commits/{SHA}/status$", 502, ("rate_limit", 1), ("secondary_rate_limit", 1), "disconnect")
    reporter(server, SHA, "plan").stack_done(stack(operation="preview", changes=Changes(update=1, same=3)))
    done = Wait(tmp_path, server, sha=SHA).result()
    assert done.code == 0 and done.outputs == {"state": "success", "description": "plan: 1 update, 3 unchanged"}, done.log
    assert done.log.count("reading the status failed; retrying") == 4


def test_status_text_written_by_others_cannot_inject_outputs_or_workflow_commands(github_server, tmp_path):  # noqa: F811
    """Anyone with statuses: write on the customer's repository can set `infra/<env>`; its text is data."""
    import httpx

    server = github_server
    hostile = "x\n::error::pwned\r\nstate=success\n%0A::add-mask::y"
    httpx.post(f"{server.url}/repos/{OWNER}/{REPO}/statuses/{SHA}", headers={"Authorization": "token test-token"},
               json={"state": "failure", "context": "infra/staging", "description": hostile}).raise_for_status()
    done = Wait(tmp_path, server, sha=SHA).result()
    assert done.code == 1 and set(done.outputs) == {"state", "description"} and done.outputs["state"] == "failure", done.log
    assert "\n" not in done.outputs["description"]
    commands = [line for line in done.log.splitlines() if line.lstrip().startswith("::")]
    assert len(commands) == 1 and commands[0].startswith("::error title=infra/staging failure::"), done.log


@pytest.mark.parametrize("field, value", [("environment", "staging; rm -rf ~"), ("environment", "../x"), ("sha", "main"),
                                           ("sha", "$(id)"), ("stage", "deploy"), ("timeout_minutes", "0.5"), ("timeout_minutes", ""),
                                           ("poll_seconds", "1"), ("poll_seconds", "1e3")])
def test_bad_inputs_stop_before_any_request(github_server, tmp_path, field, value):  # noqa: F811
    server = github_server
    done = Wait(tmp_path, server, **{"sha": SHA, field: value}).result()
    assert done.code == 2 and "::error::" in done.log, done.log
    assert server.requests == []


def test_the_step_gets_every_input_through_env():
    step = poll_step()
    assert set(step["env"]) == {"GH_TOKEN", "REPO", "SHA", "ENVIRONMENT", "STAGE", "TIMEOUT_MINUTES", "POLL_SECONDS"}
