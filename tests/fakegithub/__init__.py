"""A local, stateful GitHub REST API for tests, checked against GitHub's API description.

    from tests.fakegithub import FakeGitHub

    with FakeGitHub() as gh:
        client = GitHub(TokenAuthStrategy("test-token"), base_url=gh.url)
        ...
        assert gh.statuses("acme", "app", sha)[-1]["state"] == "success"
        assert not gh.violations

The ``github_server`` pytest fixture (``tests/fakegithub/fixture.py``) does the
start/stop and fails the test on any violation.
"""

from .server import FakeGitHub, FaultRule

__all__ = ["FakeGitHub", "FaultRule"]
