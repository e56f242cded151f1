"""SLA figures from a recorded history, against a hand calculation (the history: tests/unit/portal_fixtures.py).

Period: 2026-05-01 00:00 to 2026-05-15 00:00 UTC (14 days, 2 weeks); "now" is 2026-05-20.

acme/staging    04-28 10:00 up failed (an incident from before the period)
                05-01 06:00 up ok, committed 02:00 (lead 4 h; the old incident is down 00:00-06:00 in the period: 6 h)
                05-03 12:00 up failed, 13:00 failed again, 15:00 ok, committed 11:00 (lead 4 h; restored after 3 h; down 3 h)
                05-10 00:00 up ok, committed 05-09 16:00 (lead 8 h); 05-11 a skipped up (not a deployment)
                drift: 05-02 in-sync, 05-05 drifted, 05-06 drifted, 05-07 12:00 in-sync (resolved after 60 h), 05-12 drifted (open)
acme/production 05-02 00:00 up ok, committed 05-01 23:00 (lead 1 h)
                05-14 00:00 up failed (not restored before the period ends: down 24 h); 05-16 ok (after the period)
beta/staging    05-04 10:00 up ok, committed 00:00 (lead 10 h)

acme: 4 deployments, 3 failed -> 2.0 per week; change failure rate 3/7 = 0.4286; lead time median of 1, 4, 4, 8 = 4.0 h;
      time to restore: one restore of 3 h, one unrestored; drift: two incidents, median of the resolved = 60 h, one open;
      availability: 2 stacks, down 6 + 3 + 24 = 33 h of 2 x 336 h -> 1 - 33/672 = 0.9509.
beta: 1 deployment -> 0.5 per week; lead time 10 h (its own target: 12 h); failure rate 0; availability 1.
fleet: 5 deployments, 3 failed -> 2.5 per week, 3/8 = 0.375; lead median of 1, 4, 4, 8, 10 = 4.0 h;
       availability 1 - 33/(3 x 336) = 0.9673.
"""

from __future__ import annotations

import csv
import io

from engine.history import HistoryStore
from engine.portal import queries, sla
from tests.unit import portal_fixtures as pf

PERIOD = sla.Period(pf.at("2026-05-01T00:00:00"), pf.at("2026-05-15T00:00:00"))


def report(tmp_path) -> dict:
    store = HistoryStore.sqlite(tmp_path / "h.sqlite3")
    pf.seed_sla_history(store)
    root = pf.catalog(tmp_path / "c")
    policy = sla.load_policy(root / "policy" / "sla.yml")
    return sla.report(queries.sla_rows(store, PERIOD, None), PERIOD, policy, ["acme", "beta"], fleet=True, now=pf.NOW)


def test_customer_figures_match_the_hand_calculation(tmp_path):
    acme = report(tmp_path)["customers"]["acme"]
    assert (acme["deployments"], acme["failed_deployments"]) == (4, 3)
    assert acme["deployment_frequency_per_week"] == 2.0
    assert acme["change_failure_rate"] == 0.4286
    assert (acme["lead_time_hours"], acme["lead_time_samples"]) == (4.0, 4)
    assert (acme["time_to_restore_hours"], acme["restores"], acme["unrestored"]) == (3.0, 1, 1)
    assert (acme["drift_resolution_hours"], acme["drift_incidents"], acme["drift_unresolved"]) == (60.0, 2, 1)
    assert acme["pipeline_availability"] == round(1 - 33 / 672, 4) == 0.9509
    assert acme["met"] == {"deployment_frequency_per_week": True, "lead_time_hours": True, "change_failure_rate": False,
                           "time_to_restore_hours": True, "drift_resolution_hours": False, "pipeline_availability": False}


def test_per_customer_targets_and_a_customer_without_failures(tmp_path):
    beta = report(tmp_path)["customers"]["beta"]
    assert (beta["deployments"], beta["deployment_frequency_per_week"], beta["lead_time_hours"]) == (1, 0.5, 10.0)
    assert beta["targets"]["lead_time_hours"] == 12 and beta["met"]["lead_time_hours"] is True  # its own target
    assert (beta["change_failure_rate"], beta["pipeline_availability"], beta["time_to_restore_hours"]) == (0.0, 1.0, None)
    assert beta["met"]["time_to_restore_hours"] is None and beta["met"]["drift_resolution_hours"] is None  # no data: neither met nor missed


def test_fleet_figures_match_the_hand_calculation(tmp_path):
    data = report(tmp_path)
    fleet = data["fleet"]
    assert (fleet["deployments"], fleet["failed_deployments"], fleet["deployment_frequency_per_week"]) == (5, 3, 2.5)
    assert (fleet["change_failure_rate"], fleet["lead_time_hours"]) == (0.375, 4.0)
    assert fleet["pipeline_availability"] == round(1 - 33 / (3 * 336), 4) == 0.9673
    assert fleet["targets"]["lead_time_hours"] == 6  # the fleet-wide target, not beta's
    assert [(w["from"], w["deployments"], w["failed"], w["lead_time_hours"]) for w in data["weekly"]] == [
        ("2026-05-01", 4, 2, 4.0), ("2026-05-08", 1, 1, 8.0)]


def test_the_api_and_its_csv_export_give_the_same_figures(tmp_path):
    app, _store, _root = pf.portal(tmp_path)
    c = pf.client(app)
    pf.sign_in(c, "provider")
    data = c.get("/api/sla", params={"from": "2026-05-01", "to": "2026-05-14"}).json()
    assert data["period"] == {"from": "2026-05-01T00:00:00Z", "to": "2026-05-15T00:00:00Z", "days": 14.0}
    assert data["customers"]["acme"]["change_failure_rate"] == 0.4286 and data["fleet"]["pipeline_availability"] == 0.9673
    rows = list(csv.DictReader(io.StringIO(c.get("/api/sla.csv", params={"from": "2026-05-01", "to": "2026-05-14"}).text)))
    assert [r["scope"] for r in rows] == ["fleet", "acme", "beta"]
    acme = rows[1]
    assert (acme["lead_time_hours"], acme["change_failure_rate"], acme["time_to_restore_hours"], acme["pipeline_availability"]) == (
        "4.0", "0.4286", "3.0", "0.9509")
    assert (acme["change_failure_rate_target"], acme["change_failure_rate_met"]) == ("0.2", "False")
    page = c.get("/sla", params={"from": "2026-05-01", "to": "2026-05-14"})
    assert page.status_code == 200 and page.text.count("<svg") == 5 and "42.9%" in page.text  # acme's failure rate, shown


def test_a_malformed_targets_file_names_its_line_and_key(tmp_path):
    from engine.errors import ConfigError

    path = tmp_path / "sla.yml"
    path.write_text("targets:\n  lead_time_hours: 6\n  change_failure_rate: 1.5\n")
    try:
        sla.load_policy(path)
    except ConfigError as exc:
        (problem,) = exc.problems
        assert (problem.line, problem.key_path) == (3, "targets.change_failure_rate")
    else:
        raise AssertionError("a failure rate above 1 was accepted")
