"""The Spacelift client against the local server: auth and refresh, retries, writes that are never doubled."""

from __future__ import annotations

import time

import httpx
import pytest
from graphql import build_schema, parse, validate

from engine.spacelift import client as client_module
from engine.spacelift.client import DOCUMENTS, Retry, SpaceliftAPI, SpaceliftError
from engine.spacelift.settings import Credentials
from tests.fakespacelift import KEY_ID, KEY_SECRET, FakeSpacelift
from tests.fakespacelift.fixture import spacelift_server  # noqa: F401 - fixture

STACK = {"name": "acme-staging", "repository": "manager", "namespace": "provider-org", "branch": "main", "administrative": False,
         "autodeploy": False, "labels": ["managed-by:engine"], "space": "root"}


class Clock:
    """The client's (and, when a test hands it over, the server's) clock, and the sleeps the client asked for."""

    def __init__(self, now: float | None = None) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return time.time() if self.now is None else self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def api_for(server: FakeSpacelift, clock: Clock | None = None, secret: str = KEY_SECRET) -> SpaceliftAPI:
    clock = clock or Clock()
    return SpaceliftAPI(Credentials(server.endpoint, KEY_ID, secret), retry=Retry(backoff_s=0.001), clock=clock, sleep=clock.sleep)


def test_every_document_the_engine_sends_validates_against_the_schema_file():
    schema = build_schema(client_module.schema_text())
    for name, text in DOCUMENTS.items():
        assert validate(schema, parse(text)) == [], name


def test_the_api_key_is_exchanged_once_and_the_token_reused(spacelift_server):
    with api_for(spacelift_server) as api:
        for _ in range(5):
            api.stacks()
    assert spacelift_server.exchanges == 1 and spacelift_server.unauthorized == 0


def test_the_token_is_refreshed_before_it_expires(spacelift_server):
    clock = Clock(now=1_900_000_000.0)
    spacelift_server.clock, spacelift_server.token_ttl = clock, 600
    with api_for(spacelift_server, clock) as api:
        api.stacks()
        clock.now += 539  # more than a minute left: kept
        api.stacks()
        assert spacelift_server.exchanges == 1
        clock.now += 2  # less than a minute left: exchanged before Spacelift would refuse it
        api.stacks()
    assert spacelift_server.exchanges == 2 and spacelift_server.unauthorized == 0


def test_a_token_that_stops_working_mid_run_is_exchanged_again_and_the_request_succeeds(spacelift_server):
    with api_for(spacelift_server) as api:
        api.create_stack("acme-staging", STACK)
        spacelift_server.expire_tokens()
        assert api.stack("acme-staging") is not None
    assert spacelift_server.exchanges == 2 and spacelift_server.unauthorized == 1


def test_a_refused_api_key_is_an_error_that_never_shows_the_secret(spacelift_server):
    with api_for(spacelift_server, secret="definitely-wrong-secret") as api, pytest.raises(SpaceliftError) as caught:
        api.stacks()
    assert "refused the API key" in caught.value.message and "definitely-wrong-secret" not in caught.value.message


def test_reads_retry_server_errors(spacelift_server):
    spacelift_server.inject("stacks", 503, times=2)
    with api_for(spacelift_server) as api:
        assert api.stacks() == []
        assert api.requests.count("stacks") == 3


def test_rate_limits_wait_what_spacelift_asks(spacelift_server):
    clock = Clock()
    spacelift_server.inject("stacks", 429, retry_after=1.5)
    with api_for(spacelift_server, clock) as api:
        api.stacks()
    assert clock.slept == [1.5]


def test_a_rate_limit_longer_than_the_cap_fails_with_the_reason(spacelift_server):
    spacelift_server.inject("stacks", 429, retry_after=3600)
    with api_for(spacelift_server) as api, pytest.raises(SpaceliftError, match="rate limit: stacks may be retried only after 3600 s"):
        api.stacks()


def test_reads_give_up_after_the_attempts_with_a_message(spacelift_server):
    spacelift_server.inject("stacks", 502, times=10)
    with api_for(spacelift_server) as api, pytest.raises(SpaceliftError, match="did not answer stacks after 5 attempts"):
        api.stacks()


def test_a_create_whose_answer_was_lost_is_not_repeated(spacelift_server):
    spacelift_server.inject("stackCreate", 502, after=True)  # Spacelift created it, the answer never arrived
    with api_for(spacelift_server) as api:
        assert api.create_stack("acme-staging", STACK) == "acme-staging"
    assert list(spacelift_server.stacks) == ["acme-staging"]
    assert [name for name, _ in spacelift_server.mutations()] == ["stackCreate"]


def test_a_create_refused_by_a_server_error_is_sent_again_once(spacelift_server):
    spacelift_server.inject("stackCreate", 503)  # not processed
    with api_for(spacelift_server) as api:
        api.create_stack("acme-staging", STACK)
    assert list(spacelift_server.stacks) == ["acme-staging"]


def test_a_rate_limited_write_is_retried_without_re_reading(spacelift_server):
    spacelift_server.inject("stackCreate", 429, retry_after=0)
    with api_for(spacelift_server) as api:
        api.create_stack("acme-staging", STACK)
        assert api.requests.count("stackCreate") == 2 and "stack" not in api.requests


def test_a_run_trigger_whose_answer_was_lost_is_found_again_not_triggered_twice(spacelift_server):
    with api_for(spacelift_server) as api:
        api.create_stack("acme-staging", STACK)
        spacelift_server.inject("runTrigger", 502, after=True)
        run = api.trigger_run("acme-staging", "a" * 40, "TRACKED")
    assert list(spacelift_server.runs) == [run.id]


def test_a_document_outside_the_schema_is_refused_before_it_is_sent(spacelift_server, monkeypatch):
    monkeypatch.setitem(DOCUMENTS, "stacks", "query Stacks { stacks { id notAField } }")
    with api_for(spacelift_server) as api, pytest.raises(SpaceliftError, match="does not match schema.graphql"):
        api.stacks()
    assert spacelift_server.calls == []


def test_the_server_fails_the_test_on_a_document_the_schema_does_not_allow():
    with FakeSpacelift() as server:
        token = api_for(server).auth.token()
        httpx.post(server.endpoint + "/graphql", json={"query": "{ stacks { id notAField } }"}, headers={"Authorization": f"Bearer {token}"})
        httpx.post(server.endpoint + "/graphql", json={"query": "mutation($i: ID!) { stackDelete(id: $i) { id } }", "variables": {"i": None}},
                   headers={"Authorization": f"Bearer {token}"})
    assert "notAField" in server.violations[0] and "$i" in server.violations[1]
