"""pytest fixture: a started FakeGitHub that fails the test on any API violation.

Use it from a test module or conftest with
``from tests.fakegithub.fixture import github_server  # noqa: F401``
(or ``pytest_plugins = ["tests.fakegithub.fixture"]`` in the root conftest).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .server import FakeGitHub


@pytest.fixture
def github_server() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        yield server
        # Checked after the test body so that a client which swallows a 4xx
        # (or retries around it) still fails the test.  Tests that provoke a
        # violation on purpose assert it and then clear server.violations.
        if server.violations:
            pytest.fail(
                "GitHub API violations:\n  " + "\n  ".join(server.violations),
                pytrace=False,
            )
