"""The unit tier: no tool binary, no network, no install.

Every unit test sees an empty tool cache and may not install anything, so a regression
that reaches a tool (or a download, or a Go build) fails here at once instead of quietly
building pulumi for five minutes.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def no_tools(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("ENGINE_TOOL_CACHE", str(tmp_path_factory.mktemp("empty-tool-cache")))
    monkeypatch.setenv("ENGINE_NO_TOOL_INSTALL", "1")


@pytest.fixture(autouse=True)
def in_process_cli(monkeypatch):
    from tests.conftest import EngineCLI

    monkeypatch.setattr(EngineCLI, "in_process", True)
