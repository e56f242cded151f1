"""pytest fixture: a started FakeChat that fails the test on any message Slack or Teams would refuse.

``from tests.fakenotify.fixture import chat_server  # noqa: F401``
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .server import FakeChat


@pytest.fixture
def chat_server() -> Iterator[FakeChat]:
    with FakeChat() as server:
        yield server
        # After the test body: a client that swallowed the refusal still fails the test.
        if server.violations:
            pytest.fail("Slack/Teams payload violations:\n  " + "\n  ".join(server.violations), pytrace=False)
