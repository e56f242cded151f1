"""Review stacks per pull request, without a tool: slots, names, the event mapping and `engine gc`, with a fake runner.

The GitHub side is the local schema-checking server (tests/fakegithub); the run history is a real SQLite store,
because it is the record of which review stacks exist.  The real tools are in tests/integration/test_review_stacks.py.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import time

import pytest

from engine import triggers
from engine.catalog import Catalog
from engine.config import REVIEW_SLOTS, CustomerConfig, TenantRecord
from engine.errors import ConfigError, InputError
from engine.events import parse_event, sign_dispatch
from engine.github import GitHubAPI, Settings as GitHubSettings
from engine.history import HistoryStore, Recorder
from engine.home import EngineHome
from engine.operations import Engine, unsupported_tool
from engine.results import StackResult
from engine.planning import Settings, network_plan, plan_targets, tenant_network
from engine.review import HistoryRow, allocate, base_environment, parse_ttl, replay, review_config, slot_for
from engine.review_loop import Registry, collect
from engine.validation import validate_document
from engine.documents import load_text
from tests.conftest import SMALL_CONFIG, make_catalog
from tests.fakegithub.fixture import github_server  # noqa: F401 - pytest fixture
from tests.fakerunner import FakeRunner

SETTINGS = Settings(state_root="/srv/state", local_root="/srv/cloud")
SHA, SHA2 = "1" * 40, "2" * 40
SECRET = "acme-dispatch-secret-for-review-stacks-0123"
OWNER, REPO = "acme-org", "app"


def tenant(**extra) -> TenantRecord:
    return TenantRecord.model_validate({"customer": "acme", "repository": "acme-org/app", "network_index": 1, **extra})


def customer(**extra) -> CustomerConfig:
    return CustomerConfig.model_validate({"project_name": "shop", "environments": {
        "production": {"instance_type": "m5.large", "instance_count": 3}, "staging": {"instance_type": "t3.micro"},
        "qa": {"instance_type": "t3.small", "volume_size_gb": 40}}, **extra})


def row(i: int, environment: str, operation: str = "up", status: str = "succeeded", customer: str = "acme",
        at: str = "2026-01-01T00:00:00.000Z") -> HistoryRow:
    return HistoryRow(i, customer, environment, operation, status, at)


# -- the review stack's configuration and network -----------------------------------------------------------------


def test_a_review_stack_gets_the_base_environments_settings_in_a_network_of_its_own():
    config = customer()
    (target,) = plan_targets(tenant(review_stacks=True), review_config(config, 7, 15), SETTINGS)
    assert (target.environment, target.stack) == ("pr-7", "pr-7")
    assert target.config["instance_type"] == "t3.micro"  # staging: the first environment that is not production
    assert target.config["local_root"] == "/srv/cloud/acme/pr-7" and target.config["tags"]["pull-request"] == "7"
    review_net = ipaddress.ip_network(target.config["network"]["vpc_cidr"])
    assert review_net.subnet_of(ipaddress.ip_network(tenant_network(1)))
    for own in plan_targets(tenant(review_stacks=True), config, SETTINGS):
        assert not review_net.overlaps(ipaddress.ip_network(own.config["network"]["vpc_cidr"])), own.environment


def test_review_base_chooses_the_settings_and_must_name_an_environment():
    assert base_environment(customer(review_base="qa")) == "qa"
    assert plan_targets(tenant(), review_config(customer(review_base="qa"), 3, 11), SETTINGS)[0].config["volume_size_gb"] == 40
    only_production = CustomerConfig.model_validate({"project_name": "shop", "environments": {"production": {"instance_type": "t3.small"}}})
    assert base_environment(only_production) == "production"
    with pytest.raises(ConfigError) as refused:
        validate_document(load_text("project_name: shop\nreview_base: uat\nenvironments:\n  staging:\n    instance_type: t3.micro\n",
                                    "infra/variables.yml"), CustomerConfig)
    assert [(p.line, p.key_path) for p in refused.value.problems] == [(2, "review_base")]
    assert "'uat' is not an environment of this file" in refused.value.problems[0].reason


def test_pr_names_are_reserved_for_review_stacks_in_the_customer_file():
    with pytest.raises(ConfigError) as refused:
        validate_document(load_text("project_name: shop\nenvironments:\n  pr-3:\n    instance_type: t3.micro\n    network_slot: 6\n",
                                    "infra/variables.yml"), CustomerConfig)
    assert "reserved: pr-<number> names the review stack of a pull request" in refused.value.problems[0].reason


def test_an_opted_in_tenant_keeps_its_own_environments_out_of_the_review_slots():
    config = CustomerConfig.model_validate({"project_name": "shop", "environments": {"uat": {"instance_type": "t3.micro", "network_slot": 9}}})
    assert plan_targets(tenant(), config, SETTINGS)[0].config["network"] == network_plan(1, 9)  # review stacks off: any slot
    with pytest.raises(InputError, match="uses network slot 9, which is reserved for review stacks"):
        plan_targets(tenant(review_stacks=True), config, SETTINGS)


# -- slots: deterministic, sticky, refused when full -----------------------------------------------------------


def test_a_pull_request_prefers_its_number_modulo_the_pool_then_the_next_free_slot():
    assert list(REVIEW_SLOTS) == list(range(8, 16))
    assert allocate(7, set()) == 15 and allocate(16, set()) == 8
    assert allocate(15, {15}) == 8  # ring order: after the top comes the first review slot
    assert allocate(3, set(REVIEW_SLOTS)) is None


def test_slots_are_replayed_from_the_history_and_kept_for_a_stacks_whole_life():
    rows = [row(1, "pr-3"), row(2, "pr-11"), row(3, "pr-3", "destroy"), row(4, "pr-19"), row(5, "pr-11", at="2026-01-02T00:00:00.000Z")]
    live = replay(rows)
    assert {k[1]: s.slot for k, s in live.items()} == {"pr-11": 12, "pr-19": 11}  # 11 took 12 while 3 held 11, and keeps it
    assert live[("acme", "pr-11")].deployed_at == "2026-01-02T00:00:00.000Z" and live[("acme", "pr-11")].created_at == "2026-01-01T00:00:00.000Z"
    assert slot_for("acme", 11, live) == 12 and slot_for("acme", 27, live) == 13
    assert slot_for("beta", 11, live) == 11  # another tenant's stacks are in another /18


def test_what_counts_as_live():
    live = replay([row(1, "pr-1", "up", "failed"),  # a failed create may have left resources
                   row(2, "pr-2", "up", "blocked"),  # blocked by policy: nothing was deployed
                   row(3, "pr-3"), row(4, "pr-3", "destroy", "failed"),  # still there
                   row(5, "pr-4"), row(6, "pr-4", "destroy", "not-deployed"),  # nothing found: gone
                   row(7, "staging")])
    assert sorted(k[1] for k in live) == ["pr-1", "pr-3"]


def test_a_full_pool_is_refused_naming_the_stacks_that_hold_it():
    live = replay([row(i, f"pr-{i}") for i in range(1, 9)])
    reason = slot_for("acme", 9, live)
    assert isinstance(reason, str) and "no free review slot for pull request #9" in reason
    assert "pr-8 (slot 8)" in reason and "pr-7 (slot 15)" in reason and "hold all 8" in reason
    assert slot_for("acme", 8, live) == 8  # an update of a live stack is never refused


def test_ttl_values():
    assert [parse_ttl(t) for t in ("30s", "90m", "72h", "3d", "0s")] == [30, 5400, 259200, 259200, 0]
    for bad in ("72", "1w", "-1h", "h", "1.5h"):
        with pytest.raises(InputError, match="is not a duration"):
            parse_ttl(bad)


# -- events: a closed pull request asks for its review stack to go --------------------------------------------------


def dispatch(mode: str = "plan", pr: int | None = 7, sha: str = SHA, signed_mode: str | None = None) -> dict:
    fields = {"customer": "acme", "sha": sha, "ref": None, "pr": pr, "mode": signed_mode or mode, "environment": None}
    payload = {k: v for k, v in {**fields, "mode": mode}.items() if v is not None}
    payload["signature"] = sign_dispatch(SECRET, timestamp=int(time.time()), **fields)
    return {"action": "infra-change", "client_payload": payload, "sender": {"login": "acme-ci"}}


def test_a_close_dispatch_destroys_and_is_never_turned_into_a_plan():
    request = parse_event("repository_dispatch", dispatch("close"), "event.json", mode="plan")  # infra-deploy's plan job passes --mode plan
    assert (request.mode, request.requested_mode, request.operation, request.pr) == ("close", "close", "destroy", 7)
    triggers.authenticate(request, tenant(), {"ENGINE_DISPATCH_SECRETS": json.dumps({"acme": SECRET})})
    with pytest.raises(InputError, match="close needs the pull request"):
        triggers.check_request(parse_event("repository_dispatch", dispatch("close", pr=None), "event.json"))
    forged = parse_event("repository_dispatch", dispatch("close", signed_mode="plan"), "event.json")  # a plan's signature, mode changed
    with pytest.raises(InputError, match="does not match"):
        triggers.authenticate(forged, tenant(), {"ENGINE_DISPATCH_SECRETS": json.dumps({"acme": SECRET})})


# -- the loop with a fake runner ----------------------------------------------------------------------------------


class Loop:
    """An engine over a catalog whose acme record has no local source (its file is read from the local GitHub), a fake
    runner, a real SQLite history subscribed to the engine's events, and the handle() of `engine event`."""

    def __init__(self, tmp_path, server, review_stacks: bool = True):
        record = f"customer: acme\nrepository: acme-org/app\ntarget: local\nnetwork_index: 1\nreview_stacks: {str(review_stacks).lower()}\n"
        root = make_catalog(tmp_path / "catalog", {"acme": (record, None)})
        server.add_repo(OWNER, REPO, properties={"infrastructure_tools": ["pulumi"]})
        for sha in (SHA, SHA2):
            server.put_file(OWNER, REPO, sha, "infra/variables.yml", SMALL_CONFIG.format(name="acme-app"))
        server.set_ref(OWNER, REPO, "main", SHA2)
        self.server, self.runner = server, FakeRunner()
        self.home = EngineHome(tmp_path / "home")
        self.api = GitHubAPI(GitHubSettings(api_url=server.url, token="test-token", timeout=5, max_retry_wait=1, writes_per_minute=100_000))
        runners = lambda tool: self.runner if tool == "pulumi" else unsupported_tool(tool)  # noqa: E731
        self.engine = Engine(catalog=Catalog(root), home=self.home, runners=runners,
                             remote_source=lambda rec: triggers.remote_tenant(self.api, rec))
        self.store = HistoryStore.sqlite(tmp_path / "home" / "history.sqlite3")
        self.recorder = Recorder(self.store)
        self.engine.stream.subscribe(self.recorder)
        self.registry = Registry(self.store)

    def event(self, mode: str, pr: int, sha: str = SHA):
        request = parse_event("repository_dispatch", dispatch(mode, pr, sha), "event.json")
        self.recorder.sha = sha  # as `engine event` does: the history records the commit
        return triggers.handle(request, self.engine, self.api, "https://github.example/run/1", reviews=self.registry,
                               env={"ENGINE_DISPATCH_SECRETS": json.dumps({"acme": SECRET})})

    def status(self, sha: str, context: str) -> dict:
        return [s for s in self.server.statuses(OWNER, REPO, sha) if s["context"] == context][-1]


@pytest.fixture
def loop(tmp_path, github_server):  # noqa: F811
    return Loop(tmp_path, github_server)


def test_a_pull_requests_plan_also_deploys_its_review_stack_with_its_own_comment(loop):
    loop.server.add_pull(OWNER, REPO, 7, SHA)
    outcome = loop.event("plan", 7)
    assert loop.runner.calls == [("staging", "preview"), ("production", "preview"), ("pr-7", "up")]
    review = outcome.result.stacks[-1]
    assert (review.environment, str(review.operation), str(review.status)) == ("pr-7", "up", "succeeded")
    assert loop.status(SHA, "infra/pr-7")["description"].startswith("applied: ")
    bodies = {c["body"].splitlines()[0]: c["body"] for c in loop.server.comments(OWNER, REPO, 7)}
    assert set(bodies) == {f"<!-- managed-infra-engine:acme/{e} -->" for e in ("staging", "production", "pr-7")}
    assert "infra apply · `acme` / `pr-7`" in bodies["<!-- managed-infra-engine:acme/pr-7 -->"]
    (deployment,) = loop.server.deployments(OWNER, REPO)
    assert deployment["environment"] == "pr-7" and deployment["production_environment"] is False
    assert {k[1]: s.slot for k, s in loop.registry.live("acme").items()} == {"pr-7": 15}


def test_no_review_stack_for_a_fork_or_a_tenant_that_did_not_opt_in(loop, tmp_path, github_server):  # noqa: F811
    loop.server.add_pull(OWNER, REPO, 8, SHA, head_repo=("someone", "app"))
    loop.event("plan", 8)
    assert [c for c in loop.runner.calls if c[0].startswith("pr-")] == []
    assert not [s for s in loop.server.statuses(OWNER, REPO, SHA) if s["context"] == "infra/pr-8"]


def test_a_tenant_without_review_stacks_plans_only(tmp_path, github_server):  # noqa: F811
    plain = Loop(tmp_path, github_server, review_stacks=False)
    plain.server.add_pull(OWNER, REPO, 7, SHA)
    plain.event("plan", 7)
    assert plain.runner.calls == [("staging", "preview"), ("production", "preview")]
    plain.server.add_pull(OWNER, REPO, 7, SHA, state="closed")
    closed = plain.event("close", 7)  # nothing to destroy: no call, no write
    assert closed.result.stacks == [] and not [s for s in plain.server.statuses(OWNER, REPO, SHA) if s["context"] == "infra/pr-7"]


def test_closing_the_pull_request_destroys_its_review_stack_and_says_so(loop):
    loop.server.add_pull(OWNER, REPO, 7, SHA)
    loop.event("plan", 7)
    (comment,) = [c for c in loop.server.comments(OWNER, REPO, 7) if "acme/pr-7" in c["body"]]
    with pytest.raises(InputError, match="is open, not closed"):
        loop.event("close", 7)  # a close of an open pull request is refused
    loop.server.add_pull(OWNER, REPO, 7, SHA, state="closed")
    outcome = loop.event("close", 7)
    assert loop.runner.calls[-1] == ("pr-7", "destroy") and outcome.result.exit_code == 0
    assert loop.status(SHA, "infra/pr-7")["description"] == "review stack destroyed when pull request #7 was closed"
    (edited,) = [c for c in loop.server.comments(OWNER, REPO, 7) if "acme/pr-7" in c["body"]]
    assert edited["id"] == comment["id"] and "**Review stack destroyed** when pull request #7 was closed" in edited["body"]
    (deployment,) = loop.server.deployments(OWNER, REPO)
    assert deployment["statuses"][-1]["state"] == "inactive"
    assert loop.registry.live("acme") == {}


def test_a_full_pool_refuses_the_next_review_stack_and_says_why_on_the_pull_request(loop):
    for pr in range(1, 9):  # eight open pull requests' review stacks, as the history recorded them
        loop.recorder.stack_done(StackResult(customer="acme", environment=f"pr-{pr}", stack=f"acme/pr-{pr}", tool="pulumi",
                                             operation="up", status="succeeded"))
    loop.server.add_pull(OWNER, REPO, 9, SHA)
    outcome = loop.event("plan", 9)
    assert ("pr-9", "up") not in loop.runner.calls and outcome.result.exit_code == 1
    refused = loop.status(SHA, "infra/pr-9")
    assert refused["state"] == "failure" and refused["description"].startswith("no free review slot for pull request #9")
    assert "pr-9" not in {k[1] for k in loop.registry.live("acme")}  # a refusal holds no slot


def test_gc_destroys_only_the_review_stacks_past_their_ttl(loop):
    for pr in (7, 12):
        loop.server.add_pull(OWNER, REPO, pr, SHA)
        loop.event("plan", pr)
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=73)
    loop.store.execute("UPDATE runs SET finished_at = ? WHERE environment = ?", ("2099-01-01T00:00:00.000Z", "pr-12"))  # deployed "later"
    dry = collect(loop.engine, loop.registry, 72 * 3600, dry_run=True, now=later)
    assert [(c.stack.environment, c.action) for c in dry.stacks] == [("pr-7", "would-destroy"), ("pr-12", "kept")]
    assert ("pr-7", "destroy") not in loop.runner.calls
    done = collect(loop.engine, loop.registry, 72 * 3600, now=later, github=lambda: loop.api)
    assert [(c.stack.environment, c.action) for c in done.stacks] == [("pr-7", "destroyed"), ("pr-12", "kept")] and done.exit_code == 0
    assert loop.runner.calls[-1] == ("pr-7", "destroy")
    assert set(k[1] for k in loop.registry.live()) == {"pr-12"}
    assert loop.status(SHA, "infra/pr-7")["description"].startswith("review stack destroyed after 3d without a deploy (engine gc")
