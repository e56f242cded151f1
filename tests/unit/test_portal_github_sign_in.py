"""Signing in to the portal with GitHub: the OAuth web flow against the local GitHub (REST fake + its OAuth web host),
who sees what from the user's repository access and the provider's team, state and code checks, no token kept."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from engine.portal import PortalSettings
from tests.fakegithub.fixture import github_server  # noqa: F401 - pytest fixture
from tests.fakegithub.oauth import FakeGitHubOAuth
from tests.unit import portal_fixtures as pf

CLIENT_ID, CLIENT_SECRET = "Iv1.portal-test", "portal-client-secret-for-tests"


@pytest.fixture
def world(github_server, tmp_path):  # noqa: F811
    for owner in ("acme-org", "beta-org"):
        github_server.add_repo(owner, "app")
    github_server.add_repo("alice", "dotfiles", owner_type="User")
    github_server.grant("acme-org", "app", "alice", "pull")
    github_server.add_team_member("provider-org", "platform", "pat")
    with FakeGitHubOAuth(github_server, CLIENT_ID, CLIENT_SECRET) as web:
        settings = PortalSettings(github_client_id=CLIENT_ID, github_client_secret=CLIENT_SECRET, session_key="s" * 48,
                                  github_server_url=web.url, github_api_url=github_server.url, provider_team="provider-org/platform")
        app, _store, _root = pf.portal(tmp_path, settings=settings)
        yield {"app": app, "web": web, "api": github_server}


def sign_in(world, login: str | None, next_path: str = "/"):
    """The browser's round trip: the portal -> GitHub's authorize page -> back to the callback.  Returns (client, final response)."""
    world["web"].signed_in_as = login
    c = pf.client(world["app"])
    start = c.get("/auth/github", params={"next": next_path}, follow_redirects=False)
    assert start.status_code == 303 and start.headers["location"].startswith(world["web"].url + "/login/oauth/authorize?")
    query = parse_qs(urlsplit(start.headers["location"]).query)
    assert query["client_id"] == [CLIENT_ID] and query["redirect_uri"] == ["http://127.0.0.1:8080/auth/github/callback"]
    back = httpx.get(start.headers["location"], follow_redirects=False)
    assert back.status_code == 302
    callback = urlsplit(back.headers["location"])
    return c, c.get(f"{callback.path}?{callback.query}", follow_redirects=False)


def test_a_customer_user_sees_the_customers_whose_repository_they_can_read(world):
    c, done = sign_in(world, "alice", "/customers/acme")
    assert done.status_code == 303 and done.headers["location"] == "/customers/acme"
    assert c.get("/api/me").json() == {"login": "alice", "provider": False, "customers": ["acme"], "via": "github"}
    assert c.get("/customers/acme").status_code == 200
    assert c.get("/customers/beta").status_code == 404 and c.get("/fleet").status_code == 403


def test_the_provider_team_sees_everything_and_strangers_nothing(world):
    c, _ = sign_in(world, "pat")
    assert c.get("/api/me").json()["provider"] is True and c.get("/fleet").status_code == 200
    c, _ = sign_in(world, "mallory")
    assert c.get("/api/me").json()["customers"] == [] and c.get("/customers/acme").status_code == 404


def test_the_session_keeps_no_github_token(world):
    c, _ = sign_in(world, "alice")
    issued = [t for t, login in world["api"].token_logins.items() if login == "alice"]
    assert issued
    payload = c.cookies.get("engine_portal").split(".")[0]
    session = json.loads(base64.b64decode(payload + "=" * (-len(payload) % 4)))
    assert set(session) == {"login", "provider", "customers", "via", "signed_in_at", "csrf"}
    assert not any(t in json.dumps(session) for t in issued) and CLIENT_SECRET not in json.dumps(session)


def test_a_callback_that_did_not_start_here_or_a_used_code_signs_nobody_in(world):
    world["web"].signed_in_as = "alice"
    c = pf.client(world["app"])
    start = c.get("/auth/github", follow_redirects=False)
    back = urlsplit(httpx.get(start.headers["location"], follow_redirects=False).headers["location"])
    code = parse_qs(back.query)["code"][0]
    assert c.get("/auth/github/callback", params={"code": code, "state": "forged"}).status_code == 403  # CSRF on sign-in
    other = pf.client(world["app"])  # another browser, without the state cookie
    assert other.get(f"{back.path}?{back.query}").status_code == 403
    assert c.get("/api/me").status_code == 401
    # the code itself is good (nothing above used it): with a fresh start it signs in once, and never again
    start = c.get("/auth/github", follow_redirects=False)
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    assert c.get("/auth/github/callback", params={"code": code, "state": state}, follow_redirects=False).status_code == 303
    assert c.get("/api/me").json()["login"] == "alice"
    replay = pf.client(world["app"])
    start = replay.get("/auth/github", follow_redirects=False)
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    refused = replay.get("/auth/github/callback", params={"code": code, "state": state}, follow_redirects=False)
    assert refused.status_code == 303 and refused.headers["location"].startswith("/signin?error=")
    assert "bad_verification_code" in replay.get(refused.headers["location"]).text
    assert replay.get("/api/me").status_code == 401
