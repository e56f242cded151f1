"""pytest fixture: a started FakeSpacelift that fails the test on any document the schema does not allow.

``from tests.fakespacelift.fixture import spacelift_server  # noqa: F401``
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .server import FakeSpacelift


@pytest.fixture
def spacelift_server() -> Iterator[FakeSpacelift]:
    with FakeSpacelift() as server:
        yield server
        # After the test body: a client that swallowed the error still fails the test.
        if server.violations:
            pytest.fail("Spacelift API violations:\n  " + "\n  ".join(server.violations), pytrace=False)
