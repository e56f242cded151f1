"""Delivering a rendered message: Slack through ``slack_sdk`` (incoming webhook or Web API ``chat.postMessage``),
Microsoft Teams through a Workflows webhook over ``httpx``.

Retries are for requests the service surely did not act on, so a retry never posts a message twice:

- a rate limit (429): the service refused the message; the engine waits what ``Retry-After`` asks (up to
  ``ENGINE_NOTIFY_MAX_WAIT_S``, else it gives up) and sends again;
- the service saying it failed (500, 503) or the connection refused / the name not resolved before anything was
  sent: sent again after a short backoff;
- anything that may have arrived — the connection dropped after the request went out, a read timeout, a gateway
  error (502, 504) — is **not** retried: the warning says the message may or may not have been posted.

Every attempt of one message carries the same ``X-Engine-Notification-Id`` header (and, through Slack's Web API,
the same message metadata), so a reader or a proxy can still tell a repeat from a new message.

Secrets (webhook URLs, tokens) live only in the destination objects; ``describe`` names the environment variable,
and every reason text is passed through ``mask`` before anyone sees it.
"""

from __future__ import annotations

import email.utils
import logging
import socket
import time
from dataclasses import dataclass, field
from http.client import RemoteDisconnected
from typing import Callable, Optional
from urllib.error import URLError

import httpx
from slack_sdk.http_retry import HttpRequest, HttpResponse, RetryHandler, RetryState

NOTIFICATION_ID_HEADER = "X-Engine-Notification-Id"
TIMEOUT_S = 10.0
RETRIES = 3  # after the first attempt, per kind of refusal
BACKOFF_S = 0.5  # the first wait after a server error; doubled each time (0.5, 1, 2 s)
SLACK_API = "https://slack.com/api/"
_REFUSED_STATUS = (500, 503)  # the service says it did not handle the request
_quiet = logging.getLogger("engine.notify.slack_sdk")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False  # slack_sdk logs failed requests at ERROR: the engine's own warning says it, secret-free


@dataclass
class Delivery:
    """How one message's delivery went.  ``reason`` is secret-free."""

    ok: bool
    attempts: int = 1
    status: int | None = None
    reason: str = ""
    waited_s: float = 0.0  # time spent waiting for rate limits and backoff


def retry_after_s(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date; None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - now())
    except (TypeError, ValueError, IndexError):
        return None


def _header(headers: dict, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return value[0] if isinstance(value, list) else value
    return None


def surely_not_sent(error: BaseException) -> bool:
    """The request never reached the service: the connection was refused, or the host name did not resolve."""
    if isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout)):  # httpx: raised before a byte of the request is sent
        return True
    reason = error.reason if isinstance(error, URLError) else error  # urllib wraps what happened while connecting
    return isinstance(reason, (ConnectionRefusedError, socket.gaierror))


def _root(error: BaseException) -> BaseException:
    """What an error wraps: urllib's ``reason``, httpx's chain of causes (down to the OSError)."""
    if isinstance(error, URLError) and isinstance(error.reason, BaseException):
        return error.reason
    seen = error
    for _ in range(5):
        inner = seen.__cause__ or seen.__context__
        if inner is None:
            break
        seen = inner
    return seen if isinstance(seen, OSError) else error


def describe_error(error: BaseException) -> str:
    """A short, secret-free reason (no URL: urllib and httpx errors may carry it)."""
    reason = _root(error)
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, socket.gaierror):
        return "the host name did not resolve"
    if isinstance(error, (RemoteDisconnected, httpx.RemoteProtocolError)) or isinstance(reason, ConnectionResetError):
        return "the connection closed before an answer (the message may or may not have been posted; not retried)"
    if isinstance(reason, (TimeoutError, socket.timeout)) or isinstance(error, httpx.TimeoutException):
        return "no answer in time (the message may or may not have been posted; not retried)"
    if isinstance(error, httpx.ConnectError):
        return "could not connect"
    return f"{type(reason).__name__}"


@dataclass
class _Tally:
    attempts: int = 1
    waited_s: float = 0.0
    gave_up: str = ""  # why a rate limit was not waited for


class RateLimited(RetryHandler):
    """slack_sdk retry handler: 429 — wait what ``Retry-After`` asks (at most ``max_wait_s``), then send again."""

    def __init__(self, tally: _Tally, max_wait_s: float, max_retry_count: int = RETRIES, sleep: Callable[[float], None] = time.sleep):
        super().__init__(max_retry_count=max_retry_count)
        self.tally, self.max_wait_s, self.sleep = tally, max_wait_s, sleep

    def _wait(self, response: Optional[HttpResponse]) -> float:
        asked = retry_after_s(_header(response.headers if response else {}, "retry-after"))
        return 1.0 if asked is None else asked

    def _can_retry(self, *, state: RetryState, request: HttpRequest, response: Optional[HttpResponse] = None,
                   error: Optional[Exception] = None) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = self._wait(response)
        if wait > self.max_wait_s:
            self.tally.gave_up = f"rate limited: the service asked to wait {wait:g} s, more than ENGINE_NOTIFY_MAX_WAIT_S ({self.max_wait_s:g} s)"
            return False
        return True

    def prepare_for_next_attempt(self, *, state: RetryState, request: HttpRequest, response: Optional[HttpResponse] = None,
                                 error: Optional[Exception] = None) -> None:
        wait = self._wait(response)
        self.sleep(wait)
        self.tally.waited_s += wait
        self.tally.attempts += 1
        state.next_attempt_requested = True
        state.increment_current_attempt()


class NotDelivered(RetryHandler):
    """slack_sdk retry handler: the service said it failed (500, 503), or the request never left — backoff, send again.

    Unlike slack_sdk's ``ConnectionErrorRetryHandler`` it never retries a connection that broke after the request
    was sent: Slack may have posted that message.
    """

    def __init__(self, tally: _Tally, backoff_s: float = 0.5, max_retry_count: int = RETRIES, sleep: Callable[[float], None] = time.sleep):
        super().__init__(max_retry_count=max_retry_count)
        self.tally, self.backoff_s, self.sleep = tally, backoff_s, sleep

    def _can_retry(self, *, state: RetryState, request: HttpRequest, response: Optional[HttpResponse] = None,
                   error: Optional[Exception] = None) -> bool:
        if response is not None:
            return response.status_code in _REFUSED_STATUS
        return error is not None and surely_not_sent(error)

    def prepare_for_next_attempt(self, *, state: RetryState, request: HttpRequest, response: Optional[HttpResponse] = None,
                                 error: Optional[Exception] = None) -> None:
        asked = retry_after_s(_header(response.headers, "retry-after")) if response is not None else None
        wait = asked if asked is not None and asked <= self.backoff_s * 8 else self.backoff_s * 2 ** state.current_attempt
        self.sleep(wait)
        self.tally.waited_s += wait
        self.tally.attempts += 1
        state.next_attempt_requested = True
        state.increment_current_attempt()


@dataclass
class Destination:
    """Where one channel's messages go.  ``secret`` (a URL or token) is never shown: ``describe`` names its variable."""

    kind: str  # slack-webhook | slack-api | teams-webhook
    variable: str  # the environment variable holding the secret
    secret: str = field(repr=False)
    slack_channel: str | None = None
    max_wait_s: float = 30.0
    backoff_s: float = field(default_factory=lambda: BACKOFF_S)
    timeout_s: float = TIMEOUT_S
    api_url: str = SLACK_API
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def describe(self) -> str:
        service = {"slack-webhook": "Slack webhook", "slack-api": "Slack chat.postMessage", "teams-webhook": "Teams webhook"}[self.kind]
        return f"{service} ${self.variable}" + (f" → {self.slack_channel}" if self.slack_channel else "")

    def mask(self, text: str) -> str:
        for secret in {self.secret, self.secret.rstrip("/"), self.secret.split("?", 1)[0]}:
            if secret:
                text = text.replace(secret, f"${self.variable}")
        return text

    def send(self, payload: dict, key: str) -> Delivery:
        """Deliver ``payload`` (never raises)."""
        try:
            delivery = {"slack-webhook": self._slack_webhook, "slack-api": self._slack_api, "teams-webhook": self._teams}[self.kind](payload, key)
        except Exception as exc:  # noqa: BLE001 - a notification never fails anything
            delivery = Delivery(False, reason=describe_error(exc))
        delivery.reason = self.mask(delivery.reason)
        return delivery

    # -- Slack ---------------------------------------------------------------------------------------------------

    def _handlers(self, tally: _Tally) -> list[RetryHandler]:
        return [RateLimited(tally, self.max_wait_s, sleep=self.sleep), NotDelivered(tally, self.backoff_s, sleep=self.sleep)]

    def _slack_webhook(self, payload: dict, key: str) -> Delivery:
        from slack_sdk.webhook import WebhookClient

        tally = _Tally()
        client = WebhookClient(self.secret, timeout=int(max(1, self.timeout_s)), logger=_quiet, retry_handlers=self._handlers(tally),
                               default_headers={NOTIFICATION_ID_HEADER: key})
        try:
            response = client.send_dict(payload)
        except Exception as exc:  # noqa: BLE001 - what the handlers did not retry
            return Delivery(False, tally.attempts, reason=describe_error(exc), waited_s=tally.waited_s)
        ok = response.status_code == 200
        reason = "" if ok else (tally.gave_up or f"HTTP {response.status_code}: {(response.body or '')[:200]}")
        return Delivery(ok, tally.attempts, response.status_code, reason, tally.waited_s)

    def _slack_api(self, payload: dict, key: str) -> Delivery:
        from slack_sdk import WebClient
        from slack_sdk.errors import SlackApiError

        tally = _Tally()
        client = WebClient(token=self.secret, base_url=self.api_url, timeout=int(max(1, self.timeout_s)), logger=_quiet,
                           retry_handlers=self._handlers(tally), headers={NOTIFICATION_ID_HEADER: key})
        metadata = {"event_type": "engine_notification", "event_payload": {"id": key}}
        try:
            response = client.chat_postMessage(channel=self.slack_channel, text=payload["text"], blocks=payload["blocks"],
                                               metadata=metadata, unfurl_links=False, unfurl_media=False)
        except SlackApiError as exc:
            status = exc.response.status_code
            error = (exc.response.data or {}).get("error") if isinstance(exc.response.data, dict) else None
            return Delivery(False, tally.attempts, status, tally.gave_up or f"HTTP {status}: {error or 'error'}", tally.waited_s)
        except Exception as exc:  # noqa: BLE001
            return Delivery(False, tally.attempts, reason=describe_error(exc), waited_s=tally.waited_s)
        return Delivery(bool(response.get("ok")), tally.attempts, response.status_code, "", tally.waited_s)

    # -- Teams -----------------------------------------------------------------------------------------------------

    def _teams(self, payload: dict, key: str) -> Delivery:
        """Teams Workflows ("When a Teams webhook request is received"): 202 Accepted; the same retry rules, by hand."""
        attempts, waited, backoff = 0, 0.0, self.backoff_s
        refused = limited = 0
        with httpx.Client(timeout=self.timeout_s, follow_redirects=False) as client:
            while True:
                attempts += 1
                try:
                    response = client.post(self.secret, json=payload, headers={NOTIFICATION_ID_HEADER: key})
                except httpx.HTTPError as exc:
                    if surely_not_sent(exc) and refused < RETRIES:
                        refused += 1
                        self.sleep(backoff)
                        waited += backoff
                        backoff *= 2
                        continue
                    return Delivery(False, attempts, reason=describe_error(exc), waited_s=waited)
                if 200 <= response.status_code < 300:
                    return Delivery(True, attempts, response.status_code, "", waited)
                asked = retry_after_s(response.headers.get("retry-after"))
                if response.status_code == 429 and limited < RETRIES:
                    wait = 1.0 if asked is None else asked
                    if wait > self.max_wait_s:
                        return Delivery(False, attempts, 429, f"rate limited: the service asked to wait {wait:g} s, more than "
                                                              f"ENGINE_NOTIFY_MAX_WAIT_S ({self.max_wait_s:g} s)", waited)
                    limited += 1
                    self.sleep(wait)
                    waited += wait
                    continue
                if response.status_code in _REFUSED_STATUS and refused < RETRIES:
                    refused += 1
                    wait = asked if asked is not None and asked <= self.max_wait_s else backoff
                    self.sleep(wait)
                    waited += wait
                    backoff *= 2
                    continue
                return Delivery(False, attempts, response.status_code, f"HTTP {response.status_code}: {response.text[:200]}", waited)
