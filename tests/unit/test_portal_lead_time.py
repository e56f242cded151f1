"""Lead time needs when the deployed commit was made: `engine event` asks GitHub (the git commit's committer date) and
the run history keeps it beside the commit."""

from __future__ import annotations

import datetime as dt

from engine.github import GitHubAPI, Settings
from engine.history import HistoryStore, Recorder
from engine.portal import sla
from engine.results import Changes, StackResult
from tests.fakegithub.fixture import github_server  # noqa: F401 - pytest fixture

SHA = "3" * 40


def test_the_commit_time_comes_from_github_and_lands_in_the_history_and_the_lead_time(github_server, tmp_path):  # noqa: F811
    made = dt.datetime(2026, 5, 4, 8, 30, tzinfo=dt.timezone.utc)
    github_server.set_commit_time("acme-org", "app", SHA, made)
    api = GitHubAPI(Settings(api_url=github_server.url, token="test-token"))
    committed = api.commit_time("acme-org/app", SHA)
    assert committed == "2026-05-04T08:30:00Z"
    assert api.commit_time("acme-org/app", "not-a-sha") is None  # GitHub's 404: no time, no error

    store = HistoryStore.sqlite(tmp_path / "h.sqlite3")
    recorder = Recorder(store, sha=SHA, committed_at=committed)
    recorder.stack_done(StackResult("acme", "staging", "acme/staging", "pulumi", "up", "succeeded", changes=Changes(create=1), duration_s=30))
    (row,) = store.query()
    assert (row["sha"], row["committed_at"]) == (SHA, "2026-05-04T08:30:00Z")
    finished = sla.parse_time(row["finished_at"])
    period = sla.Period(made - dt.timedelta(days=1), finished + dt.timedelta(days=1))
    got = sla.measure([{**row, "id": row["id"]}], period, sla.Targets(), now=finished)
    assert got["lead_time_hours"] == round((finished - made).total_seconds() / 3600, 2) and got["lead_time_samples"] == 1
