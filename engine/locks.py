"""One writer per stack on this machine: an engine-level lock around a whole operation.

The tools' own locks cover one command each (``tofu plan`` and ``tofu apply`` lock
separately); the engine's lock covers plan *and* apply, so a second run cannot slip
between them.  Contention is a value with a reason (who holds it, since when), never
a stack trace.  The lock is an ``flock`` on a file: the kernel releases it when the
holder dies, so a crash never leaves a stale engine lock behind.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from engine.errors import StackLockedError


@dataclass(frozen=True)
class Holder:
    pid: int
    user: str
    host: str
    operation: str
    since: str

    def describe(self) -> str:
        return f"{self.user}@{self.host} (pid {self.pid}, {self.operation}) since {self.since}"


def _read_holder(path: Path) -> Holder | None:
    try:
        data = json.loads(path.read_text() or "{}")
        return Holder(int(data["pid"]), str(data["user"]), str(data["host"]), str(data["operation"]), str(data["since"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


@contextmanager
def stack_lock(lock_dir: Path, customer: str, environment: str, operation: str, timeout: float = 0.0) -> Iterator[None]:
    """Hold the engine lock of ``customer/environment`` for the duration of the block.

    Waits up to ``timeout`` seconds; then raises ``StackLockedError`` naming the holder.
    """
    path = lock_dir / customer / f"{environment}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + max(timeout, 0.0)
    try:
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
                    who = holder.describe() if holder else "another engine process"
                    raise StackLockedError(
                        f"stack {customer}/{environment} is locked by {who}",
                        hint="wait for it to finish, or pass --lock-timeout SECONDS to wait for it",
                    ) from None
                time.sleep(0.2)
        info = {"pid": os.getpid(), "user": getpass.getuser(), "host": socket.gethostname(), "operation": operation,
                "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
