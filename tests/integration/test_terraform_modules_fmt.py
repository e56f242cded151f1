"""Every provider module is `tofu fmt`-clean, checked with the pinned OpenTofu (a missing binary fails the test).

`tofu validate` needs each module's providers: the engine's plugin mirror holds hashicorp/aws and its own
enginelocal only, so the azure (azurerm) and gcp (google) modules are checked against the tfvars the engine writes by
reading their HCL instead (tests/unit/test_terraform_modules.py).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from engine import toolchain
from engine.clouds import TARGETS, terraform_module

MODULES = Path(__file__).resolve().parent.parent.parent / "terraform"


@pytest.mark.parametrize("target", TARGETS)
def test_every_module_is_tofu_fmt_clean(target):
    tool = toolchain.ensure("tofu", allow_install=False)
    module = (MODULES / terraform_module(target)).resolve()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    proc = subprocess.run([str(tool.executable), "fmt", "-check", "-diff", "-no-color", str(module)], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{module} is not formatted (run `tofu fmt {module}`):\n{proc.stdout}{proc.stderr}"
    assert any(module.glob("*.tf"))
