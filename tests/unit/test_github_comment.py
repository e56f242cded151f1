"""The PR comment: summary first, details folded, within GitHub's size limit (golden files)."""

from __future__ import annotations

import os
from pathlib import Path

from engine.reporters.github import COMMENT_LIMIT, marker, render_comment
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
