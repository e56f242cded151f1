"""One writer per stack on this machine: an engine-level lock around a whole operation.

The tools' own locks cover one command each (``tofu plan`` and ``tofu apply`` lock
separately); the engine's lock covers plan *and* apply, so a second run cannot slip
between them.  Contention is a value with a reason (who holds it, since when), never
a stack trace.  The lock is an ``flock`` on a file: the kernel releases it when the
holder dies, so a crash never leaves a stale engine lock behind — but the holder's
details stay in the file, and with them the process groups of the tools it was running,
so the next holder can stop what a crashed run left behind before touching state.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine import process


@dataclass(frozen=True)
class Holder:
    pid: int
    user: str
    host: str
    operation: str
    since: str
    children: tuple[tuple[int, int], ...] = ()  # (session id of a tool it started, that tool's start time in clock ticks)

    def describe(self) -> str:
        return f"{self.user}@{self.host} (pid {self.pid}, {self.operation}) since {self.since}"


@dataclass(frozen=True)
class Held:
    """The lock is held by another process (``holder`` is None when it has not written its details yet)."""

    customer: str
    environment: str
    holder: Holder | None

    def describe(self) -> str:
        who = self.holder.describe() if self.holder else "another engine process"
        return f"stack {self.customer}/{self.environment} is locked by {who}"

    @property
    def hint(self) -> str:
        return "wait for it to finish, or pass --lock-timeout SECONDS to wait for it"


@dataclass
class Lease:
    """The lock, held.  ``previous`` is what the last holder left in the file: set only when it
    did not release the lock cleanly (it crashed)."""

    path: Path
    fd: int
    info: dict
    previous: Holder | None = None
    _unwatch: object = field(default=None, repr=False)

    def _write(self) -> None:
        data = {**self.info, "children": [list(c) for c in _children_with_start()]}
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, json.dumps(data).encode(), 0)

    def release(self) -> None:
        if self._unwatch:
            self._unwatch()  # type: ignore[operator]
        try:
            os.ftruncate(self.fd, 0)  # a clean release leaves no details: nothing to recover
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            os.close(self.fd)

    def __enter__(self) -> "Lease":
        return self

    def __exit__(self, *_exc) -> None:
        self.release()


def _children_with_start() -> list[tuple[int, int]]:
    out = []
    for pgid in process.children():
        start = process.start_ticks(pgid)
        if start is not None:
            out.append((pgid, start))
    return out


def _read_holder(path: Path) -> Holder | None:
    try:
        data = json.loads(path.read_text() or "{}")
        children = tuple((int(p), int(s)) for p, s in data.get("children") or [])
        return Holder(int(data["pid"]), str(data["user"]), str(data["host"]), str(data["operation"]), str(data["since"]), children)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def acquire(lock_dir: Path, customer: str, environment: str, operation: str, timeout: float = 0.0) -> Lease | Held:
    """Take the engine lock of ``customer/environment``: a ``Lease`` (use it as a context manager),
    or ``Held`` naming the holder after waiting up to ``timeout`` seconds."""
    path = lock_dir / customer / f"{environment}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + max(timeout, 0.0)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = _read_holder(path)
                for _ in range(10):  # the holder writes its details just after taking the lock
                    if holder is not None:
                        break
                    time.sleep(0.1)
                    holder = _read_holder(path)
                os.close(fd)
                return Held(customer, environment, holder)
            time.sleep(0.2)
    previous = _read_holder(path)
    info = {"pid": os.getpid(), "user": getpass.getuser(), "host": socket.gethostname(), "operation": operation,
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    lease = Lease(path, fd, info, previous)
    lease._write()
    lease._unwatch = process.watch(lease._write)  # the file names the tools this run starts, while they run
    return lease
