"""Who hears about what: the tenant record's ``notifications`` and the provider's ``notifications.yml``.

``notifications.yml`` in the catalog root lists the provider's own channels (every tenant's events go there
too), with the same entries as a tenant record.  Secrets — webhook URLs, Slack bot tokens — come only from the
environment variables the entries name; they never appear in a file, a message or a warning.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Callable

from pydantic import Field

from engine.config import Notification, Strict, TenantRecord
from engine.documents import load_file
from engine.errors import InputError
from engine.notify.message import Message
from engine.validation import validate_document

SETTINGS_FILE = "notifications.yml"
MODES = ("send", "print", "off")
ENV_MODE = "ENGINE_NOTIFY"  # send (default) | print: show each message instead of sending it | off
ENV_SLACK_API = "ENGINE_NOTIFY_SLACK_API_URL"  # Slack's Web API base (default https://slack.com/api/): a proxy, or a test server
ENV_MAX_WAIT = "ENGINE_NOTIFY_MAX_WAIT_S"  # the longest Retry-After the engine honours (default 30)
DEFAULT_MAX_WAIT_S = 30.0


class ProviderNotifications(Strict):
    """``notifications.yml``: the provider's channels, told about every tenant."""

    notifications: Annotated[list[Notification], Field(max_length=20)] = Field(default_factory=list)


def load_provider(catalog_root: Path) -> ProviderNotifications:
    """The catalog's ``notifications.yml`` (none: no provider channels).  A problem is a ``ConfigError`` (exit 2)."""
    path = Path(catalog_root) / SETTINGS_FILE
    if not path.is_file():
        return ProviderNotifications()
    return validate_document(load_file(path, SETTINGS_FILE), ProviderNotifications)


def mode(env: dict | None = None) -> str:
    env = os.environ if env is None else env
    value = (env.get(ENV_MODE) or "send").strip().lower()
    if value not in MODES:
        raise InputError(f"{ENV_MODE} must be one of {', '.join(MODES)}, not {value[:20]!r}")
    return value


def max_wait_s(env: dict | None = None) -> float:
    env = os.environ if env is None else env
    try:
        return max(0.0, float(env.get(ENV_MAX_WAIT) or DEFAULT_MAX_WAIT_S))
    except ValueError:
        raise InputError(f"{ENV_MAX_WAIT} must be a number of seconds") from None


def destination_id(n: Notification) -> tuple:
    """Two entries with the same destination deliver once."""
    return (n.channel, n.webhook_env, n.token_env, n.slack_channel)


def wants(n: Notification, message: Message) -> bool:
    if message.event not in n.events:
        return False
    return not n.environments or message.environment is None or message.environment in n.environments


class Routes:
    """The channels a message goes to: its tenant's, then the provider's, each once."""

    def __init__(self, provider: ProviderNotifications, record: Callable[[str], TenantRecord | None]):
        self.provider = provider
        self._record = record
        self._records: dict[str, TenantRecord | None] = {}

    def tenant(self, customer: str) -> list[Notification]:
        if customer not in self._records:
            self._records[customer] = self._record(customer)
        record = self._records[customer]
        return list(record.notifications) if record is not None else []

    def channels(self, message: Message) -> list[tuple[str, Notification]]:
        """[(whose: "tenant" | "provider", entry)] for ``message``."""
        out, seen = [], set()
        for whose, entries in (("tenant", self.tenant(message.customer)), ("provider", self.provider.notifications)):
            for n in entries:
                if wants(n, message) and destination_id(n) not in seen:
                    seen.add(destination_id(n))
                    out.append((whose, n))
        return out
