"""Who runs the engine and from where: the actor and the CI run link, for history, comments and audits."""

from __future__ import annotations

import getpass
import os
from typing import Mapping


def actor(env: Mapping[str, str] | None = None) -> str:
    """The GitHub user who started the workflow run, else this machine's user."""
    env = os.environ if env is None else env
    if env.get("GITHUB_ACTOR"):
        return env["GITHUB_ACTOR"]
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no name for this uid
        return f"uid-{os.getuid()}"


def run_url(env: Mapping[str, str] | None = None) -> str | None:
    """The GitHub Actions run this process belongs to, or None outside Actions."""
    env = os.environ if env is None else env
    if env.get("GITHUB_REPOSITORY") and env.get("GITHUB_RUN_ID"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        return f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    return None
