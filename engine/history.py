"""Run history: every finished stack operation as one row (who, when, what, result, counts).

The default store is an embedded SQLite database, ``$ENGINE_HOME/history.sqlite3`` (WAL
mode and a busy timeout, so concurrent engine processes can write).  Providers who outgrow
one machine set ``ENGINE_HISTORY_URL=postgresql://…`` (psycopg 3).  Both backends use the
*same* DDL and the *same* queries: they are written once with ``?`` placeholders, and
``Dialect`` holds the only differences (placeholder style, the id column, the migration
lock).

Recording is best effort: a failed write prints a warning on stderr and never changes a
command's result or exit code.  Outputs are stored only in a successful deploy's snapshot, masked
(engine/snapshots.py); an error is kept as its first line, at most 500 characters.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import sqlite3
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import unquote, urlsplit

from engine.provenance import actor, run_url
from engine.errors import InputError, OperationError
from engine.results import StackResult

ERROR_MAX = 500
BUSY_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 5

# Rebuilds each stack's latest-run pointers (latest_kinds below) from the runs themselves: run by migration 3 on an
# existing history, and by ``HistoryStore.rebuild_latest`` after rows were loaded in bulk.
_LATEST_SELECT = ("INSERT INTO latest_runs (customer, environment, kind, run_id, operation, status, finished_at) "
                  "SELECT customer, environment, {kind}, id, operation, status, finished_at FROM runs WHERE id IN "
                  "(SELECT MAX(id) FROM runs WHERE {where} GROUP BY {group})")
LATEST_BACKFILL = [
    _LATEST_SELECT.format(kind="'deploy'", where="operation IN ('up', 'destroy', 'remediate', 'rollback') AND status IN ('succeeded', 'failed')",
                          group="customer, environment"),
    _LATEST_SELECT.format(kind="'deployed'", where="operation IN ('up', 'destroy', 'rollback') AND status = 'succeeded'",
                          group="customer, environment"),
    _LATEST_SELECT.format(kind="operation", where="operation IN ('drift', 'compliance')", group="customer, environment, operation"),
]

# One schema for both backends.  Times are UTC ISO-8601 text ("2026-05-20T12:00:03.123Z"):
# portable, and they sort as they read.  {id} is the dialect's auto-increment primary key.
MIGRATIONS: list[tuple[int, list[str]]] = [
    (1, [
        """CREATE TABLE IF NOT EXISTS runs (
            id {id},
            started_at TEXT NOT NULL,
            finished_at TEXT NOT NULL,
            actor TEXT NOT NULL,
            host TEXT NOT NULL,
            customer TEXT NOT NULL,
            environment TEXT NOT NULL,
            tool TEXT NOT NULL,
            operation TEXT NOT NULL,
            status TEXT NOT NULL,
            create_count INTEGER NOT NULL DEFAULT 0,
            update_count INTEGER NOT NULL DEFAULT 0,
            delete_count INTEGER NOT NULL DEFAULT 0,
            replace_count INTEGER NOT NULL DEFAULT 0,
            same_count INTEGER NOT NULL DEFAULT 0,
            duration_s DOUBLE PRECISION NOT NULL DEFAULT 0,
            error TEXT,
            run_url TEXT,
            sha TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at)",
        "CREATE INDEX IF NOT EXISTS runs_customer ON runs (customer, environment, started_at)",
    ]),
    # For the portal (engine/portal): when the deployed commit was made (lead time), what each run changed (resource
    # names, types and actions, or compliance findings: never values), per-operation reads, and its API tokens (hashed).
    (2, [
        "ALTER TABLE runs ADD COLUMN committed_at TEXT",
        "ALTER TABLE runs ADD COLUMN details TEXT",
        "CREATE INDEX IF NOT EXISTS runs_operation ON runs (operation, customer, environment, started_at)",
        """CREATE TABLE IF NOT EXISTS api_tokens (
            id {id},
            token_hash TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            scope TEXT NOT NULL,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            revoked_at TEXT
        )""",
    ]),
    # Each stack's latest run of each kind (LATEST_KINDS), kept on every insert: the portal's fleet view reads 3,000
    # stacks out of 100,000 runs by key instead of grouping the whole table on every request.
    (3, [
        """CREATE TABLE IF NOT EXISTS latest_runs (
            customer TEXT NOT NULL,
            environment TEXT NOT NULL,
            kind TEXT NOT NULL,
            run_id BIGINT NOT NULL,
            operation TEXT NOT NULL,
            status TEXT NOT NULL,
            finished_at TEXT NOT NULL,
            PRIMARY KEY (customer, environment, kind)
        )""",
        "CREATE INDEX IF NOT EXISTS runs_operation_started ON runs (operation, started_at, customer, status)",  # covers deploy counts
        *LATEST_BACKFILL,
    ]),
    # Every successful deploy is a restorable snapshot (engine/snapshots.py): its validated inputs, the program/module
    # revision, the tool's version and its masked outputs, one row per deploy run; a rollback run names its source.
    (4, [
        """CREATE TABLE IF NOT EXISTS snapshots (
            run_id BIGINT PRIMARY KEY,
            customer TEXT NOT NULL,
            environment TEXT NOT NULL,
            tool TEXT NOT NULL,
            tool_version TEXT,
            revision TEXT NOT NULL,
            inputs_sha256 TEXT NOT NULL,
            snapshot TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS snapshots_stack ON snapshots (customer, environment, run_id)",
        "ALTER TABLE runs ADD COLUMN rollback_of BIGINT",
    ]),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]

COLUMNS = ("started_at", "finished_at", "actor", "host", "customer", "environment", "tool", "operation", "status",
           "create_count", "update_count", "delete_count", "replace_count", "same_count", "duration_s", "error", "run_url", "sha",
           "committed_at", "details", "rollback_of")
DETAILS_MAX_ITEMS = 50  # resources (or findings) kept per run; the rest are counted
INSERT = f"INSERT INTO runs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)}) RETURNING id"
UPSERT_LATEST = ("INSERT INTO latest_runs (customer, environment, kind, run_id, operation, status, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                 "ON CONFLICT (customer, environment, kind) DO UPDATE SET run_id = excluded.run_id, operation = excluded.operation, "
                 "status = excluded.status, finished_at = excluded.finished_at WHERE excluded.run_id > latest_runs.run_id")
INSERT_SNAPSHOT = ("INSERT INTO snapshots (run_id, customer, environment, tool, tool_version, revision, inputs_sha256, snapshot) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?)")


def latest_kinds(row: dict) -> list[str]:
    """Which of a stack's "latest run" pointers a new row moves: ``deploy`` (the last deployment that ran: up, destroy,
    remediate or rollback, succeeded or failed), ``deployed`` (the last successful up, destroy or rollback), ``drift``,
    ``compliance``."""
    operation, status = row.get("operation"), row.get("status")
    kinds = []
    if operation in ("up", "destroy", "remediate", "rollback") and status in ("succeeded", "failed"):
        kinds.append("deploy")
    if operation in ("up", "destroy", "rollback") and status == "succeeded":
        kinds.append("deployed")
    if operation in ("drift", "compliance"):
        kinds.append(operation)
    return kinds
SELECT = f"SELECT id, {', '.join(COLUMNS)} FROM runs"


@dataclass(frozen=True)
class Dialect:
    """Everything that differs between SQLite and PostgreSQL.  Queries are written for SQLite's ``?``."""

    name: str
    placeholder: str
    id_column: str
    begin: tuple[str, ...]  # starts the migration transaction and serializes concurrent migrations
    write_begin: str = "BEGIN"  # starts a write transaction (SQLite: take the write lock at once, no upgrade deadlock)

    def sql(self, text: str) -> str:
        assert "%" not in text, "queries must not contain '%' (psycopg placeholder syntax)"
        return text.replace("?", self.placeholder).replace("{id}", self.id_column)


SQLITE = Dialect("sqlite", "?", "INTEGER PRIMARY KEY", ("BEGIN IMMEDIATE",), "BEGIN IMMEDIATE")
POSTGRES = Dialect("postgresql", "%s", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
                   ("BEGIN", "SELECT pg_advisory_xact_lock(7461626579)"))  # any fixed key: one migration at a time


def utc_iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class HistoryStore:
    """The ``runs`` table behind one connection factory; a connection per call (thread- and fork-safe)."""

    def __init__(self, dialect: Dialect, connect: Callable[[], object], where: str, exists: Callable[[], bool] = lambda: True,
                 secrets: tuple[str, ...] = ()):
        self.dialect = dialect
        self._connect = connect
        self.where = where  # shown to people: never contains a password
        self._exists = exists
        self._secrets = secrets  # the URL's passwords: cut out of every error text before it is shown
        self._migrated = False
        self._kept: threading.local | None = None  # keep_connections(): one open connection per thread

    def describe_error(self, exc: BaseException) -> str:
        """``Type: first line`` of a driver error, fit to print: the store's passwords are replaced by ``***``."""
        return f"{type(exc).__name__}: {first_line(redact(str(exc), self._secrets)) or '(no message)'}"

    @classmethod
    def sqlite(cls, path: Path) -> "HistoryStore":
        path = Path(path)

        def connect():
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)  # autocommit; BEGIN is explicit
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            # Switching a new database to WAL needs it to itself and does not wait on the busy timeout:
            # writers racing on a fresh file get "database is locked" at once.  Retry for as long as we would wait.
            deadline = time.monotonic() + BUSY_TIMEOUT_S
            while True:
                try:
                    conn.execute("PRAGMA journal_mode = WAL")
                    return conn
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        conn.close()
                        raise
                    time.sleep(0.05)

        return cls(SQLITE, connect, f"sqlite:///{path}", exists=path.is_file)

    @classmethod
    def postgres(cls, url: str) -> "HistoryStore":
        """A PostgreSQL store.  A malformed URL is an ``InputError`` whose message never shows the password."""
        shown = _check_postgres_url(url)

        def connect():
            import psycopg  # only needed for this backend

            return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S, application_name="managed-infra-engine")

        return cls(POSTGRES, connect, shown, secrets=url_secrets(url))

    @classmethod
    def from_url(cls, url: str | None, home_root: Path) -> "HistoryStore":
        """``ENGINE_HISTORY_URL``: ``postgresql://…``, ``sqlite:///path``; unset: ``$ENGINE_HOME/history.sqlite3``.

        Raises ``InputError`` (a configuration error, exit 2) for a URL it cannot use; the message never
        contains a password.
        """
        if not url:
            return cls.sqlite(Path(home_root) / "history.sqlite3")
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme in ("postgresql", "postgres"):
            return cls.postgres(url)
        if scheme == "sqlite" and url[len("sqlite://"):].startswith("/"):
            return cls.sqlite(Path(url[len("sqlite://"):]))
        raise InputError("ENGINE_HISTORY_URL must be postgresql://… or sqlite:///PATH", hint="unset it to use $ENGINE_HOME/history.sqlite3")

    # -- the shared part: one connection helper, one migration, one insert, one select ---------------

    def keep_connections(self) -> "HistoryStore":
        """Keep one open connection per thread instead of one per call: for a long-running reader (the portal), where
        connecting (PostgreSQL: a TCP connection and authentication) would cost more than its queries.  A connection
        that fails is closed and the next call opens another."""
        self._kept = threading.local()
        return self

    @contextmanager
    def _conn(self) -> Iterator[object]:
        kept = getattr(self._kept, "conn", None) if self._kept is not None else None
        conn = kept or self._connect()
        failed = False
        try:
            if not self._migrated:
                self._migrate(conn)
                self._migrated = True
            yield conn
        except BaseException:
            failed = True
            raise
        finally:
            if self._kept is None or failed:
                conn.close()
                if self._kept is not None:
                    self._kept.conn = None
            else:
                self._kept.conn = conn

    def _execute(self, conn, text: str, params: tuple = ()):
        cur = conn.cursor()
        cur.execute(self.dialect.sql(text), params)
        return cur

    def _version(self, conn) -> int:
        row = self._execute(conn, "SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def _migrate(self, conn) -> None:
        try:  # the common case, without taking a write lock
            if self._version(conn) >= SCHEMA_VERSION:
                return
        except Exception:  # noqa: BLE001 - no schema_version table yet (PostgreSQL: the failed statement is not in a transaction)
            pass
        for statement in self.dialect.begin:
            self._execute(conn, statement)
        try:
            self._execute(conn, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            current = self._version(conn)
            for version, statements in MIGRATIONS:
                if version > current:
                    for statement in statements:
                        self._execute(conn, statement)
                    self._execute(conn, "INSERT INTO schema_version (version) VALUES (?)", (version,))
            self._execute(conn, "COMMIT")
        except BaseException:
            self._execute(conn, "ROLLBACK")
            raise

    def insert(self, row: dict, snapshot: dict | None = None) -> int:
        """One run, the stack's latest-run pointers it moves and its snapshot (a successful deploy's), in one
        transaction.  Returns the run's id."""
        with self._conn() as conn:
            self._execute(conn, self.dialect.write_begin)
            try:
                run_id = self._execute(conn, INSERT, tuple(row.get(c) for c in COLUMNS)).fetchone()[0]
                for kind in latest_kinds(row):
                    self._execute(conn, UPSERT_LATEST, (row["customer"], row["environment"], kind, run_id, row["operation"], row["status"],
                                                        row["finished_at"]))
                if snapshot is not None:
                    self._execute(conn, INSERT_SNAPSHOT, (run_id, row["customer"], row["environment"], row["tool"],
                                                          (snapshot.get("tool") or {}).get("version"), snapshot_revision(snapshot),
                                                          snapshot["inputs"]["customer_file"]["validated_sha256"],
                                                          json.dumps(snapshot, sort_keys=True, default=str)))
                self._execute(conn, "COMMIT")
            except BaseException:
                self._execute(conn, "ROLLBACK")
                raise
        return int(run_id)

    def snapshots(self, customer: str, environment: str, limit: int = 50) -> list[dict]:
        """A stack's snapshots, newest first: ``{run_id, finished_at, operation, sha, actor, rollback_of, revision,
        tool, tool_version, snapshot}`` (``snapshot`` parsed)."""
        rows = self.select("SELECT s.run_id, r.finished_at, r.operation, r.sha, r.actor, r.rollback_of, s.revision, s.tool, "
                           "s.tool_version, s.snapshot FROM snapshots s JOIN runs r ON r.id = s.run_id "
                           "WHERE s.customer = ? AND s.environment = ? ORDER BY s.run_id DESC LIMIT ?", (customer, environment, int(limit)))
        for row in rows:
            row["run_id"] = int(row["run_id"])
            row["snapshot"] = json.loads(row["snapshot"])
        return rows

    def latest_deploy(self, customer: str, environment: str) -> dict | None:
        """The stack's last deployment that ran (up, destroy, remediate or rollback; succeeded or failed), or None."""
        rows = self.select(SELECT + " WHERE id = (SELECT run_id FROM latest_runs WHERE customer = ? AND environment = ? AND kind = 'deploy')",
                           (customer, environment))
        return to_public(rows[0]) if rows else None

    def rebuild_latest(self) -> None:
        """Recompute every stack's latest-run pointers from the runs (after rows were written without ``insert``)."""
        with self._conn() as conn:
            self._execute(conn, self.dialect.write_begin)
            try:
                self._execute(conn, "DELETE FROM latest_runs")
                for statement in LATEST_BACKFILL:
                    self._execute(conn, statement)
                self._execute(conn, "COMMIT")
            except BaseException:
                self._execute(conn, "ROLLBACK")
                raise

    def select(self, text: str, params: tuple = ()) -> list[dict]:
        """Rows of a read written with ``?`` placeholders (both backends), as dicts; nothing when no store exists yet."""
        if not self._exists():
            return []
        with self._conn() as conn:
            cur = self._execute(conn, text, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r)) for r in cur.fetchall()]

    def execute(self, text: str, params: tuple = ()) -> int:
        """One write written with ``?`` placeholders; the number of rows it changed."""
        with self._conn() as conn:
            return self._execute(conn, text, params).rowcount

    def query(self, customer: str | None = None, environment: str | None = None, limit: int = 20) -> list[dict]:
        """Newest first."""
        if not self._exists():
            return []
        conditions, params = [], []
        for column, value in (("customer", customer), ("environment", environment)):
            if value is not None:
                conditions.append(f"{column} = ?")
                params.append(value)
        text = SELECT + (" WHERE " + " AND ".join(conditions) if conditions else "") + " ORDER BY started_at DESC, id DESC LIMIT ?"
        with self._conn() as conn:
            cur = self._execute(conn, text, (*params, int(limit)))
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, r)) for r in cur.fetchall()]
        return [to_public(r) for r in rows]


# -- ENGINE_HISTORY_URL: checked before use, and its passwords never printed --------------------------

URL_HINT = ("expected postgresql://USER:PASSWORD@HOST:PORT/DATABASE; percent-encode special characters in the "
            "password (% is %25, @ is %40, / is %2F, : is %3A)")
_PASSWORD_PARAM = re.compile(r"(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&'\"]*)")
_USERINFO = re.compile(r"(://[^:/?#@\s]*:)[^@\s]*@")


def url_secrets(url: str) -> tuple[str, ...]:
    """Every form of every password in a database URL: the userinfo password and ``password=`` parameters,
    as written and percent-decoded.  Read by hand, so a URL no parser accepts still gives them up."""
    found: set[str] = set()
    rest = url.split("://", 1)[1] if "://" in url else url
    # Two readings of where the userinfo ends (a parser's, and up to the last '@' for a password with an
    # unencoded '/' or '?'): redacting a little too much is harmless, too little is a leak.
    for authority in (re.split(r"[/?#]", rest, maxsplit=1)[0], rest):
        userinfo = authority.rsplit("@", 1)[0] if "@" in authority else ""
        if ":" in userinfo:
            found.add(userinfo.split(":", 1)[1])
    for match in _PASSWORD_PARAM.finditer(url):
        found.add(match.group(2).strip("'"))
    try:
        from psycopg.conninfo import conninfo_to_dict

        found.add(str(conninfo_to_dict(url).get("password") or ""))
    except Exception:  # noqa: BLE001 - unparseable: the hand-read forms above are all there is
        pass
    found |= {unquote(s) for s in found}
    return tuple(sorted((s for s in found if s), key=len, reverse=True))


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with the given passwords, any ``password=…`` parameter and any URL userinfo password replaced by ``***``."""
    for secret in secrets:
        text = text.replace(secret, "***")
    text = _PASSWORD_PARAM.sub(lambda m: m.group(1) + "***", text)
    return _USERINFO.sub(lambda m: m.group(1) + "***@", text)


def _check_postgres_url(url: str) -> str:
    """The URL as shown to people (scheme, host, port, database; no user, no password), or ``InputError``.

    libpq's own parser decides (it is what connecting reads, multi-host URLs included); the port is
    checked here too, so a typo is a configuration error now instead of a failed write on every run.
    """
    secrets = url_secrets(url)

    def bad(reason: str) -> InputError:
        return InputError(f"ENGINE_HISTORY_URL is not a valid PostgreSQL URL: {first_line(redact(reason, secrets)) or 'unreadable'}",
                          hint=URL_HINT)

    try:
        from psycopg.conninfo import conninfo_to_dict

        info = {k: str(v) for k, v in conninfo_to_dict(url).items()}
    except ImportError:  # psycopg missing: the plain URL parser checks the shape, connecting will say what is missing
        try:
            parts = urlsplit(url)
            info = {"host": parts.hostname or "", "port": str(parts.port or ""), "dbname": parts.path.lstrip("/")}
        except ValueError as exc:
            raise bad(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - psycopg.ProgrammingError
        # libpq quotes the part it could not read; in a malformed URL that can be a piece of the password
        # (`bob:s3/cr?et@…` is read as a query "et@…"), so nothing longer than a character is repeated.
        quoted = re.sub(r'"([^"]*)"', lambda m: m.group(0) if len(m.group(1)) <= 1 else '"(not shown)"', str(exc))
        raise bad(quoted or type(exc).__name__) from None
    port = info.get("port", "")
    if port and not all(p.isdigit() and 0 < int(p) < 65536 for p in port.split(",")):
        raise bad(f"the port {port!r} is not a number from 1 to 65535")
    scheme = url.split("://", 1)[0].lower()
    return redact(f"{scheme}://{info.get('host', '')}{f':{port}' if port else ''}/{info.get('dbname', '')}", secrets)


def to_public(row: dict) -> dict:
    """A stored row as the JSON shape of ``engine history``: counts under ``changes`` like a run result."""
    out = {k: v for k, v in row.items() if not k.endswith("_count")}
    out["changes"] = {k: int(row[f"{k}_count"] or 0) for k in ("create", "update", "delete", "replace", "same")}
    out["duration_s"] = round(float(row["duration_s"] or 0), 2)
    if "details" in out:
        out["details"] = read_details(out["details"])
    return out


def snapshot_revision(snapshot: dict) -> str:
    """How a snapshot's program/module revision is shown: ``git <12 hex>`` or ``sha256:<12 hex>``."""
    revision = snapshot.get("revision") or {}
    if revision.get("commit") and not revision.get("dirty"):
        return f"git {revision['commit'][:12]}"
    return str(revision.get("digest", "?"))[:19]


def read_details(text: str | None) -> dict:
    """A row's ``details`` column: ``{"resources": [{"name", "type", "action"}], "more": N}`` or ``{"findings": …}``."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def run_details(result: StackResult) -> str | None:
    """What a run changed, or found drifted, by name: each resource's name, type, action and changed property
    names (never a value), at most ``DETAILS_MAX_ITEMS`` of them."""
    changed = [r for r in result.resources if r.action not in ("same", "read")]
    if not changed:
        return None
    items = [{"name": r.urn_name, "type": r.type, "action": r.action,
              **({"properties": sorted({d.get("path", "") for d in r.diffs} | set(r.properties))[:20]} if r.diffs or r.properties else {})}
             for r in changed[:DETAILS_MAX_ITEMS]]
    return json.dumps({"resources": items, "more": max(0, len(changed) - DETAILS_MAX_ITEMS)}, separators=(",", ":"))


def first_line(text: str | None) -> str | None:
    if not text:
        return None
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:ERROR_MAX] or None


@dataclass
class Recorder:
    """Turns finished ``StackResult``s into rows; never raises (a failure is a warning on stderr)."""

    store: HistoryStore | None
    actor: str = field(default_factory=actor)
    host: str = field(default_factory=socket.gethostname)
    run_url: str | None = field(default_factory=run_url)
    sha: str | None = None
    committed_at: str | None = None  # when ``sha`` was committed (UTC ISO), for lead time; set with ``sha``
    warn: Callable[[str], None] = lambda message: print(message, file=sys.stderr, flush=True)
    skip_operations: frozenset[str] = frozenset({"list"})  # metadata reads, not operations

    def row(self, result: StackResult, status: str | None = None, finished: dt.datetime | None = None) -> dict:
        finished = finished or dt.datetime.now(dt.timezone.utc)
        started = finished - dt.timedelta(seconds=max(0.0, float(result.duration_s or 0)))
        c = result.changes
        return {"started_at": utc_iso(started), "finished_at": utc_iso(finished), "actor": self.actor, "host": self.host,
                "customer": result.customer, "environment": result.environment, "tool": result.tool,
                "operation": result.operation, "status": status or result.status,
                "create_count": c.create, "update_count": c.update, "delete_count": c.delete, "replace_count": c.replace,
                "same_count": c.same, "duration_s": round(float(result.duration_s or 0), 3),
                "error": first_line(result.error), "run_url": self.run_url, "sha": self.sha,
                "committed_at": self.committed_at if self.sha else None, "details": run_details(result),
                "rollback_of": result.rollback.source_run if result.rollback is not None else None}

    def stack_done(self, result: StackResult, status: str | None = None) -> None:
        if self.store is None or result.operation in self.skip_operations:
            return
        try:
            snapshot = result.snapshot if str(status or result.status) == "succeeded" else None
            row = self.row(result, status)
            if snapshot is not None and result.rollback is None and self.sha:
                snapshot = {**snapshot, "sha": self.sha}  # the customer's commit this deploy applied
            elif snapshot is not None and result.rollback is not None:
                snapshot = {**snapshot, "sha": result.rollback.source_sha}  # a rollback applies its source's commit again
            if result.rollback is not None:
                row["sha"], row["committed_at"] = result.rollback.source_sha, None  # not a change delivered: no lead time
            result.run_id = self.store.insert(row, snapshot)
        except Exception as exc:  # noqa: BLE001 - best effort by design
            self.warn(f"warning: run history not recorded for {result.customer}/{result.environment} in {self.store.where} "
                      f"(the run's result is unaffected): {self.store.describe_error(exc)}")

    def __call__(self, event) -> None:
        """A subscriber of the engine's event stream: records each finished stack."""
        from engine.stream import StackDone

        if isinstance(event, StackDone):
            self.stack_done(event.result)

    def compliance_done(self, repo) -> None:
        """One repository of ``engine compliance`` (``engine.compliance.RepoCompliance``): a row for its customer,
        environment ``*``, status its state (compliant, drifted, remediated, error), the findings in ``details``."""
        if self.store is None:
            return
        now = utc_iso(dt.datetime.now(dt.timezone.utc))
        findings = [{"property": f.property, "actual": f.actual, "expected": f.expected, "reason": f.reason}
                    for f in repo.findings[:DETAILS_MAX_ITEMS]]
        row = {"started_at": now, "finished_at": now, "actor": self.actor, "host": self.host, "customer": repo.customer,
               "environment": "*", "tool": "github", "operation": "compliance", "status": repo.state, "create_count": 0, "update_count": 0, "delete_count": 0,
               "replace_count": 0, "same_count": 0, "duration_s": 0.0, "error": first_line(repo.error),
               "run_url": self.run_url, "details": json.dumps({"repository": repo.repository, "findings": findings}, default=str)}
        try:
            self.store.insert(row)
        except Exception as exc:  # noqa: BLE001 - best effort by design
            self.warn(f"warning: compliance result not recorded for {repo.customer} in {self.store.where}: {self.store.describe_error(exc)}")

    def drift_done(self, stack) -> None:
        """One ``engine drift`` stack (``engine.drift.StackDrift``): status is its state (in-sync, drifted, …)."""
        self.stack_done(stack.result, status=stack.state)
        if stack.remediation is not None:
            self.stack_done(stack.remediation)


def recorder_from_env(home_root: Path, warn: Callable[[str], None] | None = None) -> Recorder:
    """The recorder for this process; an invalid ``ENGINE_HISTORY_URL`` disables recording with a warning.

    Recording is best effort: whatever is wrong with the URL, the command itself still runs.
    """
    kwargs = {"warn": warn} if warn else {}
    url = os.environ.get("ENGINE_HISTORY_URL")
    try:
        store = HistoryStore.from_url(url, home_root)
    except Exception as exc:  # noqa: BLE001 - an InputError, or anything else the URL provokes: never fail the command
        recorder = Recorder(None, **kwargs)
        message = exc.message if isinstance(exc, InputError) else f"{type(exc).__name__}: {first_line(redact(str(exc), url_secrets(url or '')))}"
        recorder.warn(f"warning: run history disabled (the run's result is unaffected): {message}")
        return recorder
    return Recorder(store, **kwargs)


def query(home_root: Path, customer: str | None, environment: str | None, limit: int) -> tuple[str, list[dict]]:
    """For ``engine history``: (where, rows); a store that cannot be read is an ``OperationError``."""
    store = HistoryStore.from_url(os.environ.get("ENGINE_HISTORY_URL"), home_root)  # a bad URL: InputError, exit 2
    try:
        return store.where, store.query(customer, environment, limit)
    except Exception as exc:  # noqa: BLE001
        raise OperationError(f"cannot read the run history in {store.where}: {store.describe_error(exc)}",
                             hint="check ENGINE_HISTORY_URL (or $ENGINE_HOME/history.sqlite3)") from None
