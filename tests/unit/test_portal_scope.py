"""Who sees what in the portal: every page, API route and export enforces its scope (customer A never sees customer
B, by session or token, whatever the URL says), sign-in and CSRF rules, and no secret in any response."""

from __future__ import annotations

import hashlib
import re
import time

import pytest

from engine.errors import InputError
from engine.history import HistoryStore
from engine.portal import PortalSettings, tokens
from tests.unit import portal_fixtures as pf

CANARY_OUTPUT = "canary-output-7f3e9a"
CANARY_CLIENT_SECRET = "canary-client-secret-51c2"
CANARY_SESSION_KEY = "canary-session-key-" + "k" * 40

# Every route of the portal, by kind.  A route missing here fails test_every_route_is_in_this_table.
PUBLIC = {("GET", "/signin"), ("GET", "/auth/github"), ("GET", "/auth/github/callback"), ("POST", "/auth/local"), ("POST", "/signout"),
          ("GET", "/healthz")}
ANY = {"/": "/", "/customers": "/customers", "/sla": "/sla?days=60", "/api/me": "/api/me", "/api/customers": "/api/customers",
       "/api/sla": "/api/sla?days=60", "/api/sla.csv": "/api/sla.csv?days=60", "/api/openapi.json": "/api/openapi.json"}
PROVIDER = {"/fleet": "/fleet", "/usage": "/usage", "/api/fleet": "/api/fleet", "/api/usage": "/api/usage", "/api/usage.csv": "/api/usage.csv"}
CUSTOMER = {"/customers/{customer}": "/customers/{c}", "/customers/{customer}/stacks/{environment}": "/customers/{c}/stacks/staging",
            "/customers/{customer}/runs": "/customers/{c}/runs", "/api/customers/{customer}": "/api/customers/{c}",
            "/api/customers/{customer}/stacks/{environment}": "/api/customers/{c}/stacks/staging",
            "/api/customers/{customer}/runs": "/api/customers/{c}/runs", "/api/customers/{customer}/runs.csv": "/api/customers/{c}/runs.csv"}
RUN = {"/runs/{run_id}": "/runs/{id}", "/api/runs/{run_id}": "/api/runs/{id}"}
# URL tampering: another customer named through filters, encodings, case, and parameters the routes do not take.
TAMPERED = ["/sla?customer=beta", "/api/sla?customer=beta", "/api/sla.csv?customer=beta", "/customers/BETA", "/customers/beta%2F",
            "/api/customers/beta%20", "/customers/acme/../beta", "/api/customers/acme/stacks/..%2F..%2Fbeta%2Fstacks%2Fstaging",
            "/api/runs/0", "/api/runs/-1", "/api/runs/99999999999999999999", "/api/customers/beta/runs?customer=acme"]


def all_routes(app) -> set[tuple[str, str]]:
    out = set()
    for route in app.routes:
        inner = getattr(route, "original_router", None)
        for r in (inner.routes if inner is not None else [route]):
            for method in getattr(r, "methods", None) or {"GET"}:
                if method != "HEAD" and not r.path.startswith("/static"):
                    out.add((method, r.path))
    return out


def run_ids(store: HistoryStore, customer: str) -> list[int]:
    return [r["id"] for r in store.select("SELECT id FROM runs WHERE customer = ? ORDER BY id", (customer,))]


@pytest.fixture
def world(tmp_path):
    app, store, root = pf.portal(tmp_path)
    token_a, _ = tokens.create(store, "acme automation", "customer:acme", "test")
    token_p, _ = tokens.create(store, "provider automation", "provider", "test")
    return {"app": app, "store": store, "a_runs": run_ids(store, "acme"), "b_runs": run_ids(store, "beta"), "token_a": token_a, "token_p": token_p}


def as_customer_a(world, how: str):
    c = pf.client(world["app"])
    if how == "session":
        pf.sign_in(c, "customer:acme")
    else:
        c.headers["Authorization"] = f"Bearer {world['token_a']}"
    return c


def test_every_route_is_in_this_table(world):
    known = PUBLIC | {("GET", p) for p in (*ANY, *PROVIDER, *CUSTOMER, *RUN)}
    assert all_routes(world["app"]) == known


def test_without_sign_in_pages_go_to_the_sign_in_page_and_the_api_answers_401(world):
    c = pf.client(world["app"])
    urls = [*ANY.values(), *PROVIDER.values(), *(u.format(c="acme") for u in CUSTOMER.values()),
            *(u.format(id=world["a_runs"][0]) for u in RUN.values())]
    for url in urls:
        resp = c.get(url, follow_redirects=False)
        if url.startswith("/api"):
            assert resp.status_code == 401, url
        else:
            assert resp.status_code == 303 and resp.headers["location"].startswith("/signin?next="), url
    assert c.get("/api/me", headers={"Authorization": "Bearer engp_" + "x" * 43}).status_code == 401
    assert c.get("/api/me", headers={"Authorization": "Basic YWRtaW46YWRtaW4="}).status_code == 401


@pytest.mark.parametrize("how", ["session", "token"])
def test_customer_a_gets_403_or_404_for_everything_of_customer_b(world, how):
    c = as_customer_a(world, how)
    for template in CUSTOMER.values():
        assert c.get(template.format(c="beta")).status_code == 404, template
        assert c.get(template.format(c="nobody")).status_code == 404, template  # unknown and forbidden look the same
    for template in RUN.values():
        for run_id in world["b_runs"]:
            assert c.get(template.format(id=run_id)).status_code == 404, (template, run_id)
    for url in PROVIDER.values():
        assert c.get(url).status_code == 403, url
    for url in TAMPERED:
        assert c.get(url).status_code in (400, 404), url


@pytest.mark.parametrize("how", ["session", "token"])
def test_customer_a_sees_its_own_and_nothing_of_b_anywhere(world, how):
    c = as_customer_a(world, how)
    responses = {}
    for url in [*ANY.values(), *(u.format(c="acme") for u in CUSTOMER.values()),
                *(u.format(id=i) for u in RUN.values() for i in world["a_runs"]), "/api/customers/acme/runs?limit=1000",
                "/api/customers/acme/runs.csv?operation=up&from=2026-01-01&to=2026-12-31"]:
        resp = c.get(url)
        assert resp.status_code == 200, (url, resp.text[:200])
        responses[url] = resp.text
    for url, body in responses.items():
        assert not re.search(r"\bbeta\b|Beta Ltd|beta-org", body), url
    assert "fleet" not in c.get("/api/sla?days=60").json()  # fleet-wide figures are the provider's
    assert [r["scope"] for r in __import__("csv").DictReader(responses["/api/sla.csv?days=60"].splitlines())] == ["acme"]
    assert c.get("/api/me").json()["customers"] == ["acme"]


def test_the_provider_sees_every_customer(world):
    for how in ("session", "token"):
        c = pf.client(world["app"])
        if how == "session":
            pf.sign_in(c, "provider")
        else:
            c.headers["Authorization"] = f"Bearer {world['token_p']}"
        for url in [*ANY.values(), *PROVIDER.values(), *(u.format(c=x) for u in CUSTOMER.values() for x in ("acme", "beta")),
                    *(u.format(id=i) for u in RUN.values() for i in world["b_runs"])]:
            assert c.get(url).status_code == 200, (how, url)
        fleet = c.get("/api/fleet").json()
        assert [x["customer"] for x in fleet["customers"]] == ["acme", "beta"]  # acme has drifted: first
        assert [x["state"] for x in fleet["customers"]] == ["drifted", "never-deployed"]  # beta: production never deployed


def test_tokens_are_stored_hashed_and_revocation_is_immediate(world, tmp_path):
    store = world["store"]
    raw = b"".join(p.read_bytes() for p in (tmp_path / "home").glob("history.sqlite3*"))
    assert world["token_a"].encode() not in raw and hashlib.sha256(world["token_a"].encode()).hexdigest().encode() in raw
    c = pf.client(world["app"])
    c.headers["Authorization"] = f"Bearer {world['token_a']}"
    assert c.get("/api/me").json() == {"login": "token:acme automation", "provider": False, "customers": ["acme"], "via": "token"}
    (record,) = [r for r in tokens.list_tokens(store) if r.scope == "customer:acme"]
    tokens.revoke(store, record.id)
    assert c.get("/api/me").status_code == 401
    with pytest.raises(InputError):
        tokens.revoke(store, record.id)  # already revoked
    with pytest.raises(InputError):
        tokens.scope_for("acme", True)


def test_state_changing_forms_need_the_sessions_csrf_token(world):
    c = pf.client(world["app"])
    assert c.post("/auth/local", data={"who": "provider"}).status_code == 403
    assert c.post("/auth/local", data={"who": "provider", "csrf": "forged"}).status_code == 403
    pf.sign_in(c, "customer:acme")
    assert c.post("/signout", data={}).status_code == 403
    assert c.get("/api/me").status_code == 200  # still signed in
    csrf = pf.csrf_of(c.get("/customers/acme").text)
    assert c.post("/signout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert c.get("/api/me").status_code == 401


def test_local_sign_in_answers_only_this_machine_directly(world, tmp_path):
    c = pf.client(world["app"])
    csrf = pf.csrf_of(c.get("/signin").text)
    form = {"who": "provider", "csrf": csrf}
    assert c.post("/auth/local", data=form, headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 403
    assert c.post("/auth/local", data=form, headers={"Forwarded": "for=203.0.113.9"}).status_code == 403
    assert c.post("/auth/local", data=form, headers={"Host": "portal.example.com"}).status_code == 403
    remote = pf.client(world["app"], host="192.0.2.10")
    remote.cookies = c.cookies
    assert remote.post("/auth/local", data=form).status_code == 403
    assert c.post("/auth/local", data={"who": "customer:nobody", "csrf": csrf}).status_code == 400
    # a portal started for GitHub sign-in has no local sign-in at all, and a local session is void there
    settings = PortalSettings(github_client_id="Iv1.test", github_client_secret=CANARY_CLIENT_SECRET, session_key=CANARY_SESSION_KEY,
                              provider_logins=frozenset({"octo"}))
    app, _store, _root = pf.portal(tmp_path / "gh", settings=settings)
    gh = pf.client(app)
    assert gh.post("/auth/local", data=form).status_code == 404
    assert "Local sign-in" not in gh.get("/signin").text


def test_local_sign_in_cannot_be_enabled_beyond_loopback():
    for host in ("0.0.0.0", "192.0.2.1", "::", "portal.example.com"):
        with pytest.raises(InputError, match="--local-sign-in is refused"):
            PortalSettings(host=host, local_sign_in=True).checked()
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert PortalSettings(host=host, local_sign_in=True).checked().local_sign_in
    with pytest.raises(InputError, match="no sign-in is configured"):
        PortalSettings().checked()
    with pytest.raises(InputError, match="ENGINE_PORTAL_SESSION_KEY"):
        PortalSettings(github_client_id="x", github_client_secret="y", provider_logins=frozenset({"a"})).checked()


def test_engine_serve_refuses_local_sign_in_on_a_public_address(tmp_path):
    from tests.conftest import EngineCLI

    root = pf.catalog(tmp_path / "c")
    run = EngineCLI(tmp_path / "home", root)("serve", "--host", "0.0.0.0", "--local-sign-in")
    assert run.code == 2 and "--local-sign-in is refused on 0.0.0.0" in run.stdout + run.stderr


def test_session_cookie_is_signed_httponly_samesite_and_expires(world, monkeypatch):
    c = pf.client(world["app"])
    page = c.get("/signin")
    resp = c.post("/auth/local", data={"who": "provider", "csrf": pf.csrf_of(page.text)}, follow_redirects=False)
    cookie = resp.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie  # http on loopback
    # a cookie changed by hand is not a session
    value = c.cookies.get("engine_portal")
    c.cookies.set("engine_portal", value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert c.get("/api/me").status_code == 401
    # sign-in is read again after ENGINE_PORTAL_SESSION_HOURS
    c.cookies.clear()
    pf.sign_in(c, "provider")
    assert c.get("/api/me").status_code == 200
    later = time.time() + 9 * 3600
    monkeypatch.setattr("engine.portal.auth.time.time", lambda: later)
    assert c.get("/api/me").status_code == 401


def test_cookies_are_secure_behind_https(tmp_path):
    settings = PortalSettings(local_sign_in=True, public_url="https://portal.example.com")
    app, _store, _root = pf.portal(tmp_path, settings=settings)
    c = pf.client(app, scheme="https")
    resp = c.post("/auth/local", data={"who": "provider", "csrf": pf.csrf_of(c.get("/signin").text)}, follow_redirects=False)
    assert "secure" in resp.headers["set-cookie"].lower()


def test_next_after_sign_in_stays_on_the_portal(world):
    c = pf.client(world["app"])
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        resp = c.post("/auth/local", data={"who": "provider", "csrf": pf.csrf_of(c.get("/signin").text), "next": target},
                      follow_redirects=False)
        assert resp.headers["location"] == "/", target


def test_no_secret_in_any_response(tmp_path, monkeypatch):
    """Canaries: a secret stack output (masked by the Pulumi runner's own masking), the OAuth client secret, the session
    key and an API token.  Every route is fetched as the provider and as a customer; none may show up anywhere."""
    from pulumi.automation import OutputValue

    from engine.runners.pulumi import _mask

    def outputs(customer, environment):
        return {"available": True, "reason": None,
                "outputs": _mask({"endpoint": OutputValue(f"{customer}.example", False), "db_password": OutputValue(CANARY_OUTPUT, True),
                                  "nested": OutputValue({"password": CANARY_OUTPUT}, True)})}

    settings = PortalSettings(local_sign_in=True, github_client_id="Iv1.test", github_client_secret=CANARY_CLIENT_SECRET,
                              session_key=CANARY_SESSION_KEY, provider_logins=frozenset({"octo"}))
    app, store, _root = pf.portal(tmp_path, outputs=outputs, settings=settings)
    token, _ = tokens.create(store, "canary", "provider", "test")
    canaries = (CANARY_OUTPUT, CANARY_CLIENT_SECRET, CANARY_SESSION_KEY, token)
    ids = run_ids(store, "acme") + run_ids(store, "beta")
    seen = 0
    for who in ("provider", "customer:acme", "token"):
        c = pf.client(app)
        if who == "token":
            c.headers["Authorization"] = f"Bearer {token}"
        else:
            pf.sign_in(c, who)
        urls = [*ANY.values(), *PROVIDER.values(), *(u.format(c=x) for u in CUSTOMER.values() for x in ("acme", "beta")),
                *(u.format(id=i) for u in RUN.values() for i in ids), "/signin", "/auth/github", "/healthz", "/static/portal.css"]
        for url in urls:
            resp = c.get(url, follow_redirects=False)
            text = resp.text + " ".join(f"{k}: {v}" for k, v in resp.headers.items())
            assert not any(x in text for x in canaries), (who, url)
            seen += "db_password" in resp.text
    assert seen >= 6  # the secret output is listed (by name, masked) on the stack pages and in their API
    page = pf.client(app)
    pf.sign_in(page, "provider")
    html = page.get("/customers/acme/stacks/staging").text
    assert "db_password" in html and "secret" in html and "acme.example" in html
    assert "~1" in html and "built-in method" not in html  # the 05-03 deployment's one update, shown as a number
