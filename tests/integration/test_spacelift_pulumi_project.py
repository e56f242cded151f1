"""The Pulumi project Spacelift runs (programs/spacelift) plans what the engine's own Pulumi runner plans.

Spacelift runs `pulumi` in the stack's project root of a checkout of the manager repository, with the
stack's environment variables and hooks.  Here: `engine spacelift sync` provisions the stack on the local
Spacelift server; then, as a Spacelift worker would, the test checks out the repository's programs, runs
the stack's hooks in its project root and `pulumi preview` with the stack's environment — the real pulumi
CLI, a local file backend and the passphrase the sync set.  The planned resources must be the engine's own
preview of the same tenant.

The worker's Python has Pulumi but not the engine (no editable install on its path), as on Spacelift; the
Python language host is the stand-in in tests/pythonhost (the Go plugin is not built here, see its docstring).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import REPO, EngineCLI, make_catalog, tenant_record
from tests.fakespacelift.fixture import spacelift_server  # noqa: F401 - fixture
from tests.pythonhost import install as install_language_host

CUSTOMER_FILE = """\
project_name: acme-app
environments:
  staging:
    instance_type: t3.micro
    instance_count: 2
  production:
    instance_type: t3.small
database:
  engine: postgres
monitoring:
  alert_email: ops@example.com
"""


def worker_python(directory: Path) -> Path:
    """A Python like a Spacelift runner image's: Pulumi and its dependencies, not this repository's packages.

    The virtualenv's site-packages go on the path as a plain directory (-S: no .pth files), so the engine's
    editable install — which would make `programs` importable from anywhere — is not there."""
    script = directory / "python"
    directory.mkdir(parents=True, exist_ok=True)
    script.write_text(f'#!/bin/sh\nPYTHONPATH="{sysconfig.get_paths()["purelib"]}" exec "{sys.executable}" -S "$@"\n')
    script.chmod(0o755)
    return script


def planned(steps: list[dict]) -> list[tuple[str, str]]:
    """(type, name) of every planned resource, types shortened as the engine shows them."""
    out = []
    for step in steps:
        kind = (step.get("newState") or step.get("oldState") or {}).get("type", "")
        if kind == "pulumi:pulumi:Stack":
            continue
        out.append((kind.split("dynamic/", 1)[-1], step["urn"].rsplit("::", 1)[-1]))
    return sorted(out)


@pytest.fixture
def tenant(tmp_path, spacelift_server, monkeypatch):
    for key, value in spacelift_server.env().items():
        monkeypatch.setenv(key, value)
    catalog = make_catalog(tmp_path / "catalog", {"acme": (tenant_record("acme", 1, properties="{infrastructure_tools: [pulumi]}"),
                                                           CUSTOMER_FILE)})
    return EngineCLI(tmp_path / "home", catalog)


def test_the_pulumi_project_spacelift_runs_plans_the_resources_the_engine_plans(tenant, spacelift_server, tmp_path, real_tools_installed):
    # the engine's own preview of the tenant (its own Pulumi runner, no spacelift.yml yet)
    mine = tenant("preview", "acme", "--env", "staging", "--json", check=0).json()["environments"]["staging"]
    assert mine["tool"] == "pulumi" and mine["status"] == "succeeded"
    # (the engine also lists the default provider, from its engine events; `preview --json` has no step for it)
    expected = sorted((r["type"], r["urn_name"]) for r in mine["resources"] if not r["type"].startswith("pulumi:providers:"))
    assert ("local:Instance", "app-2") in expected and ("local:Database", "database") in expected

    (tenant.catalog / "spacelift.yml").write_text("repository: provider-org/manager\nexecute:\n  tenants: [acme]\n")
    tenant("spacelift", "sync", "acme", check=0)
    stack = spacelift_server.stacks["acme-staging"]
    variables = {name: spacelift_server.variable("acme-staging", name) for name in stack["_config"]}
    assert set(variables) == {"ENGINE_SETTINGS", "ENGINE_PROGRAM", "PULUMI_CONFIG_PASSPHRASE"}

    # a Spacelift worker: a checkout of the manager repository, the stack's hooks, then pulumi in the project root
    checkout = tmp_path / "checkout"
    shutil.copytree(REPO / "programs", checkout / "programs", ignore=shutil.ignore_patterns("__pycache__"))
    project = checkout / stack["projectRoot"]
    pulumi_bin = next(t for t in real_tools_installed if t.name == "pulumi").bin_dir
    env = {"HOME": str(tmp_path), "PATH": os.pathsep.join([str(install_language_host(tmp_path / "host").parent), str(pulumi_bin),
                                                            "/usr/local/bin", "/usr/bin", "/bin"]),
           "PULUMI_HOME": str(tmp_path / "pulumi-home"), "PULUMI_SKIP_UPDATE_CHECK": "true",
           "PULUMI_PYTHON_CMD": str(worker_python(tmp_path / "worker")), **variables}
    for hook in stack["beforeInit"]:
        done = subprocess.run(hook, shell=True, cwd=project, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"hook {hook!r} failed:\n{done.stdout}\n{done.stderr}"
    assert "name: acme\n" in (project / "Pulumi.yaml").read_text()  # the hook named the project after the tenant

    state = tmp_path / "state"
    state.mkdir()

    def pulumi(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([str(pulumi_bin / "pulumi"), "--non-interactive", *args], cwd=project, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"pulumi {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done

    pulumi("login", state.as_uri())
    pulumi("stack", "select", "--create", stack["_vendor"]["pulumi"]["stackName"])  # organization/acme/staging
    preview = json.loads(pulumi("preview", "--json").stdout)

    assert planned(preview["steps"]) == expected
    assert preview["changeSummary"].get("create") == mine["changes"]["create"]
    assert not [d for d in preview.get("diagnostics", []) if d.get("severity") == "error"]
