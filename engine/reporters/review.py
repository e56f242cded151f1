"""The PR comment of a review stack that was destroyed (its pull request closed, or `engine gc` expired it).

While it lives, a review stack is reported like any stack (``engine/reporters/github.py``: status
``infra/pr-<number>``, its own comment with the outputs, a deployment); this is the comment's last edit.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from engine.reporters.github import COMMENT_LIMIT, ERROR_CHARS, ERROR_LINES, _TEMPLATES, _code_block, _inline, marker
from engine.results import StackResult, Status

if TYPE_CHECKING:
    from engine.review_loop import GcResult


def render_destroyed(result: StackResult, *, why: str, sha: str | None, run_url: str | None, now: str | None = None) -> str:
    """The review stack's comment after its destroy: what was deleted, or why the destroy failed.

    ``why`` finishes the sentence "Destroyed …", e.g. "when pull request #7 was closed"."""
    gone = result.status in (Status.SUCCEEDED, Status.NOT_DEPLOYED)
    deleted = result.changes.delete
    if gone:
        icon = "🧹"
        what = f"{deleted} resource{'s' if deleted != 1 else ''} deleted" if deleted else "nothing was left to delete"
        headline = f"**Review stack destroyed** {_inline(why)}: {what}. Nothing of it is left."
    else:
        icon = "❌"
        headline = (f"**Destroying the review stack failed** ({_inline(why)}); `engine gc` tries again. "
                    "Until then its resources are still there.")
    context = dict(marker=marker(result.customer, result.environment), icon=icon, customer=result.customer, environment=result.environment,
                   headline=headline, tool=result.tool, sha=sha, run_url=run_url,
                   updated=now or time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    chars = ERROR_CHARS
    while True:
        error = _code_block(result.error, ERROR_LINES, chars) if result.error and not gone else None
        body = _TEMPLATES.get_template("review_destroyed.md.j2").render(error=error, **context)
        if len(body) <= COMMENT_LIMIT or chars < 500:
            return body
        chars //= 4


def render_gc(result: "GcResult") -> str:
    """``engine gc``: one line per live review stack (what happened to it), then the totals."""
    from engine.untrusted import escape_inline

    lines = []
    for c in result.stacks:
        what = {"kept": "kept (deployed within the TTL)", "would-destroy": "would be destroyed (dry run)"}.get(c.action, c.action)
        if c.action == "destroyed" and c.result is not None:
            what = f"destroyed ({c.result.changes.delete} deleted)"
        elif c.action == "failed" and c.result is not None:
            what = f"failed: {escape_inline((c.result.error or 'failed').splitlines()[0])}"
        slot = f"slot {c.stack.slot}" if c.stack.slot is not None else "slot ?"
        lines.append(f"{c.stack.customer}/{c.stack.environment:<12} {slot:<8} last deployed {c.stack.deployed_at} "
                     f"({_ago(c.age_s)} ago)  {what}")
    if not result.stacks:
        lines.append("no review stacks")
    verb = "would destroy" if result.dry_run else "destroyed"
    lines.append(f"gc: {result.count('would-destroy') if result.dry_run else result.count('destroyed')} {verb}, "
                 f"{result.count('failed')} failed, {result.count('kept')} kept (TTL {_ago(result.ttl_s)})")
    return "\n".join(lines)


def _ago(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    return " ".join(parts[:2]) if parts else f"{secs}s"
