"""What the provider configures for ``engine serve``: sign-in, sessions, and the local sign-in guard.

Sign-in with GitHub (production) reads ``ENGINE_PORTAL_GITHUB_CLIENT_ID`` / ``ENGINE_PORTAL_GITHUB_CLIENT_SECRET``
(an OAuth App, or a GitHub App's client id and secret for its user flow), ``ENGINE_PORTAL_URL`` (the address
people open, for the callback and the ``Secure`` cookie flag), ``ENGINE_PORTAL_SESSION_KEY`` (signs the session
cookie) and who the provider's team is: ``ENGINE_PORTAL_PROVIDER_TEAM`` (``org/team-slug``) and/or
``ENGINE_PORTAL_PROVIDER_LOGINS`` (comma-separated).  GitHub's addresses come from ``GITHUB_SERVER_URL`` and
``GITHUB_API_URL`` like everywhere in the engine.

The local sign-in (tests, the demo) lets anyone who reaches the page pick who they are, so it is only
allowed when BOTH the server is told so (``--local-sign-in``) AND it listens on a loopback address; the
application checks again on every sign-in that the request came from this machine and not through a proxy.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field
from typing import Mapping

from engine.errors import InputError

LOOPBACK_NAMES = ("localhost",)
DEFAULT_SESSION_HOURS = 8.0
MIN_SESSION_KEY = 32


def is_loopback(host: str) -> bool:
    """``host`` (an address or ``localhost``) is this machine only: 127.0.0.0/8, ::1 or localhost."""
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class PortalSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str | None = None  # https://portal.example.com — the callback's base and whether cookies are Secure
    session_key: str = field(default="", repr=False)
    session_hours: float = DEFAULT_SESSION_HOURS  # after this, sign in again (access is read again from GitHub)
    github_client_id: str | None = None
    github_client_secret: str | None = field(default=None, repr=False)
    github_server_url: str = "https://github.com"
    github_api_url: str = "https://api.github.com"
    provider_team: str | None = None  # org/team-slug
    provider_logins: frozenset[str] = frozenset()
    local_sign_in: bool = False
    cost_refresh_s: float = 300.0  # how often the fleet's desired state (environments, monthly cost) is read again

    @property
    def github_sign_in(self) -> bool:
        return bool(self.github_client_id and self.github_client_secret)

    @property
    def secure_cookies(self) -> bool:
        return bool(self.public_url and self.public_url.lower().startswith("https://"))

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def is_provider_login(self, login: str) -> bool:
        return login.lower() in {x.lower() for x in self.provider_logins}

    @classmethod
    def from_env(cls, host: str = "127.0.0.1", port: int = 8080, local_sign_in: bool = False,
                 env: Mapping[str, str] | None = None) -> "PortalSettings":
        """The settings for ``engine serve``; raises ``InputError`` (exit 2) for a configuration that cannot be served."""
        env = os.environ if env is None else env
        team = env.get("ENGINE_PORTAL_PROVIDER_TEAM") or None
        if team and (team.count("/") != 1 or not all(team.split("/"))):
            raise InputError(f"ENGINE_PORTAL_PROVIDER_TEAM must be ORG/TEAM-SLUG, not {team!r}")
        logins = frozenset(x.strip() for x in (env.get("ENGINE_PORTAL_PROVIDER_LOGINS") or "").split(",") if x.strip())
        try:
            hours = float(env.get("ENGINE_PORTAL_SESSION_HOURS") or DEFAULT_SESSION_HOURS)
        except ValueError:
            raise InputError("ENGINE_PORTAL_SESSION_HOURS must be a number of hours") from None
        settings = cls(host=host, port=port, public_url=(env.get("ENGINE_PORTAL_URL") or None),
                       session_key=env.get("ENGINE_PORTAL_SESSION_KEY") or "", session_hours=hours,
                       github_client_id=env.get("ENGINE_PORTAL_GITHUB_CLIENT_ID") or None,
                       github_client_secret=env.get("ENGINE_PORTAL_GITHUB_CLIENT_SECRET") or None,
                       github_server_url=(env.get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/"),
                       github_api_url=(env.get("GITHUB_API_URL") or "https://api.github.com").rstrip("/"),
                       provider_team=team, provider_logins=logins, local_sign_in=local_sign_in)
        return settings.checked()

    def checked(self) -> "PortalSettings":
        """These settings, or ``InputError`` saying what is missing or refused (nothing is served then)."""
        if self.local_sign_in and not is_loopback(self.host):
            raise InputError(f"--local-sign-in is refused on {self.host}: the local sign-in lets whoever reaches the page choose who "
                             "they are, so it only listens on this machine (127.0.0.1, ::1 or localhost)",
                             hint="drop --host, or sign in with GitHub (ENGINE_PORTAL_GITHUB_CLIENT_ID, docs/PORTAL.md)")
        if not self.local_sign_in and not self.github_sign_in:
            raise InputError("no sign-in is configured: set ENGINE_PORTAL_GITHUB_CLIENT_ID and ENGINE_PORTAL_GITHUB_CLIENT_SECRET "
                             "(GitHub sign-in), or pass --local-sign-in on this machine (tests, the demo)",
                             hint="docs/PORTAL.md, 'Sign-in'")
        if self.github_client_id and not self.github_client_secret:
            raise InputError("ENGINE_PORTAL_GITHUB_CLIENT_ID is set without ENGINE_PORTAL_GITHUB_CLIENT_SECRET")
        if self.github_sign_in:
            if len(self.session_key) < MIN_SESSION_KEY:
                raise InputError(f"ENGINE_PORTAL_SESSION_KEY must be at least {MIN_SESSION_KEY} characters: it signs the session cookies",
                                 hint="for example: python3 -c 'import secrets; print(secrets.token_urlsafe(48))'")
            if not self.public_url and not is_loopback(self.host):
                raise InputError("ENGINE_PORTAL_URL is needed when the portal listens beyond this machine (GitHub sends people back to it)",
                                 hint="e.g. ENGINE_PORTAL_URL=https://portal.example.com")
            if not (self.provider_team or self.provider_logins):
                raise InputError("say who the provider's team is: ENGINE_PORTAL_PROVIDER_TEAM=org/team-slug and/or "
                                 "ENGINE_PORTAL_PROVIDER_LOGINS=login1,login2")
        if self.session_hours <= 0 or self.session_hours > 24 * 30:
            raise InputError("ENGINE_PORTAL_SESSION_HOURS must be more than 0 and at most 720")
        return self

    def with_session_key(self) -> "PortalSettings":
        """Local sign-in without a configured key: a random one for this process (sessions end with it)."""
        if self.session_key:
            return self
        from dataclasses import replace

        return replace(self, session_key=secrets.token_urlsafe(48))
