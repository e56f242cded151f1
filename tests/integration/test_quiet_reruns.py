"""Quiet re-runs and a bounded number of GitHub writes per customer × environment (issue 11, item 6).

Against the local GitHub server (every request checked against GitHub's API description and recorded),
with the real tools: a plan on a pull request, the identical plan re-run by a later run (same commit,
same result: no comment write), then the push flow (the plan step, then each environment's apply).
Every write is attributed to the stack it reports on; no run writes more than 4 times for one stack
(GitHub allows about 80 content-creating requests a minute and 500 an hour, for the whole fleet).
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from tests.fakegithub.fixture import github_server  # noqa: F401 - pytest fixture
from tests.integration.test_github_loop import OWNER, REPO, SHA, dispatch, loop, pull  # noqa: F401 - loop is a fixture

LIMIT = 4  # GitHub writes per customer × environment and run: statuses, comment, deployment, deployment status
MARKER = re.compile(r"^<!-- managed-infra-engine:acme/([a-z0-9-]+) -->")


def writes_per_stack(server, since: int) -> dict[str, Counter]:
    """The writes recorded after request number ``since``, per environment and kind; any other write fails the test."""
    stacks: dict[str, Counter] = {}
    for request in server.requests[since:]:
        method, path, body = request["method"], request["path"], request["json"] or {}
        if method not in ("POST", "PATCH", "PUT", "DELETE"):
            continue
        base = f"/repos/{OWNER}/{REPO}"
        if method == "POST" and path.startswith(f"{base}/statuses/"):
            environment, kind = body["context"].split("/")[1], "status"
        elif (method == "POST" and re.fullmatch(rf"{base}/issues/\d+/comments", path)) or (
                method == "PATCH" and re.fullmatch(rf"{base}/issues/comments/\d+", path)):
            environment, kind = MARKER.match(body["body"])[1], "comment"
        elif method == "POST" and path == f"{base}/deployments":
            environment, kind = body["environment"], "deployment"
        elif method == "POST" and re.fullmatch(rf"{base}/deployments/\d+/statuses", path):
            environment, kind = body["environment"], "deployment status"
        else:
            raise AssertionError(f"a write the feedback should not make: {method} {path}")
        stacks.setdefault(environment, Counter())[kind] += 1
    return stacks


def run_event(cli, server, event: str, *args: str, run_id: str) -> dict[str, Counter]:
    """One `engine event` as one Actions run (its own run id, so its own run link) → its writes per stack."""
    cli.env()["GITHUB_RUN_ID"] = run_id
    before = len(server.requests)
    cli("event", "repository_dispatch", event, *args, check=0)
    stacks = writes_per_stack(server, before)
    for environment, kinds in stacks.items():
        assert sum(kinds.values()) <= LIMIT, (environment, kinds)
    return stacks


@pytest.mark.parametrize("tool", ["pulumi", "terraform"])
def test_an_identical_plan_rerun_writes_no_comment_and_every_run_stays_within_four_writes_per_stack(loop, tool):  # noqa: F811
    cli, server, tmp = loop
    server.add_repo(OWNER, REPO, properties={"infrastructure_tools": [tool]})  # the customer's custom property picks the tool
    pull(server, 17, SHA)
    plan = dispatch(tmp, customer="acme", sha=SHA, pr=17, mode="plan")

    first = run_event(cli, server, plan, run_id="5001")
    assert first == {env: Counter({"status": 2, "comment": 1}) for env in ("staging", "production")}  # pending → success, the comment
    comments = {c["id"]: c["body"] for c in server.comments(OWNER, REPO, 17)}
    assert len(comments) == 2 and all("actions/runs/5001" in body and f"<sub>{tool}" in body for body in comments.values())

    # The same commit planned again by a later run: the same result in whatever order Pulumi reports it, a new
    # run link and (often) a new minute — the comments are not written at all.
    for run_id in ("5002", "5003"):
        rerun = run_event(cli, server, plan, run_id=run_id)
        assert rerun == {env: Counter({"status": 2}) for env in ("staging", "production")}
    assert {c["id"]: c["body"] for c in server.comments(OWNER, REPO, 17)} == comments

    # The push flow of the merged commit: the plan step (infra/<env> stays pending until the apply reports), then
    # each environment's apply job.
    server.set_ref(OWNER, REPO, "main", SHA)
    push = dispatch(tmp, "push.json", customer="acme", sha=SHA, ref="refs/heads/main", mode="apply")
    plan_step = run_event(cli, server, push, "--mode", "plan", run_id="6001")
    assert plan_step == {env: Counter({"status": 3}) for env in ("staging", "production")}  # pending, plan result, pending for apply
    for env in ("staging", "production"):
        applied = run_event(cli, server, push, "--env", env, run_id="6001")
        assert applied == {env: Counter({"status": 2, "deployment": 1, "deployment status": 1})}
    assert sorted(d["environment"] for d in server.deployments(OWNER, REPO)) == ["production", "staging"]

    # The apply job re-run: the deployment is found again, not duplicated
    again = run_event(cli, server, push, "--env", "staging", run_id="6001")
    assert again == {"staging": Counter({"status": 2, "deployment status": 1})}
