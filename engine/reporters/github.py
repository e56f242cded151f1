"""Feedback in the customer's repository: commit statuses, one PR comment per stack, deployments.

Shared by the Pulumi and Terraform paths: it only sees ``StackResult``s.  Feedback is
best effort — a failed GitHub call is recorded and never fails, repeats or hides a
deployment.  Writes that GitHub may have applied before failing (a timeout, a 5xx) are
retried only after re-reading, so a comment or a deployment is never created twice.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import jinja2

from engine.errors import Problem
from engine.github import GitHubAPI
from engine.planning import StackTarget
from engine.results import Changes, ResourceChange, StackResult

COMMENT_LIMIT = 65_536  # GitHub's limit for a comment or issue body, in characters
STATUS_DESCRIPTION_LIMIT = 140
ERROR_LINES = 40  # an error in a comment: its first lines …
ERROR_CHARS = 8_000  # … and at most this much of them; the run log has the rest
CELL_CHARS = 1_000  # one table cell (an output value, a drifted value)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_INLINE_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&!])")


def _cell(value: object, limit: int = CELL_CHARS) -> str:
    """Text for one table cell, usually inside a code span: one line, no pipe or backtick to break out with."""
    text = _CONTROL.sub(" ", str(value).replace("\n", " ").replace("\t", " "))
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("|", "\\|").replace("`", "'")


def _inline(text: str, limit: int = 300) -> str:
    """Untrusted text as plain Markdown in a sentence: one line, clipped, every markup character escaped."""
    text = " ".join(_CONTROL.sub(" ", _ANSI.sub("", text)).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return _INLINE_SPECIAL.sub(r"\\\1", text)


_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=False, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined,
)
_TEMPLATES.filters["cell"] = _cell
_TEMPLATES.filters["inline"] = _inline

# Terraform's action_reason codes (a display hint whose set may grow: unknown codes are shown as they are)
ACTION_REASONS = {
    "replace_because_tainted": "tainted",
    "replace_because_cannot_update": "cannot be updated in place",
    "replace_by_request": "replacement requested",
    "replace_by_triggers": "a replace_triggered_by reference changed",
    "delete_because_no_resource_config": "no longer in the configuration",
    "delete_because_no_module": "its module was removed",
    "delete_because_wrong_repetition": "count/for_each changed",
    "delete_because_count_index": "count index out of range",
    "delete_because_each_key": "for_each key removed",
    "delete_because_no_move_target": "moved to an address that does not exist",
}
_TEMPLATES.filters["reason"] = lambda code: ACTION_REASONS.get(str(code)) or _inline(str(code), 100)


def marker(customer: str, environment: str) -> str:
    """The hidden line that identifies the engine's comment for one stack."""
    return f"<!-- managed-infra-engine:{customer}/{environment} -->"


def status_context(environment: str, stage: str | None = None) -> str:
    """``infra/<env>`` is the final answer; ``infra/<env>/plan`` is the plan step of an apply flow."""
    return f"infra/{environment}" + (f"/{stage}" if stage else "")


def _clip(text: str, limit: int = STATUS_DESCRIPTION_LIMIT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _changes_only(result: StackResult) -> str:
    c = result.changes
    parts = [f"{n} to {verb}" for verb, n in (("create", c.create), ("update", c.update), ("replace", c.replace), ("delete", c.delete)) if n]
    return ", ".join(parts)


@dataclass
class _CodeBlock:
    """Text for a fenced code block: a fence longer than any backtick run in it, and what was left out."""

    text: str
    fence: str
    hidden: str | None  # "1,234 more characters (56 more lines)" or None


def _code_block(text: str, max_lines: int, max_chars: int) -> _CodeBlock:
    # a lone \r ends a line in Markdown too: normalize before counting backticks, so no line can close the fence
    text = _ANSI.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text).strip("\n")
    shown = "\n".join(text.split("\n")[:max_lines])
    ellipsis = ""
    if len(shown) > max_chars:
        cut = shown.rfind("\n", 0, max_chars)
        shown, ellipsis = (shown[:cut], "") if cut > max_chars // 2 else (shown[:max_chars], "…")
    hidden = None
    if len(shown) < len(text):
        lines = text.count("\n") - shown.count("\n")
        hidden = f"{len(text) - len(shown):,} more characters" + (f" ({lines:,} more line{'s' if lines != 1 else ''})" if lines else "")
    longest = max((len(run) for run in re.findall(r"`+", shown)), default=0)
    return _CodeBlock(shown + ellipsis, "`" * max(3, longest + 1), hidden)


# Rows of the resource table: what destroys first (it is what a reviewer must not miss, and what stays when
# rows are left out for size), then by name.  Pulumi reports resources in the order its parallel steps finish,
# which differs between runs of the same plan; a fixed order makes the same plan the same comment.
_ACTION_ORDER = {"delete": 0, "replace": 1, "update": 2, "create": 3, "move": 4}


def _row_order(change: ResourceChange) -> tuple:
    return (_ACTION_ORDER.get(change.action, len(_ACTION_ORDER)), change.urn_name, change.type, change.action, change.moved_from or "")


def render_comment(result: StackResult, *, mode: str, sha: str | None, run_url: str | None, now: str | None = None) -> str:
    """The PR comment for one stack: summary first, details folded, within GitHub's size limit.

    The comment is always valid Markdown of at most ``COMMENT_LIMIT`` characters: an error
    sits in a fence no line of it can close, and what does not fit is left out a whole
    section part at a time (resource rows, output rows, then error text), each with a note.
    The same result always renders the same text apart from ``now`` (rows and their changed
    properties in a fixed order), so ``Feedback.upsert_comment`` can leave an unchanged comment alone.
    """
    ok = result.status == "succeeded"
    total = result.changes.total_changes
    title = "infra plan" if mode == "plan" else "infra apply"
    if result.status == "skipped":
        icon, headline = "⏭️", f"Not run: {_inline(result.error or 'skipped')}"
    elif result.status == "blocked":
        icon, headline = "🛑", ("**Blocked by policy.** This plan would not be applied: a policy denies it." if mode == "plan"
                                else "**Blocked by policy.** Nothing was applied: a policy denied this plan.")
    elif result.operation == "rollback":
        source = result.rollback
        where = f"run {source.source_run}" + (f" (commit `{source.source_sha[:7]}`)" if source and source.source_sha else "") if source else "an earlier deploy"
        icon, headline = ("↩️", f"**Rolled back to {where}:** {_changes_only(result) or 'no changes were needed'}.") if ok else (
            "❌", f"**Rollback to {where} failed.**")
    elif result.tests is not None and result.tests.status != "passed":
        icon, headline = "❌", "**Applied, but the post-deploy tests failed.**" + (
            " The environment was rolled back to its last good deploy." if (result.rolled_back or {}).get("status") == "succeeded" else "")
    elif not ok:
        icon, headline = "❌", f"**{'Plan' if mode == 'plan' else 'Apply'} failed.**"
    elif mode == "plan":
        icon, headline = ("📝", f"**Plan: {_changes_only(result)}** ({result.changes.same} unchanged).") if total else ("✅", "**No changes.** Infrastructure matches the configuration.")
    else:
        icon, headline = "🚀", f"**Applied: {_changes_only(result)}** ({result.changes.same} unchanged)." if total else "**Applied: no changes were needed.**"
    resources = [replace(c, properties=sorted(set(c.properties))) for c in sorted(result.resources, key=_row_order)]
    rolled_back = result.rolled_back if (result.rolled_back or {}).get("status") == "succeeded" else None
    shown_values = rolled_back.get("outputs", {}) if rolled_back else result.outputs  # after a rollback: what is deployed now
    outputs = [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in sorted(shown_values.items())]
    context = dict(marker=marker(result.customer, result.environment), icon=icon, title=title, r=result, headline=headline,
                   policy=_policy_view(result.policy), cost=_cost_view(result.cost),
                   binary=result.details.get("binary"), sha=sha, run_url=run_url, updated=now or time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                   resources=resources, outputs=outputs, ansible=result.details.get("ansible"), tests=result.tests,
                   rolled_back=_rolled_back_view(result.rolled_back), outputs_after_rollback=rolled_back is not None)
    template = _TEMPLATES.get_template("stack_comment.md.j2")
    error_chars = ERROR_CHARS
    shown, shown_outputs = list(resources), list(outputs)
    while True:
        # a block's reason is the Policy section above, failed tests' the Post-deploy tests section: not repeated as an error
        repeated = result.status == "blocked" or (result.tests is not None and result.tests.status != "passed")
        error = _code_block(result.error, ERROR_LINES, error_chars) if result.error and not repeated else None
        body = template.render(shown=shown, hidden=len(resources) - len(shown), shown_outputs=shown_outputs,
                               hidden_outputs=len(outputs) - len(shown_outputs), error=error, **context)
        if len(body) <= COMMENT_LIMIT:
            return body
        # leave out whole rows (the details), then error text (the headline of a failure), and say so each time
        if shown:
            shown = shown[: len(shown) * 3 // 4]
        elif shown_outputs:
            shown_outputs = shown_outputs[: len(shown_outputs) * 3 // 4]
        elif error_chars > 500:
            error_chars //= 4
        else:
            return _too_long(context["marker"], f"### {icon} {title} · `{_cell(result.customer, 100)}` / `{_cell(result.environment, 100)}`", headline)


def _rolled_back_view(rolled: dict | None) -> dict | None:
    """An automatic rollback after failed post-deploy tests, as the comment tells it."""
    if rolled is None:
        return None
    changes = Changes(**rolled["changes"]) if rolled.get("changes") else Changes()
    sha = rolled.get("source_sha")
    return {"status": rolled.get("status"), "source": f"run {rolled.get('source_run')}" + (f" (commit `{sha[:7]}`)" if sha else ""),
            "changes": changes.describe(), "error": (rolled.get("error") or "").splitlines()[0] if rolled.get("error") else ""}


def rolled_back_description(result: StackResult) -> str:
    """The status text of a failed deploy that was rolled back: the rollback first (it is the environment's state now)."""
    rolled = result.rolled_back or {}
    why = (result.error or "failed").splitlines()[0]
    if rolled.get("status") == "succeeded":
        sha = rolled.get("source_sha")
        return f"rolled back to run {rolled.get('source_run')}" + (f" ({sha[:7]})" if sha else "") + f" after: {why}"
    if rolled.get("status"):
        return f"{why}; rollback {rolled['status']}: {(rolled.get('error') or '').splitlines()[0] if rolled.get('error') else ''}"
    return why


def _policy_view(policy: dict | None) -> dict | None:
    if policy is None:
        return None
    decisions = policy.get("decisions") or []
    return {"denies": [d for d in decisions if d.get("level") == "deny"], "warns": [d for d in decisions if d.get("level") == "warn"]}


def _money(value: float, currency: str) -> str:
    return f"{'$' if currency == 'USD' else currency + ' '}{value:,.2f}"


def _cost_view(cost: dict | None) -> dict | None:
    if not cost or "monthly_after" not in cost:
        return None
    currency, before, after = cost.get("currency", "USD"), cost.get("monthly_before") or 0.0, cost["monthly_after"]
    delta = round(after - before, 2)
    return {"after": _money(after, currency), "before": _money(before, currency),
            "delta": ("+" if delta > 0 else "−") + _money(abs(delta), currency) if delta else "",
            "not_priced": len(cost.get("not_priced") or []), "as_of": cost.get("catalog_as_of", "?"), "region": cost.get("region", "?")}


def policy_status(result: StackResult) -> tuple[str, str] | None:
    """``infra/<env>/policy``: failure on a deny, success otherwise (with the warnings counted); None when not judged."""
    view = _policy_view(result.policy)
    if view is None:
        return None
    if view["denies"]:
        first = view["denies"][0]["message"]
        more = len(view["denies"]) - 1
        return "failure", f"denied: {first}" + (f" (+{more} more)" if more else "")
    warns = len(view["warns"])
    return "success", f"passed, {warns} warning{'s' if warns != 1 else ''}" if warns else "passed"


# When and by which run a comment was last written: the only parts of a comment that differ between two runs
# reporting the same result.  They are left out when deciding whether a comment needs an edit.
_WRITTEN_BY = re.compile(r" · updated \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC| · \[run log\]\([^)\s]*\)")


def comment_content(body: str) -> str:
    """What a comment says, without when and by which run it was written (``updated …``, the run log link).

    Two runs that report the same result for the same commit give the same content; the engine edits a
    comment only when its content changes, so re-running a plan that changes nothing makes no write.
    """
    return _WRITTEN_BY.sub("", body.replace("\r\n", "\n"))


def _too_long(mark: str, title: str, headline: str) -> str:
    """The last resort when even the shortest rendering does not fit (absurdly long names): still valid, still found."""
    return f"{mark}\n{title}\n\n{headline}\n\n_The details of this result are not shown: they do not fit GitHub's comment size limit; see the run log._\n"


def render_config_error(customer: str, path: str, problems: list[Problem], *, sha: str | None, run_url: str | None) -> str:
    """The comment for a rejected customer file: one row per problem, as many as fit, with a note for the rest."""
    shown = problems[:100]
    while True:
        body = _TEMPLATES.get_template("config_error.md.j2").render(
            marker=marker(customer, "configuration"), customer=customer, path=path, problems=shown, hidden=len(problems) - len(shown),
            sha=sha, run_url=run_url)
        if len(body) <= COMMENT_LIMIT:
            return body
        if not shown:
            return _too_long(marker(customer, "configuration"), f"### ❌ infra configuration · `{_cell(customer, 100)}`",
                             f"`{_cell(path, 200)}` was not accepted; nothing was planned or deployed.")
        shown = shown[: len(shown) * 3 // 4]


@dataclass
class Feedback:
    """Reports one run to one repository.  Every method is best effort and returns nothing useful to fail on."""

    api: GitHubAPI
    repository: str
    sha: str | None
    pr: int | None
    mode: str
    run_url: str | None = None
    requested_mode: str | None = None
    attempts: int = 3
    sleep: Callable[[float], None] = time.sleep
    log: list[str] = field(default_factory=list)  # what failed, for the run's output
    _reported: dict[str, StackResult] = field(default_factory=dict, repr=False)  # the last result reported per environment

    # -- best effort -----------------------------------------------------

    def _try(self, what: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - feedback must never change the outcome of a deployment
            self.log.append(f"{what}: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")
            return None

    def _attempts(self) -> Iterator[int]:
        """The one retry schedule of every write: ``attempts`` tries, backing off 1, 2, 4 … (≤ 10) seconds between them."""
        for attempt in range(self.attempts):
            if attempt:
                self.sleep(min(2 ** (attempt - 1), 10))
            yield attempt

    @property
    def _plan_step_of_apply(self) -> bool:
        return self.mode == "plan" and self.requested_mode == "apply"

    def status(self, environment: str, state: str, description: str, stage: str | None = None) -> None:
        if not self.sha:
            return
        body = {"state": state, "context": status_context(environment, stage), "description": _clip(description)}
        if self.run_url:
            body["target_url"] = self.run_url
        for attempt in self._attempts():
            # A status is idempotent (the latest per context wins), so retrying is always safe.
            if self._try(f"status {environment}={state} (attempt {attempt + 1})", lambda: self.api.create_status(self.repository, self.sha, body) or True):
                return

    # -- what the engine calls -------------------------------------------

    def started(self, targets: list[StackTarget]) -> None:
        for target in targets:
            if self._plan_step_of_apply:
                # The final infra/<env> status stays pending until the apply (after any approval) reports.
                # infra/<env>/plan gets its result only (no pending of its own): one write less per stack.
                self.status(target.environment, "pending", f"planning with {target.tool} before apply…")
            else:
                verb = "planning" if self.mode == "plan" else "deploying"
                self.status(target.environment, "pending", f"{verb} with {target.tool}…")

    def stack_done(self, result: StackResult) -> None:
        if result.operation == "rollback":
            self.rollback_done(result)
            return
        self._reported[result.environment] = result
        if result.status == "succeeded":
            state, description = "success", (("plan: " if self.mode == "plan" else "applied: ") + result.changes.describe())
        elif result.status == "skipped":
            state, description = "error", f"not run: {result.error}"
        elif result.status == "not-deployed":
            state, description = "success", "not deployed"
        elif result.status == "blocked":
            state, description = "failure", (result.error or "blocked by policy").splitlines()[0]
        else:
            state, description = "failure", rolled_back_description(result)
        if self._plan_step_of_apply:
            self.status(result.environment, state, description, stage="plan")
            if state == "success":
                self.status(result.environment, "pending", f"planned ({result.changes.describe()}); waiting for apply")
            else:
                self.status(result.environment, state, f"plan failed: {description}")
        else:
            self.status(result.environment, state, description)
        judged = policy_status(result)
        if judged is not None:
            self.status(result.environment, judged[0], judged[1], stage="policy")
        if self.pr:
            self.upsert_comment(result.customer, result.environment,
                                render_comment(result, mode=self.mode, sha=self.sha, run_url=self.run_url))
        if self.mode == "apply" and self.sha and result.status in ("succeeded", "failed"):
            self.deployment(result)

    def rollback_done(self, result: StackResult) -> None:
        """A rollback run.  After a failed deploy (automatic) the failed deploy's status and comment are written again,
        now telling the rollback too; the rollback adds a deployment of the commit it applied again.  A rollback asked for by hand (``engine rollback
        --github``: this feedback's commit is the one rolled back to) also sets that commit's ``infra/<env>`` status."""
        source = result.rollback
        automatic = source is not None and source.reason is not None
        failed = self._reported.get(result.environment)
        if automatic and failed is not None and failed.rolled_back is not None:
            # the failed deploy's status and comment now tell the rollback too
            self.status(result.environment, "failure", rolled_back_description(failed))
            if self.pr:
                self.upsert_comment(failed.customer, failed.environment,
                                    render_comment(failed, mode=self.mode, sha=self.sha, run_url=self.run_url))
        elif not automatic:
            state = "success" if result.status == "succeeded" else "failure"
            where = f"run {source.source_run}" if source else "an earlier deploy"
            self.status(result.environment, state, f"rolled back to {where}: " + (result.changes.describe() if state == "success"
                                                                                    else (result.error or "failed").splitlines()[0]))
            if self.pr:
                self.upsert_comment(result.customer, result.environment,
                                    render_comment(result, mode="apply", sha=self.sha, run_url=self.run_url))
        sha = source.source_sha if source is not None and source.source_sha else None
        if sha and result.status in ("succeeded", "failed"):
            self.deployment(result, ref=sha, task="deploy:rollback")

    def config_rejected(self, customer: str, path: str, problems: list[Problem]) -> None:
        count = f"{len(problems)} problems; " if len(problems) > 1 else ""
        summary = f"{path}: {count}{problems[0].summary()}" if problems else f"{path} is invalid"
        self.status("configuration", "failure", summary)
        if self.pr:
            self.upsert_comment(customer, "configuration", render_config_error(customer, path, problems, sha=self.sha, run_url=self.run_url))

    # -- idempotent writes -------------------------------------------------

    def _is_mine(self, comment: dict) -> bool:
        """Written by the engine: the token's own user, or (App installation) a bot.

        Anyone can post a comment starting with the marker; the engine must never edit theirs.
        """
        if not hasattr(self, "_login"):
            self._login = self.api.authenticated_login(self.repository)
        user = comment.get("user") or {}
        if self._login is not None:
            return user.get("login") == self._login
        return user.get("type") == "Bot" or comment.get("performed_via_github_app") is not None

    def _find_comment(self, mark: str) -> dict | None:
        comments = self.api.comments(self.repository, self.pr)
        mine = [c for c in comments if (c.get("body") or "").startswith(mark) and self._is_mine(c)]
        return mine[0] if mine else None

    def upsert_comment(self, customer: str, environment: str, body: str) -> None:
        """One comment per stack (see ``upsert_marked``)."""
        self.upsert_marked(marker(customer, environment), body, f"comment {environment}")

    def upsert_marked(self, mark: str, body: str, what: str) -> str:
        """The engine's one comment starting with ``mark`` on the pull request: edit it if its content changed,
        create it once otherwise.  Returns what was done: created, updated, unchanged or failed.

        A comment whose content (``comment_content``: all but the time and the run link) is already
        ``body``'s is left as it is — no write — so a re-run that changes nothing is quiet.
        """
        for attempt in self._attempts():  # each retry re-reads first: a failed create may have landed
            found = self._try(f"read comments (attempt {attempt + 1})", lambda: ("ok", self._find_comment(mark)))
            if found is None:
                continue
            comment = found[1]
            if comment is not None and comment_content(comment.get("body") or "") == comment_content(body):
                return "unchanged"
            if comment is not None:
                if self._try(f"update {what}", lambda: self.api.update_comment(self.repository, comment["id"], body) or True):
                    return "updated"
            elif self._try(f"create {what}", lambda: self.api.create_comment(self.repository, self.pr, body) or True):
                return "created"
        return "failed"

    def deployment(self, result: StackResult, ref: str | None = None, task: str = "deploy") -> None:
        """A deployment per environment and commit (and rollback source), with the outputs; found again instead of duplicated."""
        ref = ref or self.sha
        key = f"{result.customer}/{result.environment}@{ref}" + (f"/rollback-of-{result.rollback.source_run}" if result.rollback else "")
        what = (f"rollback to run {result.rollback.source_run}: " if result.rollback else "") + result.changes.describe()
        body = {
            "ref": ref, "environment": result.environment, "task": task, "auto_merge": False, "required_contexts": [],
            "description": _clip(f"{result.tool}: {what}"),
            "production_environment": result.environment in ("production", "prod"),
            "payload": {"engine": {"key": key, "tool": result.tool, "changes": result.changes.__dict__, "outputs": result.outputs}},
        }
        deployment_id = None
        for attempt in self._attempts():  # each retry re-reads first: a failed create may have landed
            existing = self._try(f"read deployments (attempt {attempt + 1})", lambda: self.api.deployments(self.repository, ref, result.environment))
            if existing is None and not self.api.dry_run:
                continue
            for d in existing or []:
                if ((d.get("payload") or {}).get("engine") or {}).get("key") == key:
                    deployment_id = d["id"]
            if deployment_id is None:
                created = self._try(f"create deployment {result.environment}", lambda: self.api.create_deployment(self.repository, body))
                deployment_id = getattr(getattr(created, "parsed_data", None), "id", None) if created is not None else None
            if deployment_id is not None or self.api.dry_run:
                break
        state = "success" if result.status == "succeeded" else "failure"
        status = {"state": state, "environment": result.environment, "auto_inactive": True,
                  "description": _clip(what if state == "success" else rolled_back_description(result))}
        if self.run_url:
            status["log_url"] = self.run_url
        if deployment_id is not None or self.api.dry_run:
            for _attempt in self._attempts():
                if self._try(f"deployment status {result.environment}",
                             lambda: self.api.create_deployment_status(self.repository, deployment_id or 0, status) or True):
                    return
