"""Retry and pacing decisions of the GitHub client (pure logic, fake clock)."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from githubkit.exception import RequestFailed, RequestTimeout, SecondaryRateLimitExceeded
from githubkit.response import Response

from engine.github import CappedRetry, Settings, WritePacer


def _response(method: str, status: int, headers: dict | None = None) -> Response:
    request = httpx.Request(method, "https://api.github.com/repos/o/r/statuses/x")
    return Response(httpx.Response(status, headers=headers or {}, request=request), object)


def test_rate_limits_wait_what_github_asks_up_to_the_cap():
    retry = CappedRetry(max_wait=30, rate_limit_retries=2)
    exc = SecondaryRateLimitExceeded(_response("POST", 403, {"retry-after": "5"}), timedelta(seconds=5))
    assert retry(exc, 0) == (True, timedelta(seconds=5))
    assert retry(exc, 2).do_retry is False  # at most two retries
    too_long = SecondaryRateLimitExceeded(_response("POST", 403), timedelta(seconds=3600))
    assert retry(too_long, 0).do_retry is False  # an hour is past the cap: give up, don't hang the run


def test_server_errors_retry_reads_but_never_blind_writes():
    retry = CappedRetry(backoff=1)
    read = RequestFailed(_response("GET", 502))
    assert retry(read, 0) == (True, timedelta(seconds=1)) and retry(read, 1) == (True, timedelta(seconds=2))
    assert retry(read, 3).do_retry is False
    write = RequestFailed(_response("POST", 502))
    assert retry(write, 0).do_retry is False  # it may have landed: the feedback layer re-reads first
    timeout = RequestTimeout(httpx.ReadTimeout("slow", request=httpx.Request("POST", "https://x")))
    assert retry(timeout, 0).do_retry is False
    assert retry(RequestTimeout(httpx.ReadTimeout("slow", request=httpx.Request("GET", "https://x"))), 0).do_retry is True


def test_writes_are_paced_under_the_secondary_limit():
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = WritePacer(per_minute=80, clock=lambda: now[0], sleep=sleep)
    for _ in range(80):
        pacer._pace("POST")
        now[0] += 0.1
    assert slept == []
    pacer._pace("PATCH")  # the 81st write within a minute waits for the window
    assert len(slept) == 1 and 51 < slept[0] <= 60
    pacer._pace("GET")  # reads are never paced
    assert len(slept) == 1


def test_settings_from_the_actions_environment():
    s = Settings.from_env({"GITHUB_API_URL": "https://ghe.example/api/v3", "GITHUB_SERVER_URL": "https://ghe.example",
                           "GITHUB_REPOSITORY": "provider/manager", "GITHUB_RUN_ID": "42", "GITHUB_TOKEN": "t0k"})
    assert s.api_url == "https://ghe.example/api/v3" and s.token == "t0k"
    assert s.run_url == "https://ghe.example/provider/manager/actions/runs/42"
    assert "t0k" not in repr(s) and "PRIVATE" not in repr(Settings.from_env({"ENGINE_GITHUB_APP_PRIVATE_KEY": "PRIVATE KEY"}))


def test_a_repository_the_engine_cannot_see_is_a_clear_input_error_not_a_crash():
    from engine.errors import InputError
    from engine.github import GitHubAPI, Settings
    from tests.fakegithub.server import FakeGitHub

    with FakeGitHub(auto_create=False) as server:
        api = GitHubAPI(Settings(api_url=server.url, token="test-token", max_retry_wait=1))
        with pytest.raises(InputError, match="gone-org/app has no commit on its default branch, or the engine cannot see the repository"):
            api.default_branch_head("gone-org/app")
