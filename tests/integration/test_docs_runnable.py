"""Every shell block the docs mark runnable runs as written (docs/TESTING.md, "Runnable blocks").

A block is runnable when its fence's info string is exactly ``sh runnable``::

    ```sh runnable
    .venv/bin/engine validate examples/acme/infra/variables.yml
    ```

Each block runs on its own, as a reader would paste it: ``bash -euo pipefail`` in a fresh copy of
the repository's files (tracked, plus new files git does not ignore) with ``.venv`` linked in, a fresh
``ENGINE_HOME`` and ``TMPDIR``, and no GitHub, cloud or engine settings from the caller's environment.
A block in a customer document (under ``templates/customer/``) runs in that folder — the root of the
customer's repository it is copied to — with the engine on ``PATH``, as a customer who installed it has.
A failing command fails the test naming the document and the line of that command.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO

MARKER = ("sh", "runnable")
# Documents that must keep at least one runnable block: losing the marker must not make their test vanish.
MUST_HAVE_RUNNABLE = ("docs/COMPLIANCE.md", "docs/TESTING.md", "docs/PATTERNS.md", "docs/CUSTOM-PROPERTIES.md", "templates/customer/infra/README.md")
CUSTOMER_ROOT = "templates/customer"
BLOCK_TIMEOUT_S = 300
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_FAILED_AT = "@@docs-block-failed-at "
# Settings a block must not inherit: credentials and endpoints that would make it talk to a real service,
# and engine settings that would point it at the caller's state.
_DROPPED = ("GITHUB_", "ENGINE_", "PULUMI_", "AWS_", "ARM_", "AZURE_", "GOOGLE_", "CLOUDSDK_", "TF_")
_KEPT = ("ENGINE_TOOL_CACHE",)


@dataclass(frozen=True)
class Block:
    doc: str  # path relative to the repository root
    line: int  # line of the block's first command line in the document (1-based)
    body: str

    @property
    def runs_in(self) -> str:
        """Where the block runs, relative to the repository root."""
        return CUSTOMER_ROOT if self.doc.startswith(CUSTOMER_ROOT + "/") else "."

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}"


def extract(doc: str, text: str) -> tuple[list[Block], list[str]]:
    """The runnable blocks of one Markdown document, and problems: a fence whose info string mentions
    ``runnable`` but is not exactly ``sh runnable`` (a typo must not silently turn a test off), or a
    runnable block that is never closed."""
    blocks: list[Block] = []
    problems: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, indent, words = opening["fence"], len(opening["indent"]), opening["info"].split()
        start = i + 1
        i += 1
        while i < len(lines):
            closing = _FENCE.match(lines[i])
            if closing and closing["fence"][0] == fence[0] and len(closing["fence"]) >= len(fence) and not closing["info"].strip():
                break
            i += 1
        runnable = tuple(words) == MARKER
        if "runnable" in words and not runnable:
            problems.append(f"{doc}:{start}: info string {opening['info'].strip()!r}: a runnable block is marked exactly 'sh runnable'")
        elif runnable and i >= len(lines):
            problems.append(f"{doc}:{start}: runnable block is never closed")
        elif runnable:
            body = "\n".join(line[indent:] if line[:indent].strip() == "" else line for line in lines[start:i])
            blocks.append(Block(doc, start + 1, body + "\n"))
        i += 1
    return blocks, problems


def repository_files() -> list[str]:
    """Tracked files and new ones git does not ignore (what a commit of this checkout would hold)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout
    return sorted({name for name in listed.split("\0") if name and os.path.lexists(REPO / name)})


def collect() -> tuple[list[Block], list[str]]:
    blocks: list[Block] = []
    problems: list[str] = []
    for name in repository_files():
        if name.endswith(".md"):
            found, wrong = extract(name, (REPO / name).read_text(encoding="utf-8"))
            blocks += found
            problems += wrong
    return blocks, problems


def copy_repository(dest: Path) -> Path:
    for name in repository_files():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target, follow_symlinks=False)
    if (REPO / ".venv").exists():
        (dest / ".venv").symlink_to(REPO / ".venv")
    return dest


def block_env(home: Path, tmp: Path, customer_doc: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in _KEPT or not k.startswith(_DROPPED)}
    env.update({"ENGINE_HOME": str(home), "TMPDIR": str(tmp)})
    env.pop("VIRTUAL_ENV", None)
    if customer_doc:
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_block(block: Block, work: Path, timeout: float = BLOCK_TIMEOUT_S) -> tuple[bool, str]:
    """Run one block in a fresh copy of the repository under ``work``: (succeeded, what to tell the reader)."""
    repo = copy_repository(work / "repo")
    home, tmp = work / "engine-home", work / "tmp"
    home.mkdir()
    tmp.mkdir()
    script = work / "block.sh"
    # The trap names the failing command's line; the block's own lines start on the script's second line.
    script.write_text(f"trap 'echo \"{_FAILED_AT}$LINENO\" >&2' ERR\n" + block.body)
    try:
        proc = subprocess.run(["bash", "-euo", "pipefail", str(script)], cwd=repo / block.runs_in, capture_output=True, text=True,
                              env=block_env(home, tmp, block.runs_in != "."), timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        return False, f"{block}: the block did not finish within {timeout:.0f} s\n{_tail(exc.stderr)}"
    if proc.returncode == 0:
        return True, ""
    where, command = str(block), "(the block)"
    stderr = [line for line in proc.stderr.splitlines() if not line.startswith(_FAILED_AT)]
    failed = [line[len(_FAILED_AT):] for line in proc.stderr.splitlines() if line.startswith(_FAILED_AT)]
    if failed and failed[-1].isdigit():
        index = int(failed[-1]) - 2  # the block's own lines start on the script's second line
        where = f"{block.doc}:{block.line + index}"
        lines = block.body.splitlines()
        command = lines[index].strip() if 0 <= index < len(lines) else command
    return False, (f"{where}: `{command}` failed (exit {proc.returncode}) in the runnable block at {block}\n"
                   f"--- stdout (end) ---\n{_tail(proc.stdout)}\n--- stderr (end) ---\n{_tail(chr(10).join(stderr))}")


def _tail(text: str | bytes | None, lines: int = 40) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return "\n".join((text or "").splitlines()[-lines:])


BLOCKS, PROBLEMS = collect()


@pytest.mark.parametrize("block", BLOCKS, ids=str)
def test_runnable_block_runs_as_written(block: Block, tmp_path: Path):
    ok, message = run_block(block, tmp_path)
    assert ok, message


def test_runnable_markers_are_well_formed_and_present():
    assert PROBLEMS == []
    marked = {b.doc for b in BLOCKS}
    missing = [doc for doc in MUST_HAVE_RUNNABLE if doc not in marked]
    assert missing == [], f"these documents lost their runnable blocks: {missing}"


def test_a_failing_command_is_reported_with_its_document_line(tmp_path: Path):
    text = "# Title\n\nProse.\n\n```sh runnable\necho first\ntest 1 -eq 2   # fails\necho never\n```\n\n```bash runnable\n```\n"
    (block,), problems = extract("docs/EXAMPLE.md", text)
    assert block.line == 6 and problems == ["docs/EXAMPLE.md:11: info string 'bash runnable': a runnable block is marked exactly 'sh runnable'"]
    ok, message = run_block(block, tmp_path)
    assert not ok and message.startswith("docs/EXAMPLE.md:7: `test 1 -eq 2   # fails` failed (exit 1)"), message


def test_a_block_cannot_reach_the_callers_engine_state_or_github(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "not-a-real-token")
    monkeypatch.setenv("ENGINE_HOME", str(tmp_path / "callers-home"))
    text = '```sh runnable\ntest -z "${GITHUB_TOKEN:-}"\ntest "$ENGINE_HOME" != "' + str(tmp_path / "callers-home") + '"\n' \
           'test -f stacks/acme.yml && test -x .venv/bin/engine\n```\n'
    (block,), _ = extract("docs/EXAMPLE.md", text)
    ok, message = run_block(block, tmp_path / "work")
    assert ok, message
