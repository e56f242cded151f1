"""A provider change rolled out to the fleet: waves in file order, per-stack results collected into one fleet
result, the ONE summary comment (golden files) written like the customer feedback, and the commands'
refusals.  No tool runs here (tests/integration/test_provider_rollout.py runs the real thing)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from engine import fanout
from engine.fanout import CustomerRun, FleetResult
from engine.github import GitHubAPI, Settings
from engine.reporters.github import COMMENT_LIMIT
from engine.reporters.rollout import MARKER, SummaryComment, render_details, render_summary
from tests.conftest import EngineCLI, make_catalog, tenant_record, THREE_ENVIRONMENTS
from tests.fakegithub.fixture import github_server  # noqa: F401 - pytest fixture

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "rollout"
RUN = "https://github.com/provider/manager/actions/runs/77"
NOW = "2026-11-26 10:00 UTC"


def check(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.md"
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text()


def stack(customer: str, environment: str, status: str = "succeeded", operation: str = "preview", error: str | None = None,
          tool: str = "pulumi", **changes: int) -> dict:
    counts = {"create": 0, "update": 0, "delete": 0, "replace": 0, "same": 0, **changes}
    return {"customer": customer, "environment": environment, "stack": f"{customer}/{environment}", "tool": tool, "operation": operation,
            "status": status, "changes": counts, "outputs": {}, "resources": [], "error": error, "duration_s": 1.0, "details": {}}


def fleet(operation: str, *stacks: dict) -> FleetResult:
    runs: dict[str, CustomerRun] = {}
    for s in stacks:
        run = runs.setdefault(s["customer"], CustomerRun(s["customer"], 0, {"customer": s["customer"], "operation": operation,
                                                                              "ok": True, "environments": {}}))
        run.result["environments"][s["environment"]] = s
        if s["status"] == "failed":
            run.exit_code = 1
    return FleetResult(operation, 4, list(runs.values()))


# -- waves: each customer's environments in file order, across runners ---------------------------------------


def test_waves_put_each_customers_environments_in_file_order_one_wave_apart():
    targets = [("acme", "development", "pulumi"), ("acme", "staging", "pulumi"), ("acme", "production", "pulumi"),
               ("beta", "production", "terraform"), ("solo", "development", "pulumi")]
    waves = fanout.waves(targets)
    assert waves["count"] == 3
    assert [[(e["customer"], e["environment"], e["after"]) for e in w["include"]] for w in waves["waves"]] == [
        [("acme", "development", ""), ("beta", "production", ""), ("solo", "development", "")],
        [("acme", "staging", "development")],
        [("acme", "production", "staging")],
    ]
    assert [e["production"] for w in waves["waves"] for e in w["include"]] == [False, True, False, False, True]


def test_a_wave_never_exceeds_githubs_256_jobs_per_matrix():
    targets = [(f"c{i:03d}", env, "pulumi") for i in range(300) for env in ("staging", "production")]
    waves = fanout.waves(targets)
    sizes = [len(w["include"]) for w in waves["waves"]]
    assert max(sizes) <= 256 and sum(sizes) == 600
    position = {(e["customer"], e["environment"]): i for i, w in enumerate(waves["waves"]) for e in w["include"]}
    assert all(position[(f"c{i:03d}", "staging")] < position[(f"c{i:03d}", "production")] for i in range(300))


# -- the jobs' results, collected --------------------------------------------------------------------------------


def test_results_left_by_the_jobs_make_one_fleet_result_and_a_missing_one_counts_as_failed(tmp_path):
    (tmp_path / "acme_staging.json").write_text(json.dumps({"customer": "acme", "operation": "up", "ok": True,
                                                            "environments": {"staging": stack("acme", "staging", operation="up", update=1)}}))
    (tmp_path / "beta_staging.json").write_text(json.dumps({"ok": False, "error": "ConfigError", "message": "infra/variables.yml:3: bad"}))
    (tmp_path / "gamma_staging.json").write_text("not json")
    expected = [("acme", "staging", "pulumi"), ("acme", "production", "pulumi"), ("beta", "staging", "pulumi"), ("gamma", "staging", "pulumi")]
    result = fanout.fleet_from_results("up", expected, fanout.stack_results(tmp_path))
    statuses = {(s["customer"], s["environment"]): (s["status"], s["error"]) for r in result.runs for s in r.stacks}
    assert statuses[("acme", "staging")] == ("succeeded", None)
    assert statuses[("acme", "production")] == ("failed", fanout.NO_RESULT)  # its job never reported: the rollout is incomplete
    assert statuses[("beta", "staging")] == ("failed", "infra/variables.yml:3: bad")
    assert statuses[("gamma", "staging")][0] == "failed" and "unreadable result" in statuses[("gamma", "staging")][1]
    assert result.exit_code == 1
    assert [r.customer for r in result.runs] == ["acme", "beta", "gamma"]


# -- the summary comment (golden files) --------------------------------------------------------------------------


def test_plan_summary_lists_every_stack_with_its_counts_and_who_failed():
    plan = fleet("preview", stack("acme", "development", update=2, same=9), stack("acme", "staging", update=2, same=9),
                 stack("acme", "production", update=3, same=12), stack("beta", "staging", tool="terraform", replace=1, same=4),
                 stack("beta", "production", "failed", tool="terraform", error="enginelocal_document.network: permission denied\nmore"))
    body = render_summary(plan, mode="plan", run_url=RUN, now=NOW)
    check("plan-with-failure", body)
    assert body.startswith(MARKER)
    assert "| `acme` | `production` | pulumi | ✅ planned | 0 | 3 | 0 | 0 | [plan](" + RUN + ") |" in body
    assert "- `beta/production`: `enginelocal_document.network: permission denied`" in body


def test_apply_summary_says_what_was_applied_what_failed_and_what_was_not_run():
    applied = fleet("up", stack("acme", "staging", operation="up", update=2), stack("acme", "production", operation="up", update=3),
                    stack("beta", "staging", "failed", operation="up", error="vpc: FileExistsError"),
                    stack("beta", "production", "skipped", operation="up", error="not run because staging failed"),
                    stack("gamma", "production", "failed", operation="up", error=fanout.NO_RESULT))
    check("apply-with-failures", render_summary(applied, mode="apply", run_url=RUN, now=NOW))


def test_a_change_that_affects_nobody_says_so():
    check("nothing-affected", render_summary(FleetResult("preview", 4, []), mode="plan", run_url=None, now=NOW))


def test_a_huge_fleet_stays_within_the_comment_limit_with_a_note():
    many = fleet("preview", *[stack(f"customer-{i:04d}", env, error=("x" * 400) if i % 7 == 0 else None, status="failed" if i % 7 == 0 else "succeeded")
                              for i in range(2000) for env in ("staging", "production")])
    body = render_summary(many, mode="plan", run_url=RUN, now=NOW)
    assert len(body) <= COMMENT_LIMIT and body.startswith(MARKER)
    assert "more stacks not shown to stay within GitHub's comment size limit" in body


def test_error_text_cannot_break_out_of_the_summary():
    hostile = fleet("up", stack("acme", "staging", "failed", operation="up", error="`| **x** <img src=x> \x1b[31mred\x00\n::error::pwned"))
    body = render_summary(hostile, mode="apply", run_url=None, now=NOW)
    (line,) = [x for x in body.splitlines() if x.startswith("- `acme/staging`")]
    assert line == "- `acme/staging`: `'\\| **x** <img src=x> [31mred`"  # its first line as one code span: no markup
    assert not any(x.startswith("::") for x in body.splitlines())


def test_the_job_summary_has_every_stacks_full_plan_within_its_limit():
    plan = fleet("preview", *[stack(f"c{i}", "staging", update=1) for i in range(30)])
    details = render_details(plan, mode="plan", run_url=RUN, limit=5_000)
    assert details.startswith("## Provider change plan: 30 stacks of 30 customers")
    assert "`c0` / `staging`" in details and "more stacks not shown here" in details and len(details) < 7_000
    assert "<!--" not in details


# -- the comment is written like a stack's: one, edited in place, only the engine's own ------------------------


def summary_comment(server, pr: int = 5) -> SummaryComment:
    api = GitHubAPI(Settings(api_url=server.url, token="test-token", timeout=5, max_retry_wait=1))
    return SummaryComment(api, "provider/manager", None, pr, "plan", RUN, sleep=lambda _s: None)


def test_the_summary_comment_is_created_once_then_edited_in_place_and_left_alone_when_unchanged(github_server):  # noqa: F811
    github_server.add_repo("provider", "manager")
    github_server.add_pull("provider", "manager", 5, "a" * 40)
    github_server.tokens.add("someone-else")
    github_server.token_logins["someone-else"] = "mallory"
    httpx.post(f"{github_server.url}/repos/provider/manager/issues/5/comments", headers={"Authorization": "token someone-else"},
               json={"body": MARKER + "\nnot the engine's"}).raise_for_status()
    first = render_summary(fleet("preview", stack("acme", "staging", update=1)), mode="plan", run_url=RUN, now=NOW)
    assert summary_comment(github_server).upsert(first) == "created"
    later = render_summary(fleet("preview", stack("acme", "staging", update=2)), mode="plan", run_url=RUN, now="2026-11-27 09:00 UTC")
    assert summary_comment(github_server).upsert(later) == "updated"
    writes = len(github_server.writes())
    assert summary_comment(github_server).upsert(later.replace("09:00", "11:30")) == "unchanged"  # only the time differs
    assert len(github_server.writes()) == writes
    comments = github_server.comments("provider", "manager", 5)
    assert [c["user"]["login"] for c in comments] == ["mallory", "test-user"]
    assert comments[0]["body"] == MARKER + "\nnot the engine's"  # someone else's comment with the marker is never edited
    assert "| 0 | 2 | 0 | 0 |" in comments[1]["body"]


# -- the commands: what they refuse, and a job whose previous environment did not succeed ------------------------




@pytest.fixture
def catalog_cli(tmp_path) -> EngineCLI:
    root = make_catalog(tmp_path / "c", {"acme": (tenant_record("acme", 1), THREE_ENVIRONMENTS.format(name="acme-app")),
                                         "solo": (tenant_record("solo", 2), "project_name: solo\nenvironments:\n  development:\n    instance_type: t3.micro\n")})
    return EngineCLI(tmp_path / "home", root)


def test_environments_prints_the_stages_in_file_order(catalog_cli):
    out = json.loads(catalog_cli("environments", "acme", check=0).stdout)
    assert out["environments"] == ["development", "staging", "production"] and out["count"] == 3
    assert out["stages"][2] == {"environment": "production", "after": "staging", "production": True}
    assert json.loads(catalog_cli("environments", "solo", check=0).stdout)["stages"] == [
        {"environment": "development", "after": "", "production": False}]
    only = json.loads(catalog_cli("environments", "acme", "--env", "production", "--env", "development", check=0).stdout)
    assert only["environments"] == ["development", "production"]  # file order, whatever order they were asked in


@pytest.mark.parametrize("args, message", [
    (("environments", "acme", "--at", "main"), "--at 'main' is not a commit"),
    (("environments", "acme", "--env", "qa"), "customer 'acme' has no environment 'qa'"),
    (("environments", "../acme"), "customer id"),
    (("rollout", "apply", "acme"), "name the one environment this job applies"),
    (("rollout", "apply", "acme", "--env", "staging", "--after", "development"), "--after needs --results DIR"),
    (("rollout", "apply", "acme", "--env", "staging", "--after", "qa", "--results", "."), "has no environment 'qa' (--after)"),
])
def test_bad_input_is_refused_before_anything_runs(catalog_cli, args, message):
    run = catalog_cli(*args)
    assert run.code == 2 and message in run.stderr, run.stderr
    assert not (catalog_cli.home / "state").exists()


def test_a_rollout_job_whose_previous_environment_failed_applies_nothing(catalog_cli, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    failed = {"customer": "acme", "operation": "up", "ok": False,
              "environments": {"development": stack("acme", "development", "failed", operation="up", error="boom")}}
    (results / "acme_development.json").write_text(json.dumps(failed))
    run = catalog_cli("rollout", "apply", "acme", "--env", "staging", "--after", "development", "--results", str(results), "--json", check=0)
    staging = run.json()["environments"]["staging"]
    assert (staging["status"], staging["error"]) == ("skipped", "not run because development failed")
    assert "acme/staging not applied: development failed" in run.stderr
    missing = catalog_cli("rollout", "apply", "acme", "--env", "production", "--after", "staging", "--results", str(results), "--json", check=0)
    assert missing.json()["environments"]["production"]["error"] == "not run because staging left no result"
    assert not (catalog_cli.home / "state").exists() and not (catalog_cli.home / "local-cloud").exists()


def test_matrix_waves_from_the_catalog(catalog_cli):
    waves = json.loads(catalog_cli("matrix", "--all", "--waves", check=0).stdout)
    assert [[(e["customer"], e["environment"]) for e in w["include"]] for w in waves["waves"]] == [
        [("acme", "development"), ("solo", "development")], [("acme", "staging")], [("acme", "production")]]
