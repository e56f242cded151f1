"""Slack and Microsoft Teams notifications: a subscriber of the engine's event stream.

``Notifier`` turns events into messages (engine/notify/message.py), picks the channels that want each one (the
tenant record's ``notifications`` and the provider's ``notifications.yml``), renders it for the service — Block
Kit for Slack, an Adaptive Card for Teams — and hands it to a background sender, so a slow or rate-limited
service never holds up a deployment.  ``close`` waits for what is queued.  Nothing here raises into the run: a
message that cannot be delivered is a warning on stderr, and the deployment's result and exit code stay as they are.

Text from customer files, tools and repositories is escaped for each format: control characters shown as
escapes (engine/untrusted.py); in Slack ``mrkdwn`` ``&``, ``<`` and ``>`` become entities, so no ``<!channel>``
or link can be smuggled in, and free text (errors, resource names, findings) goes in ``plain_text``; in Teams
Markdown's punctuation is backslash-escaped.  Known secret values (the notification secrets themselves, engine
passphrases, tokens in the environment) are masked in every text.
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from engine.config import Notification
from engine.notify.delivery import Delivery, Destination
from engine.notify.message import Context, Message, message_for
from engine.notify.settings import Routes
from engine.results import SECRET_MASK
from engine.untrusted import escape_inline, escape_lines

# --- what is never sent --------------------------------------------------------------------------------------------

# Environment variables whose values are secrets wherever they appear (besides the notification secrets themselves).
_SECRET_NAMES = re.compile(r"(^ENGINE_PASSPHRASE_|TOKEN|SECRET|PASSWORD|PASSPHRASE|PRIVATE_KEY|WEBHOOK|_KEY$)")
_MIN_SECRET = 8  # shorter values would mask ordinary words


def environment_secrets(env: dict | None = None, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    env = os.environ if env is None else env
    values = {v for k, v in env.items() if _SECRET_NAMES.search(k) and len(v) >= _MIN_SECRET}
    values |= {v for v in extra if v and len(v) >= _MIN_SECRET}
    return tuple(sorted(values, key=len, reverse=True))


def mask(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, SECRET_MASK)
    return text


# --- Slack: Block Kit ---------------------------------------------------------------------------------------------

_EMOJI = {"good": ":white_check_mark:", "danger": ":x:", "warning": ":warning:", "info": ":arrow_forward:"}
HEADER_MAX, FIELD_MAX, SECTION_MAX, CONTEXT_MAX, BUTTON_TEXT_MAX, URL_MAX = 150, 2000, 3000, 2000, 75, 3000


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_escape(text: str) -> str:
    """Text for Slack ``mrkdwn`` (and a message's ``text``): only ``&``, ``<`` and ``>`` are control characters there."""
    return escape_inline(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _plain(text: str, limit: int) -> dict:
    return {"type": "plain_text", "text": _cut(escape_lines(text), limit), "emoji": False}


def _facts(m: Message) -> list[tuple[str, str]]:
    facts = [("Customer", m.customer)]
    if m.environment:
        facts.append(("Environment", m.environment))
    if m.commit:
        facts.append(("Commit", m.commit[:12]))
    if m.changes is not None and m.event in ("deploy.succeeded", "deploy.failed", "rollback", "drift.opened"):
        c = m.changes
        facts.append(("Changes", f"{c.create} create, {c.update} update, {c.replace} replace, {c.delete} delete"))
    if m.tool:
        facts.append(("Tool", m.tool))
    if m.duration_s:
        facts.append(("Duration", f"{m.duration_s:.0f} s"))
    return facts


def _detail_text(m: Message) -> str:
    lines = list(m.details) + ([f"… and {m.more} more"] if m.more else [])
    return "\n".join(lines)


def slack_payload(m: Message) -> dict:
    """The message as Slack's ``text`` (the notification and fallback) and Block Kit ``blocks``."""
    blocks: list[dict] = [
        {"type": "header", "text": _plain(f"{m.title}", HEADER_MAX)},
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(f"{_EMOJI[m.severity]} {slack_escape(m.summary)}", SECTION_MAX)},
         "fields": [{"type": "mrkdwn", "text": _cut(f"*{name}*\n{slack_escape(value)}", FIELD_MAX)} for name, value in _facts(m)][:10]},
    ]
    if m.details:
        blocks.append({"type": "section", "text": _plain(_detail_text(m), SECTION_MAX)})
    context = [f"{m.event}"] + ([f"by {slack_escape(m.actor)}"] if m.actor else [])
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(" · ".join(context), CONTEXT_MAX)}]})
    if m.link and len(m.link) <= URL_MAX:
        blocks.append({"type": "actions", "elements": [
            {"type": "button", "text": _plain("Open the run", BUTTON_TEXT_MAX), "url": m.link, "action_id": "open-run"}]})
    return {"text": _cut(slack_escape(m.summary), SECTION_MAX), "blocks": blocks}


# --- Teams: an Adaptive Card --------------------------------------------------------------------------------------

_COLOR = {"good": "Good", "danger": "Attention", "warning": "Warning", "info": "Default"}
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+!|~<>])")
CARD_VERSION = "1.5"


def teams_escape(text: str) -> str:
    """Text for an Adaptive Card TextBlock or fact (Teams renders a Markdown subset): punctuation backslash-escaped,
    a ``-``/``1.`` at a line's start kept from becoming a list, ``{{`` kept from becoming a date function."""
    text = _MARKDOWN.sub(r"\\\1", escape_lines(text))
    text = re.sub(r"(?m)^(\s*)([-=]|\d+\.)", lambda mt: mt.group(1) + "\\" + mt.group(2), text)
    return text.replace("{{", "{\u200b{") if "{{" in text else text


def teams_payload(m: Message) -> dict:
    """The message as a Teams Workflows webhook body: one Adaptive Card attachment."""
    body: list[dict] = [
        {"type": "TextBlock", "text": teams_escape(m.title), "weight": "Bolder", "size": "Medium", "wrap": True, "color": _COLOR[m.severity]},
        {"type": "TextBlock", "text": teams_escape(m.summary), "wrap": True},
        {"type": "FactSet", "facts": [{"title": name, "value": teams_escape(value)} for name, value in _facts(m)]},
    ]
    # one TextBlock per line: a Markdown line break inside a TextBlock is not rendered the same by every Teams client
    for i, line in enumerate(_detail_text(m).split("\n") if m.details else []):
        body.append({"type": "TextBlock", "text": teams_escape(line) or " ", "wrap": True, "fontType": "Monospace", "size": "Small",
                     "spacing": "Small" if i == 0 else "None"})
    body.append({"type": "TextBlock", "text": teams_escape(" · ".join([m.event] + ([f"by {m.actor}"] if m.actor else []))),
                 "isSubtle": True, "size": "Small", "wrap": True})
    card: dict = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard", "version": CARD_VERSION,
                  "body": body, "fallbackText": escape_inline(f"{m.title}: {m.summary}")}
    if m.link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open the run", "url": m.link}]
    return {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}]}


def render(channel: str, message: Message) -> dict:
    return slack_payload(message) if channel == "slack" else teams_payload(message)


def masked_message(m: Message, secrets: tuple[str, ...]) -> Message:
    """``m`` with every known secret value masked in its texts (before any escaping can change how they are spelled)."""
    if not secrets:
        return m
    return dataclasses.replace(m, title=mask(m.title, secrets), summary=mask(m.summary, secrets), actor=mask(m.actor, secrets),
                               details=tuple(mask(d, secrets) for d in m.details), link=mask(m.link, secrets) if m.link else m.link)


def _masked(value, secrets: tuple[str, ...]):
    if isinstance(value, str):
        return mask(value, secrets)
    if isinstance(value, list):
        return [_masked(v, secrets) for v in value]
    if isinstance(value, dict):
        return {k: _masked(v, secrets) for k, v in value.items()}
    return value


# --- the subscriber -----------------------------------------------------------------------------------------------

# How long to leave between two messages to one destination: Slack allows about one message a second per webhook
# or channel; Teams Workflows accept bursts, a short pause keeps a fleet run's messages in order.
PACE_S = {"slack-webhook": 1.0, "slack-api": 1.0, "teams-webhook": 0.25}
DRAIN_S = 120.0  # the longest ``close`` waits for queued messages


@dataclass
class Sent:
    """One delivery attempt sequence (kept for ``--json`` and tests; no secret)."""

    event: str
    where: str
    destination: str
    delivery: Delivery | None  # None: printed (dry run), not sent


@dataclass
class Notifier:
    """Subscribes to the event stream; see the module docstring."""

    routes: Routes
    context: Callable[[], Context]
    destination: Callable[[Notification], Destination | str]  # a destination, or why there is none (a variable not set)
    mode: Callable[[], str] = lambda: "send"  # send | print | off (``--dry-run`` makes it print)
    secrets: Callable[[], tuple[str, ...]] = environment_secrets  # besides every channel's own secret (see _secrets)
    out: Callable[[str], None] = lambda text: print(text, file=sys.stderr, flush=True)
    sent: list[Sent] = field(default_factory=list)
    _queue: "queue.Queue" = field(default_factory=queue.Queue, repr=False)
    _worker: threading.Thread | None = field(default=None, repr=False)
    _last: dict[str, float] = field(default_factory=dict, repr=False)
    _warned: set[str] = field(default_factory=set, repr=False)
    pace_s: dict[str, float] = field(default_factory=lambda: dict(PACE_S))

    def warn(self, text: str) -> None:
        self.out(f"warning: {escape_inline(text)}")

    def __call__(self, event) -> None:
        try:
            mode = self.mode()
            if mode == "off":
                return
            message = message_for(event, self.context())
            if message is None:
                return
            channels = self.routes.channels(message)
        except Exception as exc:  # noqa: BLE001 - a notification never fails anything
            self.warn(f"notifications skipped ({type(exc).__name__}: {first_line(str(exc))}); the run's result is unaffected")
            return
        for _whose, entry in channels:
            self._one(entry, message, mode)

    def _one(self, entry: Notification, message: Message, mode: str) -> None:
        destination = self.destination(entry)
        if isinstance(destination, str):
            if destination not in self._warned:  # once per process and destination
                self._warned.add(destination)
                self.warn(f"{message.event} for {message.where} not sent: {destination}")
            return
        secrets = self._secrets(message, destination)
        payload = _masked(render(entry.channel, masked_message(message, secrets)), secrets)
        if mode == "print":
            self.sent.append(Sent(message.event, message.where, destination.describe(), None))
            self.out(f"notification (not sent) to {destination.describe()}: {message.event} {message.where}\n"
                     + json.dumps(payload, indent=2, ensure_ascii=False))
            return
        self._queue.put((destination, payload, message))
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="notify", daemon=True)
            self._worker.start()

    def _secrets(self, message: Message, destination: Destination) -> tuple[str, ...]:
        """Every value that must never be sent: this and every other channel's secret, and the environment's secrets."""
        entries = self.routes.tenant(message.customer) + list(self.routes.provider.notifications)
        channel_secrets = [os.environ.get(n.webhook_env or n.token_env or "", "") for n in entries]
        values = {*self.secrets(), destination.secret, *(v for v in channel_secrets if len(v) >= _MIN_SECRET)}
        return tuple(sorted((v for v in values if v), key=len, reverse=True))

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                destination, payload, message = item
                pause = self.pace_s.get(destination.kind, 0.0) - (time.monotonic() - self._last.get(destination.describe(), -1e9))
                if pause > 0:
                    time.sleep(pause)
                delivery = destination.send(payload, message.key)
                self._last[destination.describe()] = time.monotonic()
                self.sent.append(Sent(message.event, message.where, destination.describe(), delivery))
                if not delivery.ok:
                    self.warn(f"{message.event} for {message.where} not delivered to {destination.describe()} after "
                              f"{delivery.attempts} attempt{'s' if delivery.attempts != 1 else ''}: {delivery.reason} "
                              "(the run's result is unaffected)")
            except Exception as exc:  # noqa: BLE001
                self.warn(f"a notification failed ({type(exc).__name__}); the run's result is unaffected")
            finally:
                self._queue.task_done()

    def close(self, timeout_s: float = DRAIN_S) -> None:
        """Wait (up to ``timeout_s``) for queued messages to be delivered."""
        if self._worker is None:
            return
        self._queue.put(None)
        self._worker.join(timeout_s)
        if self._worker.is_alive():
            self.warn(f"gave up waiting for {self._queue.qsize()} notification(s) after {timeout_s:g} s")
        self._worker = None


def first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:200]
