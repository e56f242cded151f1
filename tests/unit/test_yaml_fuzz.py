"""Generated input for the YAML loader, through the real `engine validate FILE` path.

Customer files come from customer repositories: whatever bytes they hold, `engine validate`
must answer with exit 0 (valid) or 2 (bad input, file/line/key named), never a traceback
or an "internal error", and nothing it prints may act on the terminal or the GitHub
Actions runner reading the job log: no control or format character other than the
engine's own newlines, no line that the runner would take for a workflow command
(``::cmd::`` after leading whitespace, ``##[cmd]`` anywhere).  ``--json`` output must stay
valid JSON.

Most examples run `cli.main` in-process with click's CliRunner (milliseconds each); a
handful run the real `engine` process.
"""

from __future__ import annotations

import json
import subprocess
import unicodedata
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cli
from tests.conftest import ENGINE, REPO

UNSAFE_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp", "Cn"}

# Characters that act on a terminal, hide or reorder text, or split lines.
HOSTILE_CHARS = ["\x1b", "\x07", "\x08", "\r", "\n", "\t", "\x00", "\x7f", "\x85", "\x9b", "\u200b", "\u200e",
                 "\u202e", "\u2066", "\u2028", "\u2029", "\ufeff", "\u00ad", "\ud800", "\U000e0001"]
# Sequences that mean something to a terminal or to the Actions runner.
HOSTILE_FRAGMENTS = ["\n::error::pwned", "\n::stop-commands::tok", "\n  ::add-mask::x", "::warning file=a::b",
                     "##[error]pwned", "\x1b[2J\x1b[H", "\x1b]0;title\x07", "\x1b[31mred\x1b[0m", "\u202egnp.exe",
                     "\r\n::notice::x", "\u2028::error::y", "\x9b31m", "##[group]g"]

GOOD_FILE = {"project_name": "shop", "environments": {"staging": {"instance_type": "t3.micro"}}}


def hostile_text(min_size: int = 0) -> st.SearchStrategy[str]:
    pieces = st.one_of(
        st.sampled_from(HOSTILE_CHARS),
        st.sampled_from(HOSTILE_FRAGMENTS),
        st.text(alphabet=st.characters(codec="utf-8"), max_size=6),
        st.sampled_from(["staging", "production", "instance_type", "tags", "environments", ":", "::", "#", "[", " "]),
    )
    return st.lists(pieces, min_size=max(min_size, 1), max_size=6).map("".join)


scalars = st.one_of(hostile_text(), st.integers(-10**6, 10**6), st.booleans(), st.none(),
                    st.sampled_from(["t3.micro", "db.t3.micro", "postgres", "oracle", "1.6"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(hostile_text(1), inner, max_size=3)), max_leaves=8)


@st.composite
def valid_looking_documents(draw) -> str:
    """A near-valid customer file or tenant record with hostile keys and values where the
    validator will quote them: environment names, unknown keys, tags, field values."""
    doc = json.loads(json.dumps(GOOD_FILE))
    where = draw(st.sampled_from(["environment-name", "top-key", "env-key", "tag", "value", "project", "tenant", "anywhere"]))
    key, value = draw(hostile_text(1)), draw(values)
    if where == "environment-name":
        doc["environments"][key] = {"instance_type": draw(st.sampled_from(["t3.micro", key]))}
    elif where == "top-key":
        doc[key] = value
    elif where == "env-key":
        doc["environments"]["staging"][key] = value
    elif where == "tag":
        doc["tags"] = {key: value if draw(st.booleans()) else key}
    elif where == "value":
        field = draw(st.sampled_from(["instance_type", "instance_count", "network_slot", "database", "monitoring"]))
        doc["environments"]["staging"][field] = value
    elif where == "project":
        doc["project_name"] = value
    elif where == "tenant":
        doc = {"customer": draw(st.sampled_from(["shop", key])), "repository": draw(st.sampled_from(["a/b", key])),
               "network_index": 3, draw(st.sampled_from(["source", "display_name", key])): value}
    else:
        doc = draw(st.dictionaries(hostile_text(1), values, min_size=1, max_size=4))
    return yaml.safe_dump(doc, allow_unicode=draw(st.booleans()), default_flow_style=draw(st.sampled_from([None, False, True])))


@st.composite
def raw_yaml_text(draw) -> str:
    """Block-style YAML lines with hostile characters written in raw (not as escapes):
    they reach the scanner's errors and the key-path guess made from raw lines."""
    lines = []
    for _ in range(draw(st.integers(1, 6))):
        indent = " " * draw(st.sampled_from([0, 2, 4]))
        key, value = draw(hostile_text(1)), draw(hostile_text())
        quote = draw(st.sampled_from(["", "'", '"']))
        lines.append(f"{indent}{quote}{key}{quote}: {value}")
    return "\n".join(lines) + draw(st.sampled_from(["", "\n"]))


def assert_safe_output(text: str, what: str) -> None:
    for char in text:
        if char != "\n":
            assert unicodedata.category(char) not in UNSAFE_CATEGORIES, f"{what} has {char!r}:\n{text!r}"
    for line in text.split("\n"):
        assert not line.lstrip().startswith("::"), f"{what} has a workflow command line: {line!r}"
        assert "##[" not in line, f"{what} has a legacy workflow command: {line!r}"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def validate_in_process(path: Path, content: bytes, kind: str, as_json: bool) -> None:
    path.write_bytes(content)
    args = ["validate", str(path), "--kind", kind] + (["--json"] if as_json else [])
    result = CliRunner().invoke(cli.main, args, catch_exceptions=True)
    shown = f"input {content[:300]!r}\nstdout {result.stdout[:2000]!r}\nstderr {result.stderr[:2000]!r}"
    assert not (result.exception and not isinstance(result.exception, SystemExit)), f"{result.exception!r} escaped\n{shown}"
    assert result.exit_code in (0, 2), f"exit {result.exit_code}\n{shown}"
    assert "internal error" not in result.stdout + result.stderr, shown
    assert "Traceback" not in result.stdout + result.stderr, shown
    assert_safe_output(result.stdout, "stdout")
    assert_safe_output(result.stderr, "stderr")
    if as_json:
        data = json.loads(result.stdout)
        assert data["ok"] is (result.exit_code == 0), shown
    elif result.exit_code == 2:
        assert result.stderr.startswith(f"error: {path}"), shown  # names the file first


FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
kinds = st.sampled_from(["auto", "customer", "tenant"])


@FUZZ
@given(content=st.binary(max_size=3000), kind=kinds, as_json=st.booleans())
def test_random_bytes_are_answered_with_exit_0_or_2_and_safe_output(workdir, content, kind, as_json):
    validate_in_process(workdir / "variables.yml", content, kind, as_json)


@FUZZ
@given(document=valid_looking_documents(), kind=kinds, as_json=st.booleans())
def test_valid_looking_yaml_with_hostile_keys_and_values_is_printed_escaped(workdir, document, kind, as_json):
    validate_in_process(workdir / "shop.yml", document.encode("utf-8", "surrogatepass"), kind, as_json)


@FUZZ
@given(document=raw_yaml_text(), kind=kinds, as_json=st.booleans())
def test_raw_control_characters_in_yaml_text_are_printed_escaped(workdir, document, kind, as_json):
    validate_in_process(workdir / "variables.yml", document.encode("utf-8", "surrogatepass"), kind, as_json)


# The real process: stdout/stderr through the interpreter's own streams, as in a job log.
PROCESS_CASES = [
    ("newline-workflow-command-in-key", '"staging\\n::error::pwned": {instance_type: t3.micro}\n'),
    ("stop-commands-in-environment-name", 'project_name: shop\nenvironments:\n  "x\\n::stop-commands::tok":\n    instance_type: t3.micro\n'),
    ("escape-sequences-in-value", 'project_name: "\\e[2J\\e]0;owned\\a"\nenvironments:\n  staging: {instance_type: t3.micro}\n'),
    ("bidi-override-in-unknown-key", 'project_name: shop\nenvironments:\n  staging: {instance_type: t3.micro}\n"\\u202eevil\\u2028::error::x": 1\n'),
    ("legacy-command-in-tag", 'project_name: shop\nenvironments:\n  staging: {instance_type: t3.micro}\ntags:\n  "##[error]x": "\\x9b31m"\n'),
    ("raw-escape-in-plain-key", "project_name: shop\n\x1b[31mkey: 1\n"),
]


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
@pytest.mark.parametrize("case", PROCESS_CASES, ids=[c[0] for c in PROCESS_CASES])
def test_engine_validate_process_prints_hostile_customer_text_escaped(case, as_json, tmp_path):
    _, document = case
    path = tmp_path / "variables.yml"
    path.write_text(document)
    proc = subprocess.run([*ENGINE, "validate", str(path), *(["--json"] if as_json else [])],
                          capture_output=True, cwd=REPO, timeout=60)
    stdout, stderr = proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8")
    assert proc.returncode == 2, (stdout, stderr)
    assert "Traceback" not in stdout + stderr
    assert_safe_output(stdout, "stdout")
    assert_safe_output(stderr, "stderr")
    if as_json:
        assert json.loads(stdout)["ok"] is False
    else:
        assert stderr.startswith(f"error: {path}:"), stderr
