"""The fake GitHub server: schema checks, state, faults, driven by a real githubkit client.

These tests pin the fake's behaviour so that tests of the engine built on it can
trust what it reports: a violation means GitHub would have rejected (or
silently ignored) the request, and the state helpers show what a customer sees.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta

import httpx
import pytest
from githubkit import GitHub, TokenAuthStrategy
from githubkit.exception import (
    PrimaryRateLimitExceeded,
    RequestFailed,
    RequestTimeout,
    SecondaryRateLimitExceeded,
)

from tests.fakegithub import FakeGitHub, schema
from tests.fakegithub.fixture import github_server  # noqa: F401  (pytest fixture)

SHA = "0123456789abcdef0123456789abcdef01234567"


def client(server: FakeGitHub, **kwargs) -> GitHub:
    kwargs.setdefault("timeout", 5)
    return GitHub(TokenAuthStrategy("test-token"), base_url=server.url, **kwargs)


def raw(server: FakeGitHub, token: str = "test-token") -> httpx.Client:
    """A bare HTTP client, for requests githubkit would refuse to send."""
    return httpx.Client(base_url=server.url, headers={"Authorization": f"token {token}"}, timeout=5)


def take_violations(server: FakeGitHub) -> list[str]:
    found, server.violations[:] = list(server.violations), []
    return found


# -- schema index ------------------------------------------------------------


def test_index_matches_concrete_paths_preferring_literal_segments():
    index = schema.load_index()
    assert len(index) > 1000  # the whole of GitHub's REST API, not a hand-picked list

    op, params = index.match("PATCH", "/repos/acme/app/issues/comments/42")
    assert op.path == "/repos/{owner}/{repo}/issues/comments/{comment_id}"
    assert params == {"owner": "acme", "repo": "app", "comment_id": "42"}
    assert op.body_model == "ReposOwnerRepoIssuesCommentsCommentIdPatchBody"
    assert op.response_model == "IssueComment"

    # A literal segment beats a parameter in the same position.
    assert index.match("GET", "/repos/acme/app/issues/comments")[0].path == "/repos/{owner}/{repo}/issues/comments"
    assert index.match("GET", "/repos/acme/app/issues/7")[0].path == "/repos/{owner}/{repo}/issues/{issue_number}"

    # File paths and refs may contain slashes.
    op, params = index.match("GET", "/repos/acme/app/contents/stacks/prod/stack.yaml")
    assert params["path"] == "stacks/prod/stack.yaml"
    op, params = index.match("GET", "/repos/acme/app/commits/feature/x/status")
    assert (op.path, params["ref"]) == ("/repos/{owner}/{repo}/commits/{ref}/status", "feature/x")

    assert index.match("GET", "/repos/acme/app/no-such-thing/1") is None
    assert index.match("TRACE", "/repos/acme/app") is None


def test_body_validation_rejects_wrong_values_and_undeclared_keys_at_any_depth():
    index = schema.load_index()
    status = index.get("POST", "/repos/{owner}/{repo}/statuses/{sha}")
    schema.validate_body(status, {"state": "success", "context": "ci"})
    with pytest.raises(schema.SchemaViolation, match="state"):
        schema.validate_body(status, {"state": "ok"})
    with pytest.raises(schema.SchemaViolation, match="descripton"):
        schema.validate_body(status, {"state": "success", "descripton": "typo"})
    # Strict JSON: GitHub does not coerce "5" to 5.
    tokens = index.get("POST", "/app/installations/{installation_id}/access_tokens")
    with pytest.raises(schema.SchemaViolation):
        schema.validate_body(tokens, {"repository_ids": ["5"]}, b'{"repository_ids": ["5"]}')

    props = index.get("PATCH", "/repos/{owner}/{repo}/properties/values")
    schema.validate_body(props, {"properties": [{"property_name": "tier", "value": "gold"}]})
    with pytest.raises(schema.SchemaViolation, match=r"properties\.0\.name"):
        schema.validate_body(props, {"properties": [{"property_name": "tier", "value": "gold", "name": "x"}]})

    # Free-form objects (deployment payload, dispatch client_payload) take any key.
    deploy = index.get("POST", "/repos/{owner}/{repo}/deployments")
    schema.validate_body(deploy, {"ref": "main", "payload": {"anything": {"goes": 1}}})


# -- commit statuses ---------------------------------------------------------


def test_statuses_and_combined_status(github_server):
    gh = client(github_server)
    gh.rest.repos.create_commit_status("acme", "app", SHA, state="pending", context="engine/plan")
    created = gh.rest.repos.create_commit_status(
        "acme", "app", SHA, state="success", context="engine/plan",
        description="2 to add", target_url="https://ci.example/run/1",
    ).parsed_data
    assert created.creator.login == "test-user"
    gh.rest.repos.create_commit_status("acme", "app", SHA, state="failure", context="engine/apply")

    combined = gh.rest.repos.get_combined_status_for_ref("acme", "app", SHA).parsed_data
    assert combined.state == "failure"  # any failing context fails the commit
    assert {s.context: s.state for s in combined.statuses} == {"engine/plan": "success", "engine/apply": "failure"}
    assert combined.total_count == 2

    listed = gh.rest.repos.list_commit_statuses_for_ref("acme", "app", SHA).parsed_data
    assert [s.state for s in listed] == ["failure", "success", "pending"]  # newest first

    assert [s["state"] for s in github_server.statuses("acme", "app", SHA)] == ["pending", "success", "failure"]


def test_status_description_over_140_chars_is_rejected_like_github(github_server):
    gh = client(github_server)
    with pytest.raises(RequestFailed) as err:
        gh.rest.repos.create_commit_status("acme", "app", SHA, state="success", description="x" * 141)
    assert err.value.response.status_code == 422
    assert "too long" in err.value.response.json()["errors"][0]["message"]
    assert github_server.statuses("acme", "app", SHA) == []
    assert github_server.violations == []  # valid per schema; a GitHub business rule


# -- issue comments ------------------------------------------------------------


def test_comments_create_paginate_update_delete(github_server):
    gh = client(github_server)
    ids = [gh.rest.issues.create_comment("acme", "app", 7, body=f"comment {i}").parsed_data.id for i in range(5)]

    first = gh.rest.issues.list_comments("acme", "app", 7, per_page=2)
    assert [c.body for c in first.parsed_data] == ["comment 0", "comment 1"]
    assert 'rel="next"' in first.headers["link"] and 'rel="last"' in first.headers["link"]
    last = gh.rest.issues.list_comments("acme", "app", 7, per_page=2, page=3)
    assert [c.body for c in last.parsed_data] == ["comment 4"]
    assert 'rel="next"' not in last.headers["link"]
    # githubkit's paginator follows pages until a short one.
    assert len(list(gh.rest.paginate(gh.rest.issues.list_comments, owner="acme", repo="app",
                                     issue_number=7, per_page=2))) == 5

    updated = gh.rest.issues.update_comment("acme", "app", ids[0], body="edited").parsed_data
    assert updated.body == "edited" and updated.html_url.endswith(f"/acme/app/pull/7#issuecomment-{ids[0]}")
    gh.rest.issues.delete_comment("acme", "app", ids[1])

    assert [c["body"] for c in github_server.comments("acme", "app", 7)] == [
        "edited", "comment 2", "comment 3", "comment 4"]
    assert [w["method"] for w in github_server.writes()] == ["POST"] * 5 + ["PATCH", "DELETE"]


def test_comment_body_limit(github_server):
    gh = client(github_server)
    gh.rest.issues.create_comment("acme", "app", 3, body="x" * 65536)
    with pytest.raises(RequestFailed) as err:
        gh.rest.issues.create_comment("acme", "app", 3, body="x" * 65537)
    assert err.value.response.status_code == 422
    assert len(github_server.comments("acme", "app", 3)) == 1


# -- deployments -------------------------------------------------------------


def test_deployments_and_their_statuses(github_server):
    gh = client(github_server)
    dep = gh.rest.repos.create_deployment(
        "acme", "app", ref=SHA, environment="staging", task="deploy:engine",
        payload={"stack": "web"}, required_contexts=[], auto_merge=False,
    ).parsed_data
    assert (dep.environment, dep.sha, dep.production_environment) == ("staging", SHA, False)
    gh.rest.repos.create_deployment_status("acme", "app", dep.id, state="in_progress")
    gh.rest.repos.create_deployment_status("acme", "app", dep.id, state="success",
                                           environment_url="https://staging.example")

    statuses = gh.rest.repos.list_deployment_statuses("acme", "app", dep.id).parsed_data
    assert [s.state for s in statuses] == ["success", "in_progress"]
    assert [d.id for d in gh.rest.repos.list_deployments("acme", "app", environment="staging").parsed_data] == [dep.id]
    assert gh.rest.repos.list_deployments("acme", "app", environment="prod").parsed_data == []

    # A newer successful deployment to the same environment retires the old one.
    dep2 = gh.rest.repos.create_deployment("acme", "app", ref=SHA, environment="staging",
                                           required_contexts=[]).parsed_data
    gh.rest.repos.create_deployment_status("acme", "app", dep2.id, state="success")
    seen = {d["id"]: [s["state"] for s in d["statuses"]] for d in github_server.deployments("acme", "app")}
    assert seen == {dep.id: ["in_progress", "success", "inactive"], dep2.id: ["success"]}


def test_deployment_needs_green_contexts_unless_told_otherwise(github_server):
    gh = client(github_server)
    gh.rest.repos.create_commit_status("acme", "app", SHA, state="failure", context="lint")
    with pytest.raises(RequestFailed) as err:
        gh.rest.repos.create_deployment("acme", "app", ref=SHA)
    assert err.value.response.status_code == 409
    assert github_server.deployments("acme", "app") == []


# -- issues --------------------------------------------------------------------


def test_issues_create_filter_update(github_server):
    gh = client(github_server)
    a = gh.rest.issues.create("acme", "app", title="drift in prod", labels=["drift"]).parsed_data
    gh.rest.issues.create("acme", "app", title="other")
    assert [i.title for i in gh.rest.issues.list_for_repo("acme", "app", labels="drift").parsed_data] == ["drift in prod"]

    closed = gh.rest.issues.update("acme", "app", a.number, state="closed").parsed_data
    assert (closed.state, closed.state_reason) == ("closed", "completed")
    assert [i.title for i in gh.rest.issues.list_for_repo("acme", "app").parsed_data] == ["other"]
    assert gh.rest.issues.get("acme", "app", a.number).parsed_data.closed_by.login == "test-user"
    assert [i["state"] for i in github_server.issues("acme", "app")] == ["closed", "open"]


# -- custom properties, contents, repository -----------------------------------


def test_custom_properties_repo_and_org(github_server):
    github_server.add_repo("acme", "app", properties={"engine-stack": "web"})
    github_server.add_repo("acme", "api")
    gh = client(github_server)

    values = gh.rest.repos.custom_properties_for_repos_get_repository_values("acme", "app").parsed_data
    assert {v.property_name: v.value for v in values} == {"engine-stack": "web"}

    gh.rest.repos.custom_properties_for_repos_create_or_update_repository_values(
        "acme", "app", properties=[{"property_name": "engine-stack", "value": None},
                                   {"property_name": "tier", "value": ["a", "b"]}])
    assert github_server.properties("acme", "app") == {"tier": ["a", "b"]}

    gh.rest.orgs.custom_properties_for_repos_create_or_update_organization_values(
        "acme", repository_names=["app", "api"], properties=[{"property_name": "owner", "value": "infra"}])
    org = gh.rest.orgs.custom_properties_for_repos_get_organization_values("acme").parsed_data
    assert {r.repository_full_name: {p.property_name: p.value for p in r.properties} for r in org} == {
        "acme/app": {"tier": ["a", "b"], "owner": "infra"},
        "acme/api": {"owner": "infra"},
    }


def test_contents_and_repository(github_server):
    github_server.add_repo("acme", "app", default_branch="trunk", properties={"tier": "gold"})
    github_server.put_file("acme", "app", "trunk", "stacks/web.yaml", b"name: web\n")
    github_server.put_file("acme", "app", "feature/x", "stacks/web.yaml", b"name: web2\n")
    gh = client(github_server)

    data = gh.rest.repos.get_content("acme", "app", "stacks/web.yaml").parsed_data  # default branch
    assert data.type == "file" and base64.b64decode(data.content) == b"name: web\n"
    data = gh.rest.repos.get_content("acme", "app", "stacks/web.yaml", ref="feature/x").parsed_data
    assert base64.b64decode(data.content) == b"name: web2\n"
    listing = gh.rest.repos.get_content("acme", "app", "stacks").parsed_data
    assert [i.name for i in listing] == ["web.yaml"]
    with pytest.raises(RequestFailed) as err:
        gh.rest.repos.get_content("acme", "app", "missing.yaml")
    assert err.value.response.status_code == 404

    repo = gh.rest.repos.get("acme", "app").parsed_data
    assert repo.default_branch == "trunk" and repo.full_name == "acme/app"

    gh.rest.repos.create_dispatch_event("acme", "app", event_type="engine-apply", client_payload={"stack": "web"})
    assert github_server.dispatches("acme", "app")[0]["client_payload"] == {"stack": "web"}
    assert gh.rest.rate_limit.get().parsed_data.resources.core.limit == 5000


# -- violations ------------------------------------------------------------------


def test_bad_bodies_are_422_and_violations(github_server):
    # githubkit validates bodies itself and drops undeclared keys; send what a
    # careless client (or githubkit with validation off) would.
    gh = client(github_server, rest_api_validate_body=False)
    with pytest.raises(RequestFailed) as err:
        gh.rest.repos.create_commit_status("acme", "app", SHA, data={"state": "ok"})
    assert err.value.response.status_code == 422
    with pytest.raises(RequestFailed):
        gh.rest.issues.create_comment("acme", "app", 1, data={"body": "hi", "bdoy": "typo"})

    found = take_violations(github_server)
    assert len(found) == 2
    assert "state" in found[0] and "bdoy" in found[1]
    assert github_server.statuses("acme", "app", SHA) == [] and github_server.comments("acme", "app", 1) == []


def test_unknown_operation_is_a_violation(github_server):
    gh = client(github_server)
    with pytest.raises(RequestFailed) as err:
        gh.request("GET", "/repos/acme/app/statuses-of-everything")
    assert err.value.response.status_code == 404
    assert take_violations(github_server) == ["unknown operation: GET /repos/acme/app/statuses-of-everything"]

    with raw(github_server) as http:  # known path, undeclared query parameter
        assert http.get("/repos/acme/app/issues", params={"status": "open"}).status_code == 422
    assert "undeclared query parameter 'status'" in take_violations(github_server)[0]


def test_authentication(github_server):
    with raw(github_server, token="nope") as http:
        resp = http.get("/repos/acme/app")
    assert resp.status_code == 401 and resp.json()["message"] == "Bad credentials"
    github_server.tokens.add("nope")
    with raw(github_server, token="nope") as http:
        assert http.get("/repos/acme/app").status_code == 200


def test_github_app_installation_token_flow(github_server):
    github_server.add_installation("acme", installation_id=42, app_slug="engine")
    now = int(time.time())

    def b64(obj) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    jwt = f"{b64({'alg': 'RS256'})}.{b64({'iss': '1', 'iat': now - 60, 'exp': now + 540})}.sig"
    app = httpx.Client(base_url=github_server.url, headers={"Authorization": f"Bearer {jwt}"}, timeout=5)
    with app:
        assert app.get("/repos/acme/app/installation").json()["id"] == 42
        token = app.post("/app/installations/42/access_tokens").json()
        # GitHub refuses JWTs that live longer than 10 minutes.
        too_long = f"{b64({'alg': 'RS256'})}.{b64({'iss': '1', 'iat': now, 'exp': now + 3600})}.sig"
        resp = app.post("/app/installations/42/access_tokens", headers={"Authorization": f"Bearer {too_long}"})
        assert resp.status_code == 401
    assert token["token"].startswith("ghs_") and token["token"] in github_server.tokens
    assert token["expires_at"].endswith("Z")

    gh = GitHub(TokenAuthStrategy(token["token"]), base_url=github_server.url, timeout=5)
    gh.rest.issues.create_comment("acme", "app", 1, body="from the app")
    assert github_server.comments("acme", "app", 1)[0]["user"]["login"] == "engine[bot]"
    # An installation token is not an app JWT.
    with raw(github_server, token=token["token"]) as http:
        assert http.get("/repos/acme/app/installation").status_code == 401


def test_githubkit_app_auth_strategy(github_server):
    pytest.importorskip("jwt", reason="githubkit[auth-app] (PyJWT) is not installed")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from githubkit import AppAuthStrategy

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    app = GitHub(AppAuthStrategy("1", key), base_url=github_server.url, timeout=5)
    installation = app.rest.apps.get_repo_installation("acme", "app").parsed_data
    gh = GitHub(AppAuthStrategy("1", key).as_installation(installation.id), base_url=github_server.url, timeout=5)
    gh.rest.repos.create_commit_status("acme", "app", SHA, state="success", context="engine")
    assert github_server.statuses("acme", "app", SHA)[0]["creator"]["login"] == "test-app[bot]"


# -- faults ----------------------------------------------------------------------


def test_server_error_then_success_is_retried_by_githubkit(github_server):
    # githubkit 0.16.1's default auto_retry retries >= 500 up to 3 times, waiting
    # (n + 1) ** 2 seconds: one retry costs 1 s here.  It retries POSTs too.
    rule = github_server.inject("POST", r"/statuses/", 500)
    gh = client(github_server)
    gh.rest.repos.create_commit_status("acme", "app", SHA, state="success")
    assert [h[2] for h in rule.hits] == [500]
    assert [w["status"] for w in github_server.writes()] == [500, 201]
    assert len(github_server.statuses("acme", "app", SHA)) == 1  # the faulted request changed nothing


def test_secondary_rate_limit_returns_403_with_retry_after(github_server):
    github_server.inject("POST", r"/comments$", ("secondary_rate_limit", 7))
    gh = client(github_server, auto_retry=False)
    with pytest.raises(SecondaryRateLimitExceeded) as err:
        gh.rest.issues.create_comment("acme", "app", 1, body="hi")
    resp = err.value.response
    assert resp.status_code == 403 and resp.headers["retry-after"] == "7"
    assert "secondary rate limit" in resp.json()["message"]
    assert err.value.retry_after == timedelta(seconds=7)
    assert github_server.comments("acme", "app", 1) == []
    gh.rest.issues.create_comment("acme", "app", 1, body="hi")  # the sequence was played once
    assert len(github_server.comments("acme", "app", 1)) == 1


def test_primary_rate_limit_and_429(github_server):
    github_server.inject("GET", r"^/repos/acme/app$", ("rate_limit", 30), 429)
    gh = client(github_server, auto_retry=False)
    with pytest.raises(PrimaryRateLimitExceeded) as err:
        gh.rest.repos.get("acme", "app")
    assert err.value.response.headers["x-ratelimit-remaining"] == "0"
    assert 25 <= err.value.retry_after.total_seconds() <= 31
    with pytest.raises(SecondaryRateLimitExceeded) as err:
        gh.rest.repos.get("acme", "app")
    assert err.value.response.status_code == 429
    assert gh.rest.repos.get("acme", "app").status_code == 200


def test_timeout_fault_still_applies_the_write(github_server):
    github_server.inject("POST", r"/statuses/", ("timeout", 0.6))
    # http_cache=False: with githubkit 0.16.1's default hishel cache client the
    # timeout is lost (hishel rebuilds the request without httpx's timeout
    # extension), so the client would wait forever.  The engine disables it too.
    gh = client(github_server, timeout=0.2, auto_retry=False, http_cache=False)
    with pytest.raises(RequestTimeout):
        gh.rest.repos.create_commit_status("acme", "app", SHA, state="success")
    deadline = time.monotonic() + 3
    while not github_server.statuses("acme", "app", SHA) and time.monotonic() < deadline:
        time.sleep(0.05)
    # The client saw a timeout, GitHub applied the write: retries must be idempotent.
    assert len(github_server.statuses("acme", "app", SHA)) == 1


def test_fault_rules_repeat_and_disconnect(github_server):
    rule = github_server.inject("*", r"/rate_limit", 502, ("disconnect",), times=2)
    with raw(github_server) as http:
        codes = []
        for _ in range(5):
            try:
                codes.append(http.get("/rate_limit").status_code)
            except httpx.TransportError:
                codes.append("dropped")
    assert codes == [502, "dropped", 502, "dropped", 200]
    assert rule.exhausted


def test_self_check_catches_the_fake_drifting_from_the_schema(monkeypatch):
    with FakeGitHub() as server:
        real = server._status_json

        def missing_context(r, s, simple=False):
            body = real(r, s, simple=simple)
            del body["context"]  # a required field of GitHub's Status
            return body

        monkeypatch.setattr(server, "_status_json", missing_context)
        with raw(server) as http:
            http.post(f"/repos/acme/app/statuses/{SHA}", json={"state": "success"})
    assert server.violations == [
        "fakegithub response self-check failed for repos.create_commit_status: context: Field required"]
