"""A portal over a small recorded history: two customers (acme, beta), local sign-in, fake outputs. Shared by the
portal's unit tests, its browser test and the load benchmark's smoke check."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from engine.history import HistoryStore, utc_iso
from engine.portal import PortalSettings, create_app, queries
from tests.conftest import SMALL_CONFIG, make_catalog, tenant_record

NOW = dt.datetime(2026, 5, 20, 12, 0, tzinfo=dt.timezone.utc)
SLA_YML = """\
targets:
  deployment_frequency_per_week: 1
  lead_time_hours: 6
  change_failure_rate: 0.2
  time_to_restore_hours: 4
  drift_resolution_hours: 48
  pipeline_availability: 0.99
customers:
  beta:
    lead_time_hours: 12
"""


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc)


def add_run(store: HistoryStore, customer: str, environment: str, operation: str, status: str, finished: str,
            committed: str | None = None, duration: float = 60.0, error: str | None = None, details: str | None = None,
            create: int = 0, update: int = 0, same: int = 0) -> None:
    end = at(finished)
    store.insert({"started_at": utc_iso(end - dt.timedelta(seconds=duration)), "finished_at": utc_iso(end), "actor": "alice", "host": "ci-1",
                  "customer": customer, "environment": environment, "tool": "pulumi", "operation": operation, "status": status,
                  "create_count": create, "update_count": update, "delete_count": 0, "replace_count": 0, "same_count": same,
                  "duration_s": duration, "error": error, "run_url": None, "sha": ("c0ffee" * 7)[:40] if committed else None,
                  "committed_at": utc_iso(at(committed)) if committed else None, "details": details})


def seed_sla_history(store: HistoryStore) -> None:
    """The history the SLA hand calculation in test_portal_sla.py is made for (period 2026-05-01 to 2026-05-14)."""
    add_run(store, "acme", "staging", "up", "failed", "2026-04-28T10:00:00", error="before the period")
    add_run(store, "acme", "staging", "up", "succeeded", "2026-05-01T06:00:00", committed="2026-05-01T02:00:00", create=5, same=0)
    add_run(store, "acme", "staging", "drift", "in-sync", "2026-05-02T00:00:00")
    add_run(store, "acme", "production", "up", "succeeded", "2026-05-02T00:00:00", committed="2026-05-01T23:00:00", create=7)
    add_run(store, "acme", "staging", "up", "failed", "2026-05-03T12:00:00", error="resource db failed")
    add_run(store, "acme", "staging", "up", "failed", "2026-05-03T13:00:00", error="resource db failed again")
    add_run(store, "acme", "staging", "up", "succeeded", "2026-05-03T15:00:00", committed="2026-05-03T11:00:00", update=1, same=5)
    add_run(store, "beta", "staging", "up", "succeeded", "2026-05-04T10:00:00", committed="2026-05-04T00:00:00", create=3)
    add_run(store, "acme", "staging", "drift", "drifted", "2026-05-05T00:00:00",
            details='{"resources": [{"name": "web-1", "type": "local:Instance", "action": "update", "properties": ["size_gb"]}], "more": 0}')
    add_run(store, "acme", "staging", "drift", "drifted", "2026-05-06T00:00:00")
    add_run(store, "acme", "staging", "preview", "succeeded", "2026-05-06T12:00:00")
    add_run(store, "acme", "staging", "drift", "in-sync", "2026-05-07T12:00:00")
    add_run(store, "acme", "staging", "up", "succeeded", "2026-05-10T00:00:00", committed="2026-05-09T16:00:00", same=6)
    add_run(store, "acme", "staging", "up", "skipped", "2026-05-11T00:00:00")
    add_run(store, "acme", "staging", "drift", "drifted", "2026-05-12T00:00:00",
            details='{"resources": [{"name": "db", "type": "local:Database", "action": "update", "properties": ["engine_version"]}], "more": 0}')
    add_run(store, "acme", "production", "up", "failed", "2026-05-14T00:00:00", error="quota exceeded")
    add_run(store, "acme", "production", "up", "succeeded", "2026-05-16T00:00:00", committed="2026-05-15T20:00:00", same=7)


def catalog(root: Path) -> Path:
    cat = make_catalog(root, {"acme": (tenant_record("acme", 1, display_name="ACME Corp"), SMALL_CONFIG.format(name="acme-app")),
                              "beta": (tenant_record("beta", 2, display_name="Beta Ltd"), SMALL_CONFIG.format(name="beta-app"))})
    (cat / "policy").mkdir(exist_ok=True)
    (cat / "policy" / "sla.yml").write_text(SLA_YML)
    return cat


def portal(tmp_path: Path, outputs=None, settings: PortalSettings | None = None, store: HistoryStore | None = None, oauth_transport=None):
    """(app, store, catalog root): the portal over a fresh SQLite history with the SLA history seeded."""
    root = catalog(tmp_path / "catalog")
    store = store or HistoryStore.sqlite(tmp_path / "home" / "history.sqlite3")
    seed_sla_history(store)
    tenants = queries.TenantSource(root, tmp_path / "home", background=False)
    tenants.read_desired_state()
    app = create_app(settings or PortalSettings(local_sign_in=True), store, root, tmp_path / "home",
                     outputs_reader=outputs or (lambda c, e: {"available": True, "reason": None, "outputs": {"endpoint": f"{c}.{e}.example"}}),
                     tenants=tenants, clock=lambda: NOW, oauth_transport=oauth_transport)
    return app, store, root


def client(app, host: str = "127.0.0.1", scheme: str = "http"):
    import warnings

    with warnings.catch_warnings():  # Starlette suggests httpx2; its test client still runs on httpx, which the engine pins
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    return TestClient(app, base_url=f"{scheme}://{host}:8080", client=(host, 50000))


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def sign_in(c, who: str) -> None:
    """Local sign-in as ``provider`` or ``customer:<id>``."""
    page = c.get("/signin")
    resp = c.post("/auth/local", data={"csrf": csrf_of(page.text), "who": who, "next": "/"}, follow_redirects=False)
    assert resp.status_code == 303, resp.text
