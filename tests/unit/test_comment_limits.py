"""PR comments, drift issues and configuration comments stay valid Markdown within GitHub's size limit.

Whatever the error text or the number of rows: at most ``COMMENT_LIMIT`` characters,
every code fence closed, no line of an error outside its fence, and a "not shown" note
whenever something was left out.  Markdown is checked with a small CommonMark fence
scanner (below), not by string matching on our own template.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import tfplan
from engine.drift import DriftReport, StackDrift
from engine.reporters.drift import render_markdown
from engine.errors import Problem
from engine.reporters.drift_issues import render_drift_issue
from engine.reporters.github import COMMENT_LIMIT, marker, render_comment, render_config_error
from engine.results import Changes, ResourceChange, StackResult

FIXTURES = Path(__file__).resolve().parent.parent / "golden" / "tfplan"
SHA = "0123456789abcdef0123456789abcdef01234567"
NOT_SHOWN = "not shown to stay within GitHub's comment size limit"

_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


def split_markdown(markdown: str) -> tuple[list[str], str]:
    """The fenced code blocks of a CommonMark document, and the text outside them; fails on a fence never closed."""
    blocks: list[str] = []
    outside: list[str] = []
    fence: str | None = None
    content: list[str] = []
    for line in re.split(r"\r\n|\r|\n", markdown):
        if fence is None:
            m = _FENCE_OPEN.match(line)
            if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
                fence, content = m.group(1), []
            else:
                outside.append(line)
        elif re.fullmatch(rf" {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*", line):
            blocks.append("\n".join(content))
            fence = None
        else:
            content.append(line)
    assert fence is None, f"code fence {fence!r} is never closed"
    return blocks, "\n".join(outside)


def assert_valid(body: str) -> list[str]:
    """At most COMMENT_LIMIT characters, every fence closed, every <details> closed (outside code); the code blocks."""
    assert len(body) <= COMMENT_LIMIT, len(body)
    blocks, outside = split_markdown(body)
    assert outside.count("<details>") == outside.count("</details>")
    return blocks


def failed(error: str, **kw) -> StackResult:
    base = dict(customer="acme", environment="staging", stack="acme/staging", tool="terraform", operation="up", status="failed", error=error)
    return StackResult(**{**base, **kw})


def test_failed_stack_with_a_huge_error_keeps_its_fence_resource_list_and_note():
    error = "\n".join(f"Error: creating aws_instance.app[{i}]: " + "x" * 500 for i in range(400))  # 200 KB
    resources = [ResourceChange(f"aws_instance.app[{i}]", "aws_instance", "create") for i in range(50)]
    body = render_comment(failed(error, resources=resources, changes=Changes(create=50)), mode="apply", sha=SHA, run_url=None)
    (block,) = assert_valid(body)
    assert block.startswith("Error: creating aws_instance.app[0]: xxx")
    assert block in error  # whole lines of the error, nothing else in the fence
    assert "of this error " + NOT_SHOWN in body
    assert "| create | `aws_instance.app[49]` |" in body  # the resource list is still there, after the error
    assert body.rstrip().endswith("</details>")


def test_one_enormous_error_line_is_cut_by_length_with_a_note():
    body = render_comment(failed("E" * 300_000), mode="apply", sha=SHA, run_url=None)
    (block,) = assert_valid(body)
    assert set(block.rstrip("…")) == {"E"} and len(block) < 10_000
    assert re.search(r"_[\d,]+ more characters of this error " + NOT_SHOWN, body)


def test_an_error_containing_a_code_fence_cannot_break_out_of_it():
    error = "provider said:\n```\n# Heading\n<details><summary>x</summary>\n````\nstill the error\r```\rlast line"
    body = render_comment(failed(error), mode="plan", sha=SHA, run_url=None)
    (block,) = assert_valid(body)
    assert block == error.replace("\r", "\n")
    assert "`````text\n" in body  # a fence longer than the longest backtick run (4)
    assert "# Heading" not in split_markdown(body)[1]  # nothing of the error is Markdown outside the fence


def test_skipped_stack_reason_renders_as_plain_text():
    r = failed("locked by [someone](https://evil.example) <img src=x> **now**\n# not a heading", status="skipped")
    body = render_comment(r, mode="plan", sha=SHA, run_url=None)
    headline = body.splitlines()[3]
    assert headline == "Not run: locked by \\[someone\\](https://evil.example) \\<img src=x\\> \\*\\*now\\*\\* # not a heading"


def test_replace_shows_terraform_action_reason_from_a_real_plan():
    plan = json.loads((FIXTURES / "terraform-requires-replace.json").read_text())
    changes, resources = tfplan.summarize(plan)
    (change,) = resources
    assert (change.action, change.action_reason, change.properties) == ("replace", "replace_because_cannot_update", ["ami"])
    r = StackResult("acme", "staging", "acme/staging", "terraform", "preview", "succeeded", changes=changes, resources=resources)
    body = render_comment(r, mode="plan", sha=SHA, run_url=None)
    assert "| replace (cannot be updated in place) | `test_instance.test` | `test_instance` | `ami` |" in body


def test_tainted_replace_from_a_real_opentofu_plan_says_tainted():
    plan = json.loads((FIXTURES / "opentofu-tainted-sensitive-list.json").read_text())
    _, resources = tfplan.summarize(plan)
    tainted = [c for c in resources if c.action_reason == "replace_because_tainted"]
    assert tainted and all(c.action == "replace" for c in tainted)
    r = StackResult("acme", "staging", "acme/staging", "terraform", "preview", "succeeded", resources=resources)
    body = render_comment(r, mode="plan", sha=SHA, run_url=None)
    assert f"| replace (tainted) | `{tainted[0].urn_name}` |" in body


def test_unknown_action_reason_is_shown_escaped():
    r = StackResult("acme", "staging", "acme/staging", "terraform", "preview", "succeeded", resources=[
        ResourceChange("a.b", "a", "replace", action_reason="replace_because_<b>new</b>_reason")])
    body = render_comment(r, mode="plan", sha=SHA, run_url=None)
    assert "| replace (replace\\_because\\_\\<b\\>new\\</b\\>\\_reason) |" in body


def test_huge_outputs_are_left_out_whole_with_a_note():
    outputs = {f"out{i:03d}": "v" * 5000 for i in range(200)}
    r = StackResult("acme", "staging", "acme/staging", "pulumi", "up", "succeeded", changes=Changes(create=1), outputs=outputs)
    body = render_comment(r, mode="apply", sha=SHA, run_url=None)
    assert_valid(body)
    assert re.search(r"_\d+ more outputs " + NOT_SHOWN, body)
    assert "| `out000` | `" + "v" * 100 in body and "…` |" in body


def test_absurd_names_still_give_a_comment_that_is_found_and_fits():
    r = failed("boom", binary="x" * 70_000)
    body = render_comment(r, mode="apply", sha=SHA, run_url=None)
    assert_valid(body)
    assert body.startswith(marker("acme", "staging")) and "not shown" in body


def test_drift_issue_with_thousands_of_drifted_values_stays_within_the_limit_with_a_note():
    resources = [ResourceChange(f"res{i}", "aws_instance", "update",
                                diffs=[{"path": f"p{j}", "old": "o" * 2000, "new": {"k": "n" * 2000}} for j in range(12)])
                 for i in range(300)]
    r = StackResult("acme", "staging", "acme/staging", "terraform", "drift", "succeeded", changes=Changes(update=300), resources=resources)
    issue = render_drift_issue(r, resolved=False, run_url=None)
    body = issue["body"]
    assert_valid(body)
    assert body.startswith("<!-- managed-infra-engine:drift:acme/staging -->")
    assert re.search(r"_\d+ more drifted resources not shown", body)
    assert "| `res0` | `aws_instance` | update | _2 more_ | | |" in body
    assert "To put the deployed state back" in body


def test_configuration_comment_with_many_long_problems_stays_within_the_limit():
    problems = [Problem(file="infra/variables.yml", line=i, key_path=f"environments.e{i}", reason="r" * 3000) for i in range(100)] * 3
    body = render_config_error("acme", "infra/variables.yml", problems, sha=SHA, run_url=None)
    assert_valid(body)
    assert re.search(r"_\d+ more problems not shown", body)


_PIECES = list("`~ab#<>|\n\r\t*_[]\\\x07\x00") + ["\x1b[31m", "```", "````", "\n```\n", "\r\n~~~\r\n", "    ```", "</details>"]
_backticky = st.lists(st.sampled_from(_PIECES), max_size=120).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(error=st.one_of(_backticky, st.builds(lambda a, n: a * n, _backticky, st.integers(1, 400))),
       rows=st.integers(0, 3000), outputs=st.integers(0, 50), status=st.sampled_from(["failed", "skipped", "succeeded"]))
def test_any_error_and_any_number_of_rows_give_a_valid_comment(error, rows, outputs, status):
    resources = [ResourceChange(f"r{i}-" + "n" * 60, "aws:ec2/instance:Instance", "create", ["p" * 40]) for i in range(rows)]
    r = StackResult("acme", "staging", "acme/staging", "pulumi", "up", status, changes=Changes(create=rows), resources=resources,
                    outputs={f"o{i}": "v" * 3000 for i in range(outputs)}, error=error or None)
    body = render_comment(r, mode="apply", sha=SHA, run_url="https://github.com/p/m/actions/runs/1")
    blocks = assert_valid(body)
    assert body.startswith(marker("acme", "staging"))
    if error:
        (shown,) = blocks
        normalized = re.sub(r"\x1b\[[0-9;?]*[ -/]*[@-~]", "", error).replace("\r\n", "\n").replace("\r", "\n")
        normalized = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", lambda m: f"\\x{ord(m.group()):02x}", normalized)
        assert shown.rstrip("…") in normalized  # the fence holds the error, and only the error
    else:
        assert blocks == []
    listed = sum(1 for line in body.splitlines() if line.startswith("| create | `r"))
    if listed < rows:  # rows left out: the comment says how many
        assert f"_{rows - listed} more resource change" in body or "_The details of this result are not shown" in body
    listed = sum(1 for line in body.splitlines() if line.startswith("| `o"))
    if listed < outputs:
        assert f"_{outputs - listed} more output" in body or "_The details of this result are not shown" in body


def test_drift_summary_table_keeps_odd_resource_addresses_inside_their_cells():
    r = StackResult("acme", "staging", "acme/staging", "terraform", "drift", "succeeded", changes=Changes(update=1),
                    resources=[ResourceChange('aws_x.y["a|`b\nc"]', "aws_x", "update")])
    row = render_markdown(DriftReport([StackDrift(None, r)])).splitlines()[2]
    assert row == "| `acme/staging` | terraform | ⚠️ drifted | `aws_x.y[\"a\\|'b\\nc\"]` (update) |"  # the newline shown, not obeyed
