"""Dynamic providers for the local target: real resources on this machine.

No cloud account is needed: a "network" is a directory with its definition, a
subnet and a route table are files in it, an instance is a directory with its
definition and a real (sparse) disk image of the requested size, a database is a
real SQLite database, and monitoring is an alarm definition file.  Every provider
implements create, read, update and delete, so ``refresh`` sees out-of-band edits
and a second ``up`` with unchanged input changes nothing.

Paths come from the engine's planner, which builds them only from validated
customer and environment names under the engine's local root.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

def _provisioning_latency() -> None:
    """``ENGINE_LOCAL_LATENCY_S`` makes each create/update/delete take that long, like a cloud API
    would: for demos of progress output and for crash-recovery tests that must interrupt a run."""
    try:
        delay = float(os.environ.get("ENGINE_LOCAL_LATENCY_S", "0") or 0)
    except ValueError:
        delay = 0.0
    if delay > 0:
        time.sleep(min(delay, 60.0))


# Only these keys of a resource's inputs describe it; everything else is computed.
_SPEC = "spec"
_PATH = "path"


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)  # atomic: a crash never leaves half a definition behind


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"unreadable": True}


class _DocumentProvider(ResourceProvider):
    """A resource that is one JSON definition file.  Subclasses add computed outputs."""

    kind = "object"
    serialize_as_secret_always = False

    def computed(self, spec: dict) -> dict:
        return {}

    def _outs(self, path: str, spec: dict) -> dict:
        return {_PATH: path, _SPEC: spec, "kind": self.kind, **self.computed(spec)}

    def create(self, props: dict[str, Any]) -> CreateResult:
        _provisioning_latency()
        path, spec = props[_PATH], props[_SPEC]
        _write_json(Path(path), {"kind": self.kind, _SPEC: spec})
        return CreateResult(id_=path, outs=self._outs(path, spec))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        doc = _read_json(Path(id_))
        if doc is None:
            return ReadResult(id_=None, outs={})  # deleted out of band
        spec = doc.get(_SPEC, {})
        return ReadResult(id_=id_, outs=self._outs(id_, spec))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return _diff(olds, news)

    def update(self, id_: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        _provisioning_latency()
        _write_json(Path(id_), {"kind": self.kind, _SPEC: news[_SPEC]})
        return UpdateResult(outs=self._outs(id_, news[_SPEC]))

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        _provisioning_latency()
        Path(id_).unlink(missing_ok=True)
        _remove_empty_parents(Path(id_).parent)


def _diff(olds: dict[str, Any], news: dict[str, Any], replace_on: tuple[str, ...] = ()) -> DiffResult:
    """Changed spec → update; moved path or a changed ``replace_on`` spec key → replace."""
    old_spec, new_spec = olds.get(_SPEC) or {}, news.get(_SPEC) or {}
    replaces = [_PATH] if olds.get(_PATH) != news.get(_PATH) else []
    replaces += [f"{_SPEC}.{key}" for key in replace_on if old_spec.get(key) != new_spec.get(key)]
    return DiffResult(changes=bool(replaces) or old_spec != new_spec, replaces=replaces, delete_before_replace=True)


def _remove_empty_parents(directory: Path, levels: int = 3) -> None:
    for _ in range(levels):
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent


class NetworkProvider(_DocumentProvider):
    kind = "network"

    def computed(self, spec: dict) -> dict:
        return {"cidr": spec.get("cidr")}


class SubnetProvider(_DocumentProvider):
    kind = "subnet"

    def computed(self, spec: dict) -> dict:
        return {"cidr": spec.get("cidr"), "tier": spec.get("tier")}


class RouteTableProvider(_DocumentProvider):
    kind = "route-table"


class MonitorProvider(_DocumentProvider):
    kind = "monitor"


class InstanceProvider(ResourceProvider):
    """An instance: a directory holding its definition and a sparse root disk of the requested size."""

    serialize_as_secret_always = False

    @staticmethod
    def _outs(path: str, spec: dict, disk_bytes: int | None) -> dict:
        return {
            _PATH: path,
            _SPEC: spec,
            "kind": "instance",
            "private_ip": spec.get("private_ip"),
            "disk_gb": (disk_bytes // 2**30) if disk_bytes is not None else None,
        }

    @staticmethod
    def _materialize(path: Path, spec: dict) -> int:
        path.mkdir(parents=True, exist_ok=True)
        _write_json(path / "instance.json", {"kind": "instance", _SPEC: spec})
        disk = path / "root.img"
        size = int(spec["volume_size_gb"]) * 2**30
        with open(disk, "ab") as fh:
            fh.truncate(size)  # sparse: uses no real space
        return size

    def create(self, props: dict[str, Any]) -> CreateResult:
        _provisioning_latency()
        path, spec = props[_PATH], props[_SPEC]
        size = self._materialize(Path(path), spec)
        return CreateResult(id_=path, outs=self._outs(path, spec, size))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        doc = _read_json(Path(id_) / "instance.json")
        if doc is None:
            return ReadResult(id_=None, outs={})
        spec = dict(doc.get(_SPEC, {}))
        try:
            size = (Path(id_) / "root.img").stat().st_size
        except FileNotFoundError:
            size = 0
        # The disk is part of the instance: a resized disk is drift in volume_size_gb.
        if size != int(spec.get("volume_size_gb", 0)) * 2**30:
            spec["volume_size_gb"] = size // 2**30
        return ReadResult(id_=id_, outs=self._outs(id_, spec, size))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return _diff(olds, news)

    def update(self, id_: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        _provisioning_latency()
        disk = Path(id_) / "root.img"
        if disk.exists():
            os.truncate(disk, 0)  # resize to exactly the new size, shrinking too
        size = self._materialize(Path(id_), news[_SPEC])
        return UpdateResult(outs=self._outs(id_, news[_SPEC], size))

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        _provisioning_latency()
        shutil.rmtree(id_, ignore_errors=True)
        _remove_empty_parents(Path(id_).parent)


class DatabaseProvider(ResourceProvider):
    """A real SQLite database standing in for the managed database; its password is a secret output."""

    serialize_as_secret_always = False

    @staticmethod
    def _outs(path: str, spec: dict, password: str) -> dict:
        return {_PATH: path, _SPEC: spec, "kind": "database", "endpoint": f"sqlite://{path}", "username": "app", "password": password}

    @staticmethod
    def _store(path: Path, spec: dict, password: str | None) -> str:
        path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE IF NOT EXISTS engine_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            if password is None:
                row = db.execute("SELECT value FROM engine_meta WHERE key = 'password'").fetchone()
                password = row[0] if row else secrets.token_urlsafe(24)
            db.execute("INSERT OR REPLACE INTO engine_meta VALUES ('spec', ?)", (json.dumps(spec, sort_keys=True),))
            db.execute("INSERT OR REPLACE INTO engine_meta VALUES ('password', ?)", (password,))
        os.chmod(path, 0o600)
        return password

    def create(self, props: dict[str, Any]) -> CreateResult:
        _provisioning_latency()
        path, spec = props[_PATH], props[_SPEC]
        password = self._store(Path(path), spec, secrets.token_urlsafe(24))
        return CreateResult(id_=path, outs=self._outs(path, spec, password))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        if not Path(id_).is_file():
            return ReadResult(id_=None, outs={})
        try:
            with sqlite3.connect(f"file:{id_}?mode=ro", uri=True) as db:
                rows = dict(db.execute("SELECT key, value FROM engine_meta").fetchall())
        except sqlite3.Error:
            rows = {}
        spec = json.loads(rows["spec"]) if "spec" in rows else {}
        return ReadResult(id_=id_, outs=self._outs(id_, spec, rows.get("password", "")))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return _diff(olds, news, replace_on=("engine",))  # changing engines means a new database

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        _provisioning_latency()
        password = self._store(Path(id_), news[_SPEC], None)
        return UpdateResult(outs=self._outs(id_, news[_SPEC], password))

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        _provisioning_latency()
        Path(id_).unlink(missing_ok=True)
        _remove_empty_parents(Path(id_).parent)


class LocalNetwork(Resource, module="local", name="Network"):
    path: pulumi.Output[str]
    cidr: pulumi.Output[str]

    def __init__(self, name: str, path: str, spec: dict, opts: pulumi.ResourceOptions | None = None):
        super().__init__(NetworkProvider(), name, {_PATH: path, _SPEC: spec, "cidr": None, "kind": None}, opts)


class LocalSubnet(Resource, module="local", name="Subnet"):
    path: pulumi.Output[str]
    cidr: pulumi.Output[str]

    def __init__(self, name: str, path: str, spec: dict, opts: pulumi.ResourceOptions | None = None):
        super().__init__(SubnetProvider(), name, {_PATH: path, _SPEC: spec, "cidr": None, "tier": None, "kind": None}, opts)


class LocalRouteTable(Resource, module="local", name="RouteTable"):
    path: pulumi.Output[str]

    def __init__(self, name: str, path: str, spec: dict, opts: pulumi.ResourceOptions | None = None):
        super().__init__(RouteTableProvider(), name, {_PATH: path, _SPEC: spec, "kind": None}, opts)


class LocalInstance(Resource, module="local", name="Instance"):
    path: pulumi.Output[str]
    private_ip: pulumi.Output[str]

    def __init__(self, name: str, path: str, spec: dict, opts: pulumi.ResourceOptions | None = None):
        super().__init__(InstanceProvider(), name, {_PATH: path, _SPEC: spec, "private_ip": None, "disk_gb": None, "kind": None}, opts)


class LocalDatabase(Resource, module="local", name="Database"):
    path: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    username: pulumi.Output[str]
    password: pulumi.Output[str]

    def __init__(self, name: str, path: str, spec: dict, opts: pulumi.ResourceOptions | None = None):
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["password"]))
        props = {_PATH: path, _SPEC: spec, "endpoint": None, "username": None, "password": None, "kind": None}
        super().__init__(DatabaseProvider(), name, props, opts)


class LocalMonitor(Resource, module="local", name="Monitor"):
    path: pulumi.Output[str]

    def __init__(self, name: str, path: str, spec: dict, opts: pulumi.ResourceOptions | None = None):
        super().__init__(MonitorProvider(), name, {_PATH: path, _SPEC: spec, "kind": None}, opts)
