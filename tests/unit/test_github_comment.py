"""The PR comment: summary first, details folded, within GitHub's size limit (golden files)."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from engine.reporters.github import COMMENT_LIMIT, Feedback, comment_content, marker, render_comment
from engine.results import Changes, ResourceChange, StackResult

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "comments"
SHA = "0123456789abcdef0123456789abcdef01234567"


def check(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.md"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def result(**kw) -> StackResult:
    base = dict(customer="acme", environment="staging", stack="acme/staging", tool="pulumi", operation="preview", status="succeeded")
    return StackResult(**{**base, **kw})


def test_plan_with_changes():
    r = result(changes=Changes(create=2, update=1, same=8), resources=[
        ResourceChange("app-1", "local:Instance", "update", ["spec.instance_type"]),
        ResourceChange("monitoring", "local:Monitor", "create"),
        ResourceChange("db|x", "local:Database", "create")])
    check("plan-changes", render_comment(r, mode="plan", sha=SHA, run_url="https://github.com/p/m/actions/runs/1", now="2026-11-26 10:00 UTC"))


def test_terraform_plan_says_why_a_resource_is_replaced_or_deleted():
    r = result(tool="terraform", binary="OpenTofu v1.10.6", changes=Changes(update=1, replace=2, delete=1, same=3), resources=[
        ResourceChange('enginelocal_document.instance["app-1"]', "enginelocal_document", "replace", ["content"],
                       action_reason="replace_because_tainted"),
        ResourceChange("terraform_data.rep", "terraform_data", "replace", ["triggers_replace"], action_reason="replace_because_cannot_update"),
        ResourceChange("terraform_data.upd", "terraform_data", "update", ["input.size"]),
        ResourceChange("terraform_data.gone", "terraform_data", "delete", action_reason="delete_because_no_resource_config")])
    body = render_comment(r, mode="plan", sha=SHA, run_url=None, now="2026-11-26 10:00 UTC")
    check("plan-replace-reasons", body)
    assert '| replace (tainted) | `enginelocal_document.instance["app-1"]` |' in body


def test_plan_without_changes():
    check("plan-no-changes", render_comment(result(changes=Changes(same=11)), mode="plan", sha=SHA, run_url=None, now="2026-11-26 10:00 UTC"))


def test_apply_with_outputs_masks_secrets_and_failed_apply():
    ok = result(operation="up", changes=Changes(create=11), outputs={"vpc_cidr": "10.0.68.0/22", "database_password": "[secret]", "ips": ["10.0.70.10"]})
    check("apply-outputs", render_comment(ok, mode="apply", sha=SHA, run_url=None, now="2026-11-26 10:00 UTC"))
    bad = result(operation="up", tool="terraform", status="failed", error="vpc: FileExistsError: [Errno 17] File exists", binary="OpenTofu v1.10.6")
    check("apply-failed", render_comment(bad, mode="apply", sha=SHA, run_url=None, now="2026-11-26 10:00 UTC"))


def test_huge_plans_are_truncated_with_a_note():
    many = [ResourceChange(f"resource-{i:05d}-" + "x" * 80, "aws:ec2/instance:Instance", "create", ["p" * 30] * 3) for i in range(3000)]
    body = render_comment(result(changes=Changes(create=3000), resources=many), mode="plan", sha=SHA, run_url=None)
    assert len(body) <= COMMENT_LIMIT
    assert body.startswith(marker("acme", "staging"))
    assert "more resource changes not shown to stay within GitHub's comment size limit" in body
    assert "3000 resource changes (showing" in body


# -- quiet re-runs: the same result is the same comment ------------------------------------------------------


def _pulumi_rows() -> list[ResourceChange]:
    # as Pulumi reports them: in the order its parallel steps finished, property names in diff order
    return [ResourceChange("app-1", "local:Instance", "update", ["spec.root_disk_gb", "spec.instance_type"]),
            ResourceChange("monitoring", "local:Monitor", "create"),
            ResourceChange("db", "local:Database", "replace", ["engine_version"]),
            ResourceChange("old-alarm", "local:Alarm", "delete"),
            ResourceChange("app-0", "local:Instance", "update", ["tags"])]


def _terraform_rows() -> list[ResourceChange]:
    return [ResourceChange('enginelocal_document.instance["app-1"]', "enginelocal_document", "replace", ["content"],
                           action_reason="replace_because_tainted"),
            ResourceChange("terraform_data.upd", "terraform_data", "update", ["input.size", "input.name"]),
            ResourceChange("terraform_data.gone", "terraform_data", "delete", action_reason="delete_because_no_resource_config"),
            ResourceChange("enginelocal_disk.new", "enginelocal_disk", "create"),
            ResourceChange("terraform_data.moved", "terraform_data", "move", moved_from="terraform_data.old")]


def _rows_of(body: str) -> list[str]:
    return [line for line in body.splitlines() if line.startswith("| ") and "`" in line and not line.startswith("| Action")]


@pytest.mark.parametrize("tool, rows", [("pulumi", _pulumi_rows), ("terraform", _terraform_rows)])
def test_the_same_plan_gives_the_same_comment_whatever_order_the_tool_reported_it_in(tool, rows):
    bodies = set()
    for order in itertools.permutations(range(5)):
        shuffled = [rows()[i] for i in order]
        for change in shuffled:
            change.properties.reverse()
        r = result(tool=tool, changes=Changes(create=1, update=1, replace=1, delete=1, same=4), resources=shuffled)
        bodies.add(render_comment(r, mode="plan", sha=SHA, run_url=None, now="2026-11-26 10:00 UTC"))
    (body,) = bodies  # 120 orders, one comment
    actions = [row.split(" | ")[0].lstrip("| ").split(" (")[0] for row in _rows_of(body)]
    # what destroys first (a reviewer must not miss it, and it stays when rows are left out for size), then by name
    assert actions == sorted(actions, key=["delete", "replace", "update", "create", "move"].index)
    if tool == "pulumi":
        assert [row.split("`")[1] for row in _rows_of(body)] == ["old-alarm", "db", "app-0", "app-1", "monitoring"]
        assert "| `spec.instance_type`, `spec.root_disk_gb` |" in body


def test_rows_left_out_for_size_are_the_creates_never_the_deletes():
    rows = [ResourceChange(f"new-{i:05d}-" + "x" * 80, "aws:ec2/instance:Instance", "create", ["p" * 30] * 3) for i in range(3000)]
    rows.insert(1500, ResourceChange("zzz-production-database", "aws:rds/instance:Instance", "delete"))
    body = render_comment(result(changes=Changes(create=3000, delete=1), resources=rows), mode="plan", sha=SHA, run_url=None)
    assert "more resource changes not shown" in body
    assert _rows_of(body)[0].startswith("| delete | `zzz-production-database` |")


def test_comment_content_leaves_out_only_when_and_by_which_run_it_was_written():
    r = result(changes=Changes(create=2, same=8), resources=_pulumi_rows()[:2])
    first = render_comment(r, mode="plan", sha=SHA, run_url="https://github.com/p/m/actions/runs/1", now="2026-11-26 10:00 UTC")
    rerun = render_comment(r, mode="plan", sha=SHA, run_url="https://github.com/p/m/actions/runs/2", now="2026-11-27 08:30 UTC")
    assert first != rerun and comment_content(first) == comment_content(rerun)
    assert comment_content(first.replace("\n", "\r\n")) == comment_content(first)  # line endings as GitHub may return them
    for different in (render_comment(r, mode="plan", sha="f" * 40, run_url=None, now="2026-11-26 10:00 UTC"),  # another commit
                      render_comment(r, mode="apply", sha=SHA, run_url=None, now="2026-11-26 10:00 UTC"),
                      render_comment(result(changes=Changes(create=3, same=8), resources=_pulumi_rows()[:3]), mode="plan", sha=SHA,
                                     run_url=None, now="2026-11-26 10:00 UTC")):
        assert comment_content(different) != comment_content(first)


class CommentsAPI:
    """The comment calls of engine.github.GitHubAPI, in memory; every write is recorded."""

    dry_run = False

    def __init__(self):
        self.comments_by_id: dict[int, dict] = {}
        self.writes: list[tuple[str, int]] = []

    def authenticated_login(self, repository):
        return "engine-bot"

    def comments(self, repository, number):
        return [dict(c) for c in self.comments_by_id.values()]

    def create_comment(self, repository, number, body):
        comment_id = 100 + len(self.comments_by_id)
        self.comments_by_id[comment_id] = {"id": comment_id, "body": body, "user": {"login": "engine-bot", "type": "User"}}
        self.writes.append(("create", comment_id))
        return True

    def update_comment(self, repository, comment_id, body):
        self.comments_by_id[comment_id]["body"] = body
        self.writes.append(("update", comment_id))
        return True


def test_a_rerun_that_changes_nothing_makes_no_comment_write_and_a_change_edits_in_place():
    api = CommentsAPI()
    feedback = Feedback(api, "acme-org/app", SHA, 7, "plan", sleep=lambda _s: None)
    r = result(changes=Changes(create=2, same=8), resources=_pulumi_rows()[:2])
    feedback.upsert_comment("acme", "staging", render_comment(r, mode="plan", sha=SHA, run_url="https://x/runs/1", now="2026-11-26 10:00 UTC"))
    assert api.writes == [("create", 100)]
    shuffled = result(changes=Changes(create=2, same=8), resources=_pulumi_rows()[:2][::-1])
    feedback.upsert_comment("acme", "staging", render_comment(shuffled, mode="plan", sha=SHA, run_url="https://x/runs/2", now="2026-11-26 11:00 UTC"))
    assert api.writes == [("create", 100)]  # same content, later, from another run: left alone
    assert "updated 2026-11-26 10:00 UTC" in api.comments_by_id[100]["body"]  # it still says when its content was written
    changed = result(changes=Changes(create=3, same=8), resources=_pulumi_rows()[:3])
    feedback.upsert_comment("acme", "staging", render_comment(changed, mode="plan", sha=SHA, run_url=None, now="2026-11-26 12:00 UTC"))
    assert api.writes == [("create", 100), ("update", 100)]  # the same comment, edited
    assert "**Plan: 3 to create**" in api.comments_by_id[100]["body"] and feedback.log == []


# -- the Policy and Cost sections (summary first) and the infra/<env>/policy status --------------------------

POLICY_DENY = {"denied": True, "decisions": [
    {"rule": "instance_types", "level": "deny", "message": "app[0]: instance size 24xlarge (m6i.24xlarge) is not allowed in production"},
    {"rule": "instance_types", "level": "warn", "message": "app[1]: m5 is a previous-generation family"}]}
COST = {"currency": "USD", "catalog_as_of": "2026-11-01", "region": "eu-west-1", "monthly_before": 120.5, "monthly_after": 4735.25,
        "monthly_delta": 4614.75, "complete": False, "not_priced": [{"address": "x", "type": "volume", "reason": "no price"}]}


def test_a_plan_blocked_by_policy_says_so_first_with_the_rules_messages_and_its_cost():
    r = result(environment="production", status="blocked", error="blocked by policy: " + POLICY_DENY["decisions"][0]["message"],
               changes=Changes(update=1, same=10), policy=POLICY_DENY, cost=COST,
               resources=[ResourceChange("app-0", "local:Instance", "update", ["spec.instance_type"])])
    body = render_comment(r, mode="plan", sha=SHA, run_url=None, now="2026-11-26 10:00 UTC")
    check("plan-blocked-by-policy", body)
    summary = body.split("| Create |")[0]  # before the details
    assert "**Blocked by policy.**" in summary and "**Policy:** ❌ 1 denied · ⚠️ 1 warning" in summary
    assert "app\\[0\\]: instance size 24xlarge (m6i.24xlarge) is not allowed in production" in summary
    assert "**Error**" not in body  # the Policy section is the reason
    assert "**Cost:** $4,735.25 per month (+$4,614.75; was $120.50) · 1 resource not priced" in summary


def test_a_passed_policy_and_a_cheaper_plan_render_as_passed_and_a_negative_delta():
    cheaper = {**COST, "monthly_before": 200.0, "monthly_after": 150.0, "not_priced": []}
    body = render_comment(result(changes=Changes(update=1, same=10), policy={"denied": False, "decisions": []}, cost=cheaper),
                          mode="plan", sha=SHA, run_url=None, now="2026-11-26 10:00 UTC")
    assert "**Policy:** ✅ passed" in body and "**Cost:** $150.00 per month (−$50.00; was $200.00)" in body


def test_the_policy_status_fails_on_a_deny_and_passes_with_warnings_counted():
    from engine.reporters.github import policy_status

    assert policy_status(result(policy=POLICY_DENY)) == ("failure", "denied: " + POLICY_DENY["decisions"][0]["message"])
    assert policy_status(result(policy={"denied": False, "decisions": POLICY_DENY["decisions"][1:]})) == ("success", "passed, 1 warning")
    assert policy_status(result()) is None  # not judged: no status at all


def test_a_failed_post_deploy_test_and_the_rollback_that_followed_it():
    from engine.results import FailedTest, PostDeployOutcome

    tests = PostDeployOutcome("failed", 4, 1, failures=[FailedTest(
        "test_local_target.py::test_every_instance_disk_has_the_requested_size",
        "AssertionError: app-1: disk is 20 GB, 40 GB requested\nassert 21474836480 == (40 * 1073741824)")], directory="programs/local/tests")
    r = result(operation="up", environment="production", status="failed", changes=Changes(update=2, same=9), error=tests.describe(), tests=tests,
               outputs={"instance_ips": ["10.0.66.10", "10.0.67.10", "10.0.66.11"], "database_password": "[secret]"},
               rolled_back={"status": "succeeded", "source_run": 7, "source_sha": "fedcba9876543210fedcba9876543210fedcba98", "changes":
                            {"create": 0, "update": 2, "delete": 1, "replace": 0, "same": 9}, "error": None, "run_id": 9,
                            "outputs": {"instance_ips": ["10.0.66.10", "10.0.67.10"], "database_password": "[secret]"}})
    body = render_comment(r, mode="apply", sha=SHA, run_url=None, now="2026-11-26 10:00 UTC")
    check("apply-tests-failed-rolled-back", body)
    assert "`test_local_target.py::test_every_instance_disk_has_the_requested_size`" in body
    assert "rolled back to run 7 (commit `fedcba9`)" in body and "10.0.66.11" not in body  # the outputs now deployed
    from engine.reporters.github import rolled_back_description

    assert rolled_back_description(r).startswith("rolled back to run 7 (fedcba9) after: post-deploy test test_local_target.py::")
