"""State backups (engine/backups.py): encrypted with the customer's own passphrase, the last N kept, read back whole."""

from __future__ import annotations

import json

import pytest

from engine.backups import MAGIC, BackupStore, Stamp, keep_from_env
from engine.errors import InputError, OperationError

STATE = json.dumps({"version": 4, "serial": 7, "lineage": "abc", "resources": [{"mode": "managed", "name": "db",
                                                                                  "instances": [{"attributes": {"password": "hunter2-plaintext"}}]}]}).encode()


def store(tmp_path, passphrase="acme-passphrase", keep=3, customer="acme") -> BackupStore:
    return BackupStore(f"file://{tmp_path}/state/{customer}", customer, "staging", passphrase, keep=keep)


def test_a_backup_lives_in_the_customers_state_location_and_is_unreadable_without_its_passphrase(tmp_path):
    backups = store(tmp_path)
    kept = backups.save("terraform", STATE, "before-up", Stamp(serial=7, lineage="abc", resources=1))
    path = tmp_path / "state" / "acme" / "backups" / "staging" / f"{kept.id}.bak"
    raw = path.read_bytes()
    assert raw.startswith(MAGIC) and b"hunter2" not in raw and b"resources" not in raw.split(b"\n", 2)[2]
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert backups.open(kept) == STATE
    with pytest.raises(OperationError, match="cannot be opened with the customer's passphrase"):
        store(tmp_path, passphrase="another-customers-passphrase").open(kept)


def test_an_edited_header_makes_the_backup_fail_to_open(tmp_path):
    backups = store(tmp_path)
    kept = backups.save("terraform", STATE, "before-up", Stamp(serial=7))
    path = tmp_path / "state" / "acme" / "backups" / "staging" / f"{kept.id}.bak"
    path.write_bytes(path.read_bytes().replace(b'"serial":7', b'"serial":9'))
    with pytest.raises(OperationError, match="altered"):
        backups.open(backups.list()[0])


def test_only_the_last_n_are_kept_newest_first_and_the_same_state_is_not_kept_twice(tmp_path):
    backups = store(tmp_path, keep=3)
    ids = [backups.save("pulumi", STATE + str(i).encode(), "after-up", Stamp(written_at=f"2026-01-0{i + 1}")).id for i in range(5)]
    assert backups.save("pulumi", STATE + b"4", "before-up", Stamp()) is None  # the newest holds exactly this state
    assert [b.id for b in backups.list()] == ids[:1:-1]
    assert backups.open(backups.find(None)) == STATE + b"4"


def test_the_default_backup_is_the_newest_a_deploy_kept_not_the_state_a_restore_replaced(tmp_path):
    backups = store(tmp_path)
    good = backups.save("pulumi", STATE, "after-up", Stamp(written_at="2026-01-01"))
    backups.save("pulumi", b"damaged by hand", "before-restore", Stamp())
    assert backups.find(None).id == good.id
    with pytest.raises(InputError, match="has no backup"):
        backups.find("20990101T000000000Z-abcdef")
    with pytest.raises(InputError, match="is not a backup id"):
        backups.find("../../etc/passwd")


def test_a_stack_without_backups_says_where_it_looked(tmp_path):
    with pytest.raises(InputError, match=r"acme/staging has no state backups in .*/state/acme/backups/staging"):
        store(tmp_path).find(None)


def test_a_live_state_is_newer_by_serial_lineage_or_write_time():
    assert Stamp(serial=8, lineage="a").newer_than(Stamp(serial=7, lineage="a")) == "the live state is at serial 8, the backup at 7"
    assert Stamp(serial=7, lineage="a").newer_than(Stamp(serial=7, lineage="a")) is None
    assert "another lineage" in Stamp(serial=1, lineage="b").newer_than(Stamp(serial=7, lineage="a"))
    assert "after the backup" in Stamp(written_at="2026-02-01T00:00:00Z").newer_than(Stamp(written_at="2026-01-01T00:00:00Z"))
    assert Stamp(written_at="2026-01-01T00:00:00Z").newer_than(Stamp(written_at="2026-01-01T00:00:00Z")) is None


def test_backups_on_s3_state_use_the_customers_own_prefix(monkeypatch):
    # only the location is computed here; the real S3-compatible server is in tests/integration (test_s3_state.py)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    backups = BackupStore("s3://fleet-state/pulumi/acme?region=us-east-1&endpoint=http://127.0.0.1:9", "acme", "staging", "p")
    assert backups.where == "s3://fleet-state/pulumi/acme/backups/staging/"


def test_how_many_backups_are_kept_is_a_checked_setting(monkeypatch):
    assert keep_from_env() == 10
    monkeypatch.setenv("ENGINE_STATE_BACKUPS", "3")
    assert keep_from_env() == 3
    monkeypatch.setenv("ENGINE_STATE_BACKUPS", "0")
    with pytest.raises(InputError, match="ENGINE_STATE_BACKUPS must be a whole number from 1 to 1000"):
        keep_from_env()
