"""programs/spacelift/prepare.py: the hook that readies the Pulumi project in Spacelift's checkout for one tenant."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def checkout(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "programs", tmp_path / "programs", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path / "programs" / "spacelift"


def prepare(project: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ENGINE_")}
    return subprocess.run([sys.executable, "prepare.py"], cwd=project, env={**clean, **env}, capture_output=True, text=True, timeout=60)


def test_prepare_names_the_project_after_the_tenant_and_makes_the_programs_importable(tmp_path):
    project = checkout(tmp_path)
    settings = json.dumps({"customer": "acme", "environment": "staging"})
    for _ in range(2):  # a second run (a new phase in the same workspace) changes nothing and does not fail
        done = prepare(project, ENGINE_SETTINGS=settings)
        assert done.returncode == 0, done.stderr
    text = (project / "Pulumi.yaml").read_text()
    assert [line for line in text.splitlines() if line.startswith("name:")] == ["name: acme"]
    assert "runtime: python" in text
    assert (project / "programs").resolve() == (tmp_path / "programs").resolve()
    assert (project / "programs" / "local" / "resources.py").is_file()


def test_prepare_refuses_a_stack_without_the_engines_settings_and_changes_nothing(tmp_path):
    project = checkout(tmp_path)
    before = (project / "Pulumi.yaml").read_text()
    for env, says in (({}, "ENGINE_SETTINGS is not set"), ({"ENGINE_SETTINGS": "{"}, "not the engine's settings"),
                      ({"ENGINE_SETTINGS": json.dumps({"customer": "../etc"})}, "no valid customer id")):
        done = prepare(project, **env)
        assert done.returncode == 2 and says in done.stderr
    assert (project / "Pulumi.yaml").read_text() == before and not (project / "programs").exists()


def test_the_projects_requirements_pin_what_the_engine_pins():
    """A Spacelift worker runs the programs with programs/spacelift/requirements.txt: the engine's own versions."""
    import tomllib

    pins = {line.split("==")[0]: line for line in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
            if "==" in line}
    wanted = [line.strip() for line in (REPO / "programs" / "spacelift" / "requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert wanted == [pins["pulumi"], pins["pulumi-aws"]]
