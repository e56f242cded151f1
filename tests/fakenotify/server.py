"""A local stand-in for Slack (incoming webhooks, Web API ``chat.postMessage``) and Microsoft Teams (a Workflows
"When a Teams webhook request is received" trigger), for tests.

Every message is checked the way the service would read it, and a problem is answered as the service answers it
*and* recorded in ``violations``, so a test fails even when the client swallows the error (the fixture checks after
the test):

- Slack: the body's keys; ``blocks`` against ``block-kit.schema.json`` (built from Slack's Block Kit reference, see
  README.md), then parsed back with slack_sdk's Block models, which must validate (``validate_json``) and give the
  same JSON back (nothing unknown dropped); a ``text`` fallback; no unescaped ``<`` in mrkdwn (a ``<!channel>`` or a
  link smuggled in by customer text).  ``chat.postMessage`` also needs the bot token and a channel.
- Teams: the envelope (``type: message``, one attachment of ``application/vnd.microsoft.card.adaptive``) and the card
  against the Adaptive Card 1.5 schema published by Microsoft (``adaptive-card-1.5.schema.json``, see README.md).

Faults, per service and in order: a status before the message is recorded (500, 503, 502, 429 with ``Retry-After``)
or ``drop``: the message is recorded, then the connection is closed without an answer (the message arrived, the
client cannot know).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema

HERE = Path(__file__).resolve().parent
BLOCK_KIT = json.loads((HERE / "block-kit.schema.json").read_text())
ADAPTIVE_CARD = json.loads((HERE / "adaptive-card-1.5.schema.json").read_text())
BOT_TOKEN = "test-bot-token-not-real"
# What Slack documents for an incoming webhook's body, and for chat.postMessage's (the parts a JSON body can carry).
WEBHOOK_KEYS = {"text", "blocks", "attachments", "thread_ts", "mrkdwn", "unfurl_links", "unfurl_media", "username", "icon_emoji",
                "icon_url", "channel", "response_type", "replace_original", "delete_original", "metadata"}
POST_MESSAGE_KEYS = {"channel", "text", "blocks", "attachments", "as_user", "icon_emoji", "icon_url", "link_names", "markdown_text",
                     "metadata", "mrkdwn", "parse", "reply_broadcast", "thread_ts", "unfurl_links", "unfurl_media", "username"}
CARD_TYPE = "application/vnd.microsoft.card.adaptive"


@dataclass
class Received:
    service: str  # slack-webhook | slack-api | teams
    path: str
    payload: dict
    headers: dict[str, str]
    at: float  # time.monotonic() when it arrived


@dataclass
class Fault:
    service: str | None  # None: any
    status: int | None  # answered instead of recording the message
    times: int = 1
    retry_after: str | None = None
    drop: bool = False  # record the message, then close the connection without an answer


@dataclass
class FakeChat:
    messages: list[Received] = field(default_factory=list)
    attempts: list[tuple[str, float, int | None]] = field(default_factory=list)  # (service, monotonic time, status; None: dropped)
    violations: list[str] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    hooks: dict[str, str] = field(default_factory=dict)  # path -> service
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)

    # -- running --

    @property
    def base(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeChat":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer = fake._handle(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                if answer is None:  # drop: the request was read (and recorded); no answer, the connection closes
                    self.close_connection = True
                    return
                status, content, headers = answer
                data = content if isinstance(content, bytes) else json.dumps(content).encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json" if not isinstance(content, bytes) else "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeChat":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- addresses (what the provider puts in the environment variables) --

    def slack_webhook(self) -> str:
        path = f"/services/TLOCAL0001/BLOCAL0001/{secrets.token_hex(12)}"
        self.hooks[path] = "slack-webhook"
        return self.base + path

    def teams_webhook(self) -> str:
        path = f"/workflows/{secrets.token_hex(16)}/triggers/manual/paths/invoke?api-version=1&sig={secrets.token_hex(16)}"
        self.hooks[path] = "teams"
        return self.base + path

    @property
    def slack_api(self) -> str:
        return self.base + "/api/"

    def inject(self, service: str | None, status: int | None = None, *, times: int = 1, retry_after: str | None = None,
               drop: bool = False) -> None:
        with self._lock:
            self.faults.append(Fault(service, status, times, retry_after, drop))

    def of(self, service: str) -> list[Received]:
        return [m for m in self.messages if m.service == service]

    # -- handling --

    def _handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any, dict[str, str]] | None:
        service = "slack-api" if path == "/api/chat.postMessage" else self.hooks.get(path)
        if service is None:
            self.violations.append(f"POST {path.split('?')[0][:40]}…: no such webhook")
            return 404, b"no_service", {}
        now = time.monotonic()
        with self._lock:
            fault = next((f for f in self.faults if f.times > 0 and f.service in (None, service)), None)
            if fault is not None:
                fault.times -= 1
        if fault is not None and not fault.drop:
            self.attempts.append((service, now, fault.status))
            headers_out = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            if service == "slack-api":
                return fault.status or 500, {"ok": False, "error": "ratelimited" if fault.status == 429 else "internal_error"}, headers_out
            return fault.status or 500, b"rate_limited" if fault.status == 429 else b"server_error", headers_out
        try:
            payload = json.loads(body)
        except ValueError:
            self.violations.append(f"{service}: the body is not JSON")
            return 400, b"invalid_payload", {}
        problems = {"slack-webhook": self._slack_webhook, "slack-api": self._slack_api, "teams": self._teams}[service](payload, headers)
        if problems:
            self.violations += [f"{service}: {p}" for p in problems]
            self.attempts.append((service, now, 400))
            return (200, {"ok": False, "error": "invalid_blocks", "errors": problems}, {}) if service == "slack-api" else (400, b"invalid_payload", {})
        self.messages.append(Received(service, path, payload, headers, now))
        if fault is not None:  # drop
            self.attempts.append((service, now, None))
            return None
        self.attempts.append((service, now, 200))
        if service == "slack-api":
            ts = f"{time.time():.6f}"
            return 200, {"ok": True, "channel": payload["channel"], "ts": ts, "message": {"text": payload.get("text"), "ts": ts}}, {}
        if service == "teams":
            return 202, b"", {}
        return 200, b"ok", {}

    # -- checks --

    def _blocks(self, payload: dict) -> list[str]:
        problems = []
        if not isinstance(payload.get("text"), str) or not payload["text"]:
            problems.append("no 'text': a message with blocks needs its text for notifications and screen readers")
        if "<" in (payload.get("text") or ""):
            problems.append("unescaped '<' in text")
        blocks = payload.get("blocks")
        if blocks is None:
            return problems
        error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(BLOCK_KIT).iter_errors(blocks))
        if error is not None:
            return problems + [f"blocks{''.join(f'[{p!r}]' for p in error.absolute_path)}: {error.message[:300]}"]
        from slack_sdk.models.blocks import Block

        for i, block in enumerate(blocks):
            parsed = Block.parse(block)
            try:
                parsed.validate_json()
            except Exception as exc:  # noqa: BLE001 - slack_sdk's SlackObjectFormationError
                problems.append(f"blocks[{i}]: slack_sdk: {exc}")
                continue
            if parsed.to_dict() != block:
                problems.append(f"blocks[{i}]: slack_sdk reads it differently: {parsed.to_dict()} != {block}")
        for text in _mrkdwn_texts(blocks):
            if "<" in text:
                problems.append(f"unescaped '<' in mrkdwn: {text[:80]!r}")
        return problems

    def _slack_webhook(self, payload: Any, headers: dict[str, str]) -> list[str]:
        if not isinstance(payload, dict):
            return ["the body is not a JSON object"]
        unknown = set(payload) - WEBHOOK_KEYS
        return ([f"unknown keys {sorted(unknown)}"] if unknown else []) + self._blocks(payload)

    def _slack_api(self, payload: Any, headers: dict[str, str]) -> list[str]:
        if headers.get("authorization") != f"Bearer {BOT_TOKEN}":
            return ["not_authed: no valid bot token"]
        if not isinstance(payload, dict):
            return ["the body is not a JSON object"]
        problems = [f"unknown arguments {sorted(set(payload) - POST_MESSAGE_KEYS)}"] if set(payload) - POST_MESSAGE_KEYS else []
        if not isinstance(payload.get("channel"), str):
            problems.append("channel_not_found: no channel")
        metadata = payload.get("metadata")
        if metadata is not None and (not isinstance(metadata, dict) or set(metadata) != {"event_type", "event_payload"}):
            problems.append("invalid_metadata_format")
        return problems + self._blocks(payload)

    def _teams(self, payload: Any, headers: dict[str, str]) -> list[str]:
        if not isinstance(payload, dict) or payload.get("type") != "message" or set(payload) - {"type", "attachments"}:
            return ["the body is not {type: message, attachments: [...]}"]
        attachments = payload.get("attachments")
        if not isinstance(attachments, list) or len(attachments) != 1:
            return ["expected exactly one attachment"]
        attachment = attachments[0]
        if not isinstance(attachment, dict) or attachment.get("contentType") != CARD_TYPE or set(attachment) - {"contentType", "contentUrl", "content"}:
            return [f"the attachment is not an Adaptive Card ({CARD_TYPE})"]
        card = attachment.get("content")
        error = jsonschema.exceptions.best_match(jsonschema.Draft6Validator(ADAPTIVE_CARD).iter_errors(card))
        if error is not None:
            return [f"card{''.join(f'[{p!r}]' for p in error.absolute_path)}: {error.message[:300]}"]
        if not isinstance(card, dict) or card.get("type") != "AdaptiveCard" or card.get("version") not in ("1.0", "1.1", "1.2", "1.3", "1.4", "1.5"):
            return ["the card is not a top-level AdaptiveCard of version 1.0–1.5"]
        return []


def _mrkdwn_texts(value: Any) -> list[str]:
    if isinstance(value, dict):
        own = [value["text"]] if value.get("type") == "mrkdwn" and isinstance(value.get("text"), str) else []
        return own + [t for v in value.values() for t in _mrkdwn_texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in _mrkdwn_texts(v)]
    return []
