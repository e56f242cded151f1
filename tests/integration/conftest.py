"""Integration tests run the real pulumi CLI.  A missing tool is a failure, never a skip."""

from __future__ import annotations

import pytest

from engine import toolchain
from engine.errors import ToolchainError


@pytest.fixture(scope="session", autouse=True)
def pulumi_installed():
    try:
        return toolchain.ensure("pulumi", allow_install=False)
    except ToolchainError as exc:
        pytest.fail(f"integration tests need the pinned pulumi CLI: {exc.message} ({exc.hint}). Run `make tools`.", pytrace=False)


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.integration)
