"""Slack and Microsoft Teams notifications about deploys, policy, drift, compliance and rollbacks.

- ``message.py``: events → ``Message`` (pure); the (operation, status) → event table.
- ``settings.py``: who hears what — the tenant record's ``notifications``, the provider's ``notifications.yml``,
  the ``ENGINE_NOTIFY*`` environment variables.
- ``delivery.py``: Slack through ``slack_sdk`` (webhook, Web API), Teams through ``httpx``; retries that never
  post twice.
- The subscriber and the Block Kit / Adaptive Card renderings are in ``engine/reporters/notify.py``; the wiring
  subscribes it to the event stream like the run history (``engine/wiring.py``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Mapping

from engine.config import Notification, TenantRecord
from engine.notify.delivery import SLACK_API, Destination
from engine.notify.message import Context, Message, message_for
from engine.notify.settings import ENV_SLACK_API, Routes, load_provider, max_wait_s, mode

__all__ = ["Context", "Destination", "Message", "build_notifier", "destination_for", "message_for"]


def destination_for(entry: Notification, env: Mapping[str, str] | None = None) -> Destination | str:
    """Where ``entry`` sends, with its secret from the environment; or why it can't (a sentence naming the variable)."""
    env = os.environ if env is None else env
    variable = entry.webhook_env or entry.token_env
    secret = (env.get(variable) or "").strip()
    if not secret:
        return f"${variable} is not set (it holds the {'bot token' if entry.token_env else 'webhook URL'} for this {entry.channel} channel)"
    if entry.webhook_env and not secret.lower().startswith(("https://", "http://")):
        return f"${variable} does not hold an http(s) URL"
    kind = "teams-webhook" if entry.channel == "teams" else ("slack-api" if entry.token_env else "slack-webhook")
    return Destination(kind, variable, secret, slack_channel=entry.slack_channel, max_wait_s=max_wait_s(env),
                       api_url=env.get(ENV_SLACK_API) or SLACK_API)


def build_notifier(catalog_root: Path, record: Callable[[str], TenantRecord | None], context: Callable[[], Context],
                   dry_run: Callable[[], bool]):
    """The subscriber for this process.  ``notifications.yml`` and ``ENGINE_NOTIFY`` are read now: a problem is bad
    input (exit 2) before anything runs."""
    from engine.reporters.notify import Notifier

    provider = load_provider(catalog_root)
    configured = mode()
    max_wait_s()  # a malformed ENGINE_NOTIFY_MAX_WAIT_S: exit 2 now, not a warning per message
    return Notifier(Routes(provider, record), context, destination_for,
                    mode=lambda: "off" if configured == "off" else ("print" if dry_run() or configured == "print" else "send"))
