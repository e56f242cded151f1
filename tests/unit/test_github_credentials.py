"""GitHub refusing the engine's credentials is a clear error (exit 1), never a crash and never the credentials."""

from __future__ import annotations

import pytest
from githubkit.exception import RequestFailed

from engine.errors import EXIT_FAILED
from engine.github import GitHubAPI, GitHubCredentialsError, Settings
from tests.fakegithub.fixture import github_server  # noqa: F401 - pytest fixture

TOKEN = "not-a-real-token-refused-by-the-server"


def test_a_wrong_token_is_reported_as_refused_credentials(github_server):  # noqa: F811
    github_server.add_repo("acme-org", "app")
    api = GitHubAPI(Settings(api_url=github_server.url, token=TOKEN, max_retry_wait=1))
    with pytest.raises(GitHubCredentialsError) as err:
        api.custom_properties("acme-org/app")
    assert err.value.exit_code == EXIT_FAILED
    assert err.value.message == "GitHub refused the engine's credentials (401: Bad credentials) on GET /repos/acme-org/app/properties/values"
    assert TOKEN not in err.value.message + (err.value.hint or "")
    with pytest.raises(GitHubCredentialsError):  # writes too (the feedback layer logs it as one line)
        api.create_status("acme-org/app", "1" * 40, {"state": "pending", "context": "infra/staging"})


def test_an_app_private_key_that_is_not_a_key_is_reported_without_showing_it(github_server):  # noqa: F811
    github_server.add_repo("acme-org", "app")
    # an app id of its own: githubkit caches App tokens per app id within a process
    api = GitHubAPI(Settings(api_url=github_server.url, app_id="424242", app_private_key="-----BEGIN nonsense s3cretkeymaterial"))
    with pytest.raises(GitHubCredentialsError, match="ENGINE_GITHUB_APP_PRIVATE_KEY is not a valid key") as err:
        api.pull_request("acme-org/app", 1)
    assert "s3cretkeymaterial" not in err.value.message + (err.value.hint or "")


def test_a_permission_problem_is_not_mistaken_for_bad_credentials(github_server):  # noqa: F811
    github_server.add_repo("acme-org", "app")
    github_server.inject("GET", r"/properties/values$", 403)
    api = GitHubAPI(Settings(api_url=github_server.url, token=next(iter(github_server.tokens)), max_retry_wait=1))
    with pytest.raises(RequestFailed):
        api.custom_properties("acme-org/app")
    github_server.violations.clear()
