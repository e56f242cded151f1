"""Integration tests run the real tools.  A missing tool is a failure, never a skip."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from engine import toolchain
from engine.errors import ToolchainError


@pytest.fixture(scope="session", autouse=True)
def real_tools_installed():
    try:
        tools = [toolchain.ensure("pulumi", allow_install=False), toolchain.ensure("tofu", allow_install=False)]
        toolchain.ensure_provider_mirror(allow_install=False)
    except ToolchainError as exc:
        pytest.fail(f"integration tests need the pinned tools: {exc.message} ({exc.hint}). Run `make tools`.", pytrace=False)
    playbook = Path(sys.executable).parent / "ansible-playbook"
    if not playbook.exists() and not shutil.which("ansible-playbook"):
        pytest.fail("integration tests need ansible-playbook (ansible-core): run `make venv`", pytrace=False)
    return tools


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.integration)
