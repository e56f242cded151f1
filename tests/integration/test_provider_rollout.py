"""A provider change (programs/local) rolled out to every customer it affects: what provider-rollout.yml runs.

Against the local GitHub server and the local target, with the commands and arguments the workflow passes:
on the pull request `engine rollout plan --changed-from FILE --pr N`; on the merge `engine matrix
--changed-from FILE --waves`, one `engine rollout apply CUSTOMER --env E [--after P] --results DIR --json`
per matrix job, wave after wave, and `engine rollout report --changed-from FILE --results DIR --pr N`.
"""

from __future__ import annotations

import json

import pytest

from engine.fanout import result_file
from engine.reporters.rollout import MARKER
from tests.conftest import EngineCLI, make_catalog, tenant_record, THREE_ENVIRONMENTS
from tests.fakegithub.fixture import github_server  # noqa: F401 - pytest fixture

TWO = "project_name: {name}\nenvironments:\n  staging:\n    instance_type: t3.micro\n  production:\n    instance_type: t3.small\n"
ONE = "project_name: {name}\nenvironments:\n  development:\n    instance_type: t3.micro\n"
TF = 'properties:\n  infrastructure_tools: [terraform]\n  terraform_version: "1.6"\n'
AFFECTED = [("acme", "development"), ("acme", "staging"), ("acme", "production"), ("beta", "staging"), ("beta", "production"),
            ("solo", "development")]


@pytest.fixture
def manager(tmp_path, github_server):  # noqa: F811
    root = make_catalog(tmp_path / "catalog", {
        "acme": (tenant_record("acme", 1), THREE_ENVIRONMENTS.format(name="acme-app")),
        "beta": (tenant_record("beta", 2), TWO.format(name="beta-app")),
        "solo": (tenant_record("solo", 3), ONE.format(name="solo-app")),
        "tofu": (tenant_record("tofu", 4) + TF, TWO.format(name="tofu-app")),  # OpenTofu: programs/local is not its module
    })
    github_server.add_repo("provider", "manager")
    github_server.add_pull("provider", "manager", 12, "5" * 40)
    cli = EngineCLI(tmp_path / "home", root)
    env = cli.env()
    env.update({"GITHUB_API_URL": github_server.url, "GITHUB_TOKEN": "test-token", "GITHUB_SERVER_URL": "https://github.example",
                "GITHUB_REPOSITORY": "provider/manager", "GITHUB_RUN_ID": "314", "ENGINE_GITHUB_TIMEOUT": "5", "ENGINE_GITHUB_MAX_RETRY_WAIT": "2"})
    cli.env = lambda: env  # type: ignore[method-assign]
    changed = tmp_path / "changed.txt"
    changed.write_text("programs/local/resources.py\n")  # what changed_files.sh lists for the pull request
    return cli, github_server, changed


def rows(body: str) -> list[tuple[str, str, str]]:
    """(customer, environment, result) of every stack row of the summary comment."""
    out = []
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 9 and cells[0].startswith("`"):
            out.append((cells[0].strip("`"), cells[1].strip("`"), cells[3]))
    return out


def test_a_change_to_programs_local_is_planned_in_one_comment_and_applied_on_merge(manager, tmp_path):
    cli, server, changed = manager
    details = tmp_path / "step-summary.md"

    # -- the pull request: one summary comment listing every affected customer × environment
    plan = cli("rollout", "plan", "--changed-from", str(changed), "--pr", "12", "--parallel", "3", "--details", str(details), "--json")
    assert plan.code == 0, plan.stdout[-3000:] + plan.stderr[-3000:]
    assert plan.json()["summary"] == {"customers": 3, "stacks": 6, "succeeded": 6, "failed": 0, "skipped": 0, "blocked": 0}
    assert plan.json()["comment"]["action"] == "created"
    (comment,) = server.comments("provider", "manager", 12)
    assert comment["body"].startswith(MARKER)
    assert "Provider change plan: 6 stacks of 3 customers" in comment["body"]
    assert [(c, e) for c, e, _ in rows(comment["body"])] == AFFECTED  # the OpenTofu tenant is not affected
    assert all(result == "✅ planned" for _, _, result in rows(comment["body"]))
    assert "| `acme` | `production` | pulumi | ✅ planned | 9 | 0 | 0 | 0 | [plan](https://github.example/provider/manager/actions/runs/314) |" in comment["body"]
    assert "**Affected customers:** `acme`, `beta`, `solo`" in comment["body"]
    full_plan = details.read_text()  # what the link leads to: the job summary with every stack's plan
    assert all(f"`{c}` / `{e}`" in full_plan for c, e in AFFECTED)
    assert not (cli.home / "local-cloud").exists()  # a plan applies nothing

    again = cli("rollout", "plan", "--changed-from", str(changed), "--pr", "12", "--parallel", "3", "--json", check=0)
    assert again.json()["comment"]["action"] == "unchanged"  # a re-run with the same plan writes nothing
    assert len(server.comments("provider", "manager", 12)) == 1

    # -- the merge: the matrix in waves, one job per customer × environment; beta's staging fails
    waves = json.loads(cli("matrix", "--changed-from", str(changed), "--waves", check=0).stdout)
    assert [[(e["customer"], e["environment"], e["after"]) for e in w["include"]] for w in waves["waves"]] == [
        [("acme", "development", ""), ("beta", "staging", ""), ("solo", "development", "")],
        [("acme", "staging", "development"), ("beta", "production", "staging")],
        [("acme", "production", "staging")],
    ]
    blocker = cli.home / "local-cloud/beta/staging/network"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("in the way")
    results = tmp_path / "results"
    results.mkdir()
    codes = {}
    for wave in waves["waves"]:
        for job in wave["include"]:
            args = ["rollout", "apply", job["customer"], "--env", job["environment"], "--results", str(results), "--json"]
            if job["after"]:
                args += ["--after", job["after"]]
            run = cli(*args)
            codes[(job["customer"], job["environment"])] = run.code
            (results / result_file(job["customer"], job["environment"])).write_text(run.stdout)  # the job's artifact
    assert codes == {("acme", "development"): 0, ("acme", "staging"): 0, ("acme", "production"): 0,
                     ("beta", "staging"): 1, ("beta", "production"): 0, ("solo", "development"): 0}

    report = cli("rollout", "report", "--changed-from", str(changed), "--results", str(results), "--pr", "12", "--json")
    assert report.code == 1, report.stdout[-2000:] + report.stderr[-2000:]
    assert report.json()["summary"] == {"customers": 3, "stacks": 6, "succeeded": 4, "failed": 1, "skipped": 1, "blocked": 0}
    (comment,) = server.comments("provider", "manager", 12)  # the same comment, now the rollout's result
    assert rows(comment["body"]) == [("acme", "development", "✅ applied"), ("acme", "staging", "✅ applied"), ("acme", "production", "✅ applied"),
                                     ("beta", "staging", "❌ failed"), ("beta", "production", "⏭️ not run"), ("solo", "development", "✅ applied")]
    assert "- `beta/staging`: `vpc: FileExistsError" in comment["body"]  # who failed
    for customer, environment in [("acme", "development"), ("acme", "staging"), ("acme", "production"), ("solo", "development")]:
        assert (cli.home / f"local-cloud/{customer}/{environment}/compute").is_dir()
    assert not (cli.home / "local-cloud/beta/production").exists()  # beta's production waited for its staging, which failed

    # each customer's environments were applied in file order (the run history's start times)
    history = json.loads(cli("history", "acme", "--limit", "10", "--json", check=0).stdout)
    runs = sorted((r["started_at"], r["environment"]) for r in history["runs"] if r["operation"] == "up")
    assert [env for _, env in runs] == ["development", "staging", "production"]
