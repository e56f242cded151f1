"""Customer text the engine prints is shown, never obeyed (issue 9, items 2 and 13).

A key, an environment name, a value or a tool's error can hold a newline followed by
``::error::`` / ``::stop-commands::`` (a workflow command to the GitHub Actions runner
reading the job log), a terminal escape sequence, or a bidi override that makes text
read differently from what it is.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import cli
from engine.config import TenantRecord
from engine.errors import ConfigError, InputError, Problem
from engine.reporters.console import ConsoleProgress, render_run
from engine.reporters.github import Feedback
from engine.results import Changes, ResourceChange, RunResult, StackResult
from engine.triggers import remote_tenant
from engine.untrusted import escape_inline, escape_lines, neutralize_json

UNSAFE_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp", "Cn"}


def unsafe_chars(text: str, layout: str = "") -> list[str]:
    return [c for c in text if c not in layout and unicodedata.category(c) in UNSAFE_CATEGORIES]


def workflow_command_lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if line.lstrip().startswith("::") or "##[" in line]


# -- the escaping functions ---------------------------------------------------


def test_terminal_and_bidi_characters_are_shown_as_visible_escapes():
    assert escape_inline("\x1b[2Jred") == "\\x1b[2Jred"
    assert escape_inline("\x9b31m") == "\\x9b31m"  # C1 CSI: an escape sequence in one byte
    assert escape_inline("a\u202eexe.txt") == "a\\u202eexe.txt"
    assert escape_inline("x\u2028y\u2029z\u200bw\ufeff") == "x\\u2028y\\u2029z\\u200bw\\ufeff"
    assert escape_inline("\x7f\x00\U000e0001") == "\\x7f\\x00\\U000e0001"
    assert escape_inline("\ud800") == "\\ud800"  # a lone surrogate cannot even be encoded to print


def test_inline_text_is_always_one_line():
    assert escape_inline("staging\n::error::pwned") == "staging\\n::error::pwned"
    assert escape_inline("a\r\nb\tc") == "a\\r\\nb\\tc"


def test_workflow_commands_are_broken_at_line_start_after_whitespace_and_legacy_anywhere():
    assert escape_inline("::stop-commands::tok") == "\\x3a:stop-commands::tok"
    assert escape_inline("  \u00a0::error::x") == "  \u00a0\\x3a:error::x"  # the runner trims leading whitespace
    assert escape_inline("see ##[error]x") == "see #\\x23[error]x"
    assert escape_lines("ok\n\t::add-mask::x\nfine") == "ok\n\t\\x3a:add-mask::x\nfine"


def test_ordinary_text_is_unchanged():
    for text in ["environments.staging.instance_type", "unknown key (did you mean 'tags'?)", "日本語 é ü ±", "a::b", "urn:pulumi:s::p::t::n", "C:\\path"]:
        assert escape_inline(text) == text
    assert escape_lines("line one\n    line two\twith tab") == "line one\n    line two\twith tab"


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=()), max_size=40))
def test_any_text_escaped_has_no_unsafe_character_and_no_workflow_command(text):
    inline, lines = escape_inline(text), escape_lines(text)
    assert "\n" not in inline and not unsafe_chars(inline)
    assert not unsafe_chars(lines, layout="\n\t")
    assert not workflow_command_lines(inline) and not workflow_command_lines(lines)
    assert escape_inline(inline) == inline and escape_lines(lines) == lines  # escaping twice changes nothing
    assert lines.count("\n") == text.count("\n")  # the layout newlines are kept, no more


def test_json_keeps_its_value_without_a_legacy_workflow_command():
    import json

    text = neutralize_json(json.dumps({"k": "##[error]x", "##[group]": 1}))
    assert "##[" not in text
    assert json.loads(text) == {"k": "##[error]x", "##[group]": 1}


# -- errors are safe by construction -------------------------------------------


def test_problem_line_escapes_the_key_the_reason_and_the_file():
    problem = Problem("in\x1bfra.yml", 3, "environments.sta\nging\u202e", "'\x07' ##[error] is wrong")
    text = str(problem)
    assert text == "in\\x1bfra.yml:3: environments.sta\\nging\\u202e: '\\x07' #\\x23[error] is wrong"
    assert problem.to_dict() == {"file": "in\\x1bfra.yml", "line": 3, "key": "environments.sta\\nging\\u202e",
                                 "reason": "'\\x07' #\\x23[error] is wrong"}


def test_engine_error_message_and_hint_are_escaped_but_keep_their_line_layout():
    err = InputError("no environment 'qa\x1b[2J'\n::error::second line", hint="hint \u202e\n::warning::x")
    assert err.message == "no environment 'qa\\x1b[2J'\n\\x3a:error::second line"
    assert err.hint == "hint \\u202e\n\\x3a:warning::x"
    assert str(err) == err.message and err.to_dict()["message"] == err.message


def test_config_error_lists_one_escaped_line_per_problem():
    err = ConfigError([Problem("f.yml", 2, "a\n::error::b", "unknown key"), Problem("f.yml", 3, "c", "x\ny")])
    assert err.message.split("\n") == ["f.yml:2: a\\n::error::b: unknown key", "f.yml:3: c: x\\ny"]


def test_key_with_newline_and_workflow_command_is_reported_on_one_escaped_line(tmp_path: Path):
    path = tmp_path / "variables.yml"
    path.write_text('project_name: shop\nenvironments:\n  staging: {instance_type: t3.micro}\n"x\\n::error::pwned\\e[2J": 1\n')
    result = CliRunner().invoke(cli.main, ["validate", str(path)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {path}:4: x\\n::error::pwned\\x1b[2J: unknown key")
    assert not workflow_command_lines(result.stderr) and not unsafe_chars(result.stderr, layout="\n")


def test_yaml_syntax_error_quotes_a_raw_key_escaped(tmp_path: Path):
    path = tmp_path / "variables.yml"
    # a raw TAB ends the plain key, the scanner fails; the key path is guessed from the raw line
    path.write_bytes(b"project_name: shop\nenvironments:\n  \xe2\x80\xaeevil:\n\t  x: 1\n")
    result = CliRunner().invoke(cli.main, ["validate", str(path)])
    assert result.exit_code == 2
    assert "\\u202eevil" in result.stderr and not unsafe_chars(result.stderr, layout="\n")


# -- the console reporter ------------------------------------------------------


def hostile_stack(status: str) -> StackResult:
    return StackResult(
        customer="shop", environment="staging", stack="shop-staging", tool="pulumi", operation="up", status=status,
        changes=Changes(create=1), error="provider said: bad value 'x\x1b]0;owned\x07'\r\n::error::injected\u2028::warning::y",
        outputs={"url\n::error::k": "http://x\x1b[31m", "tags": {"##[error]": "\u202e"}},
        resources=[ResourceChange(urn_name="web\n::stop-commands::t", type="engine:local:Instance", action="create",
                                  properties=["tags.\x1bx"])],
        binary="tofu\r ok\x1b[0m",
    )


def test_console_shows_hostile_outputs_resources_and_errors_escaped():
    for status in ("succeeded", "failed"):
        text = render_run(RunResult(customer="shop", operation="up", stacks=[hostile_stack(status)]))
        assert not unsafe_chars(text, layout="\n"), text
        assert not workflow_command_lines(text), text
    failed = render_run(RunResult(customer="shop", operation="up", stacks=[hostile_stack("failed")]))
    assert "    provider said: bad value 'x\\x1b]0;owned\\x07'\n    \\x3a:error::injected\\u2028::warning::y\n" in failed
    ok = render_run(RunResult(customer="shop", operation="up", stacks=[hostile_stack("succeeded")]))
    assert "url\\n::error::k  http://x\\x1b[31m" in ok and "web\\n::stop-commands::t" in ok


def test_live_progress_escapes_tool_messages():
    import io

    from engine.stream import Notice, ResourceStep

    class Target:
        fqn = "shop/staging"

    stream = io.StringIO()
    ConsoleProgress(stream)(Notice(Target(), "creating web\n::error::x \x1b[2K"))
    assert stream.getvalue().endswith("creating web\\n::error::x \\x1b[2K\n")
    ConsoleProgress(stream)(ResourceStep(Target(), "create", "web\n::error::y", "local:Instance"))
    assert stream.getvalue().endswith("create   web\\n::error::y (local:Instance)\n")


# -- item 13: a missing customer file in a commit status -----------------------


class MissingFileAPI:
    """The two reads remote_tenant makes and the status Feedback writes; the file is not there."""

    def __init__(self):
        self.statuses: list[dict] = []

    def custom_properties(self, repository):
        return {}

    def file_at(self, repository, path, ref):
        return None

    def create_status(self, repository, sha, body):
        self.statuses.append(body)


def test_missing_customer_file_status_says_file_not_found_without_line_none():
    api = MissingFileAPI()
    record = TenantRecord(customer="shop", repository="shop-org/app", network_index=3)
    sha = "0123456789abcdef0123456789abcdef01234567"
    try:
        remote_tenant(api, record, sha)
    except ConfigError as exc:
        Feedback(api, record.repository, sha, None, "plan", sleep=lambda _s: None).config_rejected("shop", record.config_path, exc.problems)
    else:
        raise AssertionError("a missing customer file must be a ConfigError")
    (status,) = api.statuses
    assert status["state"] == "failure"
    assert status["description"].startswith("infra/variables.yml: file not found"), status
    assert "None" not in status["description"] and "<document>" not in status["description"]


def test_status_summary_names_line_and_key_and_counts_several_problems():
    problems = [Problem("f", 3, "environments.staging", "unknown key"), Problem("f", 5, "tags", "bad\x1b")]
    assert problems[0].summary() == "line 3: environments.staging: unknown key"
    api = MissingFileAPI()
    Feedback(api, "o/r", "a" * 40, None, "plan", sleep=lambda _s: None).config_rejected("shop", "infra/variables.yml", problems)
    assert api.statuses[0]["description"] == "infra/variables.yml: 2 problems; line 3: environments.staging: unknown key"
    assert Problem("f", None, "<document>", "file not found").summary() == "file not found"
