"""A provider change rolled out to the fleet: ONE summary comment on the manager pull request, and the full plan.

Fed by the fleet result (``engine.fanout.FleetResult``): the plan of every affected customer ×
environment on the pull request, the apply results collected from the rollout's jobs after the
merge.  The comment is found by a hidden marker and edited in place, with the write discipline of
the customer feedback (``engine.reporters.github.Feedback``): only the engine's own comment is
edited, a retry re-reads first, and an unchanged comment is not written again.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import jinja2

from engine.fanout import FleetResult
from engine.reporters.github import COMMENT_LIMIT, Feedback, render_comment
from engine.results import StackResult

MARKER = "<!-- managed-infra-engine:rollout -->"  # ':' is in no customer id: never a stack comment's marker
DETAILS_LIMIT = 900_000  # a job summary holds at most 1 MiB per step; the JSON artifact has everything
ERROR_CHARS = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=False, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined,
)

_ICONS = {"succeeded": "✅", "failed": "❌", "skipped": "⏭️", "not-deployed": "➖"}
_WORDS = {"plan": {"succeeded": "planned", "failed": "plan failed", "skipped": "not planned", "not-deployed": "not deployed"},
          "apply": {"succeeded": "applied", "failed": "failed", "skipped": "not run", "not-deployed": "not deployed"}}


def _code(text: object, limit: int = ERROR_CHARS) -> str:
    """Untrusted text as an inline code span in a table cell or list item: one line, clipped, nothing to break out with."""
    one = " ".join(_CONTROL.sub(" ", str(text)).split())
    if len(one) > limit:
        one = one[: limit - 1] + "…"
    return "`" + (one.replace("|", "\\|").replace("`", "'") or " ") + "`"


@dataclass
class Row:
    customer: str
    environment: str
    tool: str
    status: str
    changes: dict
    error: str | None

    @property
    def stack(self) -> str:
        return f"{self.customer}/{self.environment}"


def _rows(fleet: FleetResult) -> list[Row]:
    rows: list[Row] = []
    for run in fleet.runs:
        if run.result is None:  # the customer's worker printed no result at all (bad customer file, crash)
            rows.append(Row(run.customer, "*", "-", "failed", {}, run.error or "no result"))
        for s in run.stacks:
            rows.append(Row(s["customer"], s["environment"], s["tool"], s["status"], s.get("changes") or {}, s.get("error")))
    return rows


def _headline(mode: str, rows: list[Row]) -> tuple[str, str]:
    customers = len({r.customer for r in rows})
    stacks = f"{len(rows)} stack{'s' if len(rows) != 1 else ''} of {customers} customer{'s' if customers != 1 else ''}"
    failed = sum(1 for r in rows if r.status == "failed")
    if not rows:
        return "ℹ️", "Provider change: no customer's stacks are affected"
    if failed:
        return "❌", f"Provider change {'plan' if mode == 'plan' else 'rollout'}: {failed} of {stacks} failed"
    if mode == "plan":
        return "📝", f"Provider change plan: {stacks}"
    return "🚀", f"Provider change applied: {stacks}"


def render_summary(fleet: FleetResult, *, mode: str, run_url: str | None, now: str | None = None) -> str:
    """The summary comment: affected customers, one row per stack with its change counts and a link to the
    full plan (the run), and who failed.  At most ``COMMENT_LIMIT`` characters (rows left out with a note)."""
    rows = _rows(fleet)
    icon, title = _headline(mode, rows)
    failed = [r for r in rows if r.status == "failed"]
    customers = sorted({r.customer for r in rows})
    shown, shown_failed = list(rows), list(failed)
    while True:
        body = _TEMPLATES.get_template("rollout_summary.md.j2").render(
            marker=MARKER, icon=icon, title=title, mode=mode, customers=customers, rows=shown, hidden=len(rows) - len(shown),
            failed=shown_failed, hidden_failed=len(failed) - len(shown_failed), icons=_ICONS, words=_WORDS[mode], code=_code,
            run_url=run_url, updated=now or time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
        if len(body) <= COMMENT_LIMIT:
            return body
        if shown:
            shown = shown[: len(shown) * 3 // 4]
        elif shown_failed:
            shown_failed = shown_failed[: len(shown_failed) * 3 // 4]
        else:  # only absurdly many customer names are left: name none of them
            customers = []


def render_details(fleet: FleetResult, *, mode: str, run_url: str | None, limit: int = DETAILS_LIMIT) -> str:
    """The full plan (or apply result) of every stack, for the job summary the comment links to: each stack as its
    own comment would show it.  Stacks beyond ``limit`` characters are named, not shown (the JSON artifact has them)."""
    parts = [f"## {_headline(mode, _rows(fleet))[1]}\n"]
    size, left_out = len(parts[0]), []
    for run in fleet.runs:
        if run.result is None:
            parts.append(f"### ❌ `{run.customer}`\n\n{_code(run.error or 'no result')}\n")
            continue
        for s in run.stacks:
            text = render_comment(StackResult.from_dict(s), mode="plan" if mode == "plan" else "apply", sha=None, run_url=run_url, now="-")
            # the hidden marker and the "edited in place" footer belong to comments, not to a job summary
            text = "\n".join(line for line in text.split("\n")[1:] if not (line.startswith("<sub>") and "edited in place" in line))
            if size + len(text) > limit:
                left_out.append(f"{s['customer']}/{s['environment']}")
                continue
            parts.append(text)
            size += len(text)
    if left_out:
        parts.append(f"_{len(left_out)} more stack{'s' if len(left_out) != 1 else ''} not shown here to stay within the job "
                     f"summary's size limit: {', '.join(left_out[:50])}{' …' if len(left_out) > 50 else ''}; the JSON artifact has every one._\n")
    return "\n".join(parts)


@dataclass
class SummaryComment(Feedback):
    """Writes the one summary comment on the manager pull request, the way ``Feedback`` writes a stack's."""

    def upsert(self, body: str) -> str:
        """Edit the engine's summary comment, or create it once; what was done: created, updated, unchanged or failed."""
        if self.pr is None:
            return "no pull request"
        return self.upsert_marked(MARKER, body, "the summary comment")
