"""Who is asking, and what they may see.  Every route declares one of the dependencies at the bottom.

- **GitHub sign-in** (production): the OAuth web flow (an OAuth App, or a GitHub App's user flow with the same
  endpoints).  With the user's token the portal reads who they are (``GET /user``), whether they are in the
  provider's team (``ENGINE_PORTAL_PROVIDER_LOGINS``, or an active membership of ``ENGINE_PORTAL_PROVIDER_TEAM``)
  and which repositories they can read (``GET /user/repos``); a customer is theirs when they can read its
  tenant record's repository.  The token is then dropped: only the login, the provider flag and the customer
  ids go into the session, a signed cookie (``HttpOnly``, ``SameSite=Lax``, ``Secure`` behind https) that
  expires after ``ENGINE_PORTAL_SESSION_HOURS`` — then access is read from GitHub again.
- **Local sign-in** (tests, the demo): pick the provider or a customer.  Refused unless the server was started
  with ``--local-sign-in`` on a loopback address (``settings.py``), and here again for any request that did not
  come from this machine directly (a non-loopback peer or Host, or a proxy's forwarding headers).
- **API tokens** (``Authorization: Bearer engp_…``): scoped to one customer or the provider (``tokens.py``).

Out of scope is 404 for a customer's data (whether it exists is not told) and 403 for the provider's pages.
"""

from __future__ import annotations

import hmac
import re
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
from fastapi import Depends, Form, HTTPException, Request

from engine.portal import tokens
from engine.portal.settings import PortalSettings, is_loopback

CUSTOMER = re.compile(r"^[a-z][a-z0-9-]{1,31}$")
ENVIRONMENT = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
GITHUB_TIMEOUT_S = 10.0
MAX_REPO_PAGES = 50  # 5,000 repositories read at sign-in at most
FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip")


@dataclass(frozen=True)
class Principal:
    login: str
    provider: bool
    customers: frozenset[str]
    via: str  # github | local | token

    def can_see(self, customer: str) -> bool:
        return self.provider or customer in self.customers

    def to_dict(self) -> dict:
        return {"login": self.login, "provider": self.provider, "customers": sorted(self.customers), "via": self.via}


class NotSignedIn(Exception):
    """No session and no token: pages redirect to the sign-in page, the API answers 401."""


class SignInFailed(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# -- sessions -----------------------------------------------------------------------------------------


def start_session(request: Request, principal: Principal) -> None:
    request.session.clear()
    request.session.update({"login": principal.login, "provider": principal.provider, "customers": sorted(principal.customers),
                            "via": principal.via, "signed_in_at": int(time.time()), "csrf": secrets.token_urlsafe(24)})


def csrf_token(request: Request) -> str:
    """This session's CSRF token (made on first use): every form that changes something carries it."""
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(24)
    return token


def _session_principal(request: Request, settings: PortalSettings) -> Principal | None:
    s = request.session
    if not s.get("login"):
        return None
    expired = time.time() - float(s.get("signed_in_at") or 0) > settings.session_hours * 3600
    if expired or (s.get("via") == "local" and not settings.local_sign_in) or (s.get("via") == "github" and not settings.github_sign_in):
        s.clear()
        return None
    return Principal(str(s["login"]), bool(s.get("provider")), frozenset(s.get("customers") or ()), str(s.get("via")))


# -- GitHub sign-in -------------------------------------------------------------------------------------


def callback_url(settings: PortalSettings) -> str:
    return f"{settings.base_url}/auth/github/callback"


def authorize_url(settings: PortalSettings, state: str) -> str:
    query = {"client_id": settings.github_client_id, "redirect_uri": callback_url(settings), "state": state,
             "scope": "repo read:org", "allow_signup": "false"}
    return f"{settings.github_server_url}/login/oauth/authorize?{urlencode(query)}"


def exchange_code(settings: PortalSettings, code: str, transport: httpx.BaseTransport | None = None) -> str:
    """The user's access token for ``code`` (GitHub's ``/login/oauth/access_token``); ``SignInFailed`` otherwise."""
    try:
        with httpx.Client(timeout=GITHUB_TIMEOUT_S, transport=transport) as client:
            resp = client.post(f"{settings.github_server_url}/login/oauth/access_token", headers={"Accept": "application/json"},
                               data={"client_id": settings.github_client_id, "client_secret": settings.github_client_secret,
                                     "code": code, "redirect_uri": callback_url(settings)})
    except httpx.HTTPError as exc:
        raise SignInFailed(f"GitHub could not be reached ({type(exc).__name__})") from None
    body = resp.json() if resp.headers.get("content-type", "").startswith("application/json") else {}
    token = body.get("access_token") if resp.status_code == 200 else None
    if not token:
        # GitHub answers 200 with {"error": "bad_verification_code", ...} for a used or expired code
        raise SignInFailed(f"GitHub refused the sign-in ({body.get('error') or resp.status_code}); try again")
    return str(token)


def github_principal(settings: PortalSettings, token: str, repositories: dict[str, str]) -> Principal:
    """Who the token's user is and what they may see. ``repositories``: repository (lower case) -> customer."""
    from githubkit import GitHub, TokenAuthStrategy
    from githubkit.exception import RequestFailed

    with GitHub(TokenAuthStrategy(token), base_url=settings.github_api_url, timeout=GITHUB_TIMEOUT_S, http_cache=False) as gh:
        try:
            login = gh.rest.users.get_authenticated().json()["login"]
        except RequestFailed as exc:
            raise SignInFailed(f"GitHub did not say who you are ({exc.response.status_code})") from None
        provider = settings.is_provider_login(login)
        if not provider and settings.provider_team:
            org, team = settings.provider_team.split("/", 1)
            try:
                state = gh.rest.teams.get_membership_for_user_in_org(org, team, login).json().get("state")
                provider = state == "active"
            except RequestFailed as exc:
                if exc.response.status_code not in (403, 404):  # 404: not a member (or the team is not visible to them)
                    raise SignInFailed(f"GitHub did not answer about team {settings.provider_team} ({exc.response.status_code})") from None
        customers: set[str] = set()
        if not provider:
            for page in range(1, MAX_REPO_PAGES + 1):
                try:
                    repos = gh.rest.repos.list_for_authenticated_user(per_page=100, page=page).json()
                except RequestFailed as exc:
                    raise SignInFailed(f"GitHub did not list your repositories ({exc.response.status_code})") from None
                for repo in repos:
                    customer = repositories.get(str(repo.get("full_name", "")).lower())
                    if customer and (repo.get("permissions") or {}).get("pull"):
                        customers.add(customer)
                if len(repos) < 100:
                    break
    return Principal(login, provider, frozenset(customers), "github")


# -- dependencies: every route declares one ---------------------------------------------------------------


def current_principal(request: Request) -> Principal:
    """The signed-in person or the API token; ``NotSignedIn`` otherwise."""
    ctx = request.app.state.portal
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        record = tokens.verify(ctx.store, value.strip()) if scheme.lower() == "bearer" else None
        if record is None:
            raise HTTPException(401, "invalid or revoked API token", headers={"WWW-Authenticate": "Bearer"})
        customer = record.customer
        return Principal(f"token:{record.name}", customer is None, frozenset({customer} if customer else ()), "token")
    principal = _session_principal(request, ctx.settings)
    if principal is None:
        raise NotSignedIn()
    return principal


def provider_only(principal: Principal = Depends(current_principal)) -> Principal:
    if not principal.provider:
        raise HTTPException(403, "the provider's team only")
    return principal


def customer_in_scope(customer: str, request: Request, principal: Principal = Depends(current_principal)) -> str:
    """The path's customer, when it exists and the principal may see it; 404 otherwise (existence is not told)."""
    tenants = request.app.state.portal.tenants.tenants
    if not CUSTOMER.fullmatch(customer) or customer not in tenants.by_id or not principal.can_see(customer):
        raise HTTPException(404, "no such customer")
    return customer


def environment_name(environment: str) -> str:
    if not ENVIRONMENT.fullmatch(environment):
        raise HTTPException(404, "no such environment")
    return environment


def run_in_scope(run_id: int, request: Request, principal: Principal = Depends(current_principal)) -> dict:
    """The run with this id, when its customer is the principal's; 404 otherwise."""
    from engine.portal import queries

    row = queries.run(request.app.state.portal.store, run_id) if 0 < run_id < 2**62 else None
    if row is None or not principal.can_see(row["customer"]):
        raise HTTPException(404, "no such run")
    return row


def visible_customers(request: Request, principal: Principal = Depends(current_principal)) -> list[str]:
    tenants = request.app.state.portal.tenants.tenants
    return sorted(c for c in tenants.by_id if principal.can_see(c))


def checked_csrf(request: Request, csrf: str = Form("")) -> None:
    """A form that changes something must carry this session's CSRF token."""
    expected = request.session.get("csrf") or ""
    if not expected or not hmac.compare_digest(expected.encode(), csrf.encode()):
        raise HTTPException(403, "the form expired or did not come from this portal; reload the page and try again")


def local_request(request: Request) -> None:
    """The local sign-in answers only when enabled, and only to this machine, directly (no proxy in between)."""
    ctx = request.app.state.portal
    if not ctx.settings.local_sign_in:
        raise HTTPException(404, "not found")
    peer = request.client.host if request.client else ""
    host = (request.headers.get("host") or "").rsplit(":", 1)[0] if not (request.headers.get("host") or "").startswith("[") \
        else (request.headers.get("host") or "").split("]")[0] + "]"
    if not is_loopback(peer) or not is_loopback(host) or any(h in request.headers for h in FORWARDING_HEADERS):
        raise HTTPException(403, "the local sign-in only answers requests made on this machine, directly")
