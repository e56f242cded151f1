"""The engine installed as a wheel (`pip install .`), not from this checkout, serves a provider catalog.

The wheel is built from this repository and installed (without dependencies) into a fresh virtualenv
that borrows the test environment's dependencies; nothing from the checkout is importable there.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def test_the_engine_works_installed_as_a_wheel(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(wheels)], check=True, timeout=600)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True,
                             check=True).stdout.strip()
    # the dependencies come from the test environment; the engine itself only from the wheel
    (Path(purelib) / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", *map(str, wheels.glob("*.whl"))],
                   check=True, timeout=600)

    catalog = tmp_path / "provider"
    shutil.copytree(REPO / "stacks", catalog / "stacks")
    shutil.copytree(REPO / "examples", catalog / "examples")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ENGINE_PROGRESS") and not k.startswith("PULUMI_")}
    env.update({"ENGINE_HOME": str(tmp_path / "home"), "ENGINE_CATALOG": str(catalog)})

    def engine(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(venv / "bin" / "engine"), *args], capture_output=True, text=True, env=env, cwd=catalog, timeout=600)

    where = subprocess.run([str(py), "-c", "import engine, cli; print(engine.__file__); print(cli.__file__)"], capture_output=True,
                           text=True, env=env, cwd=catalog, check=True).stdout
    assert str(REPO) not in where and purelib in where  # really the installed copy

    assert engine("validate", "examples/acme/infra/variables.yml").returncode == 0
    assert json.loads(engine("schema").stdout)["type"] == "object"
    up = engine("up", "acme", "--env", "staging", "--json")
    assert up.returncode == 0, up.stdout + up.stderr
    assert up.stdout and json.loads(up.stdout)["environments"]["staging"]["status"] == "succeeded"
    # the comment templates are package data
    rendered = subprocess.run([str(py), "-c", (
        "from engine.reporters.github import render_comment; from engine.results import StackResult;"
        "print(render_comment(StackResult('acme','staging','acme/staging','pulumi','preview','succeeded'), mode='plan', sha='0'*40, run_url=None))")],
        capture_output=True, text=True, env=env, cwd=catalog)
    assert rendered.returncode == 0 and "acme" in rendered.stdout, rendered.stderr
