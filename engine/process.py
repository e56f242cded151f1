"""The one place the engine starts a child process: tools, Go builds, Ansible's child, fan-out workers.

Every child gets

- an explicit environment: ``tool_env()`` for tools (only what a tool and its providers need:
  no engine secrets, no GitHub tokens, no ``TF_LOG``/``TF_CLI_ARGS``; cloud credentials pass
  because providers read them), or ``engine_env()`` for the engine's own workers;
- a timeout, after which its whole process group is stopped;
- its own session, recorded while it runs (``children()``), so that a later run can find and
  stop what a crashed engine left behind before touching state.  A session, not a process
  group: pulumi starts its provider plugins in process groups of their own, but they stay in
  the tool's session.

Ctrl-C or SIGTERM on the engine is passed on to the running tools (SIGINT, so pulumi and tofu
can end their update cleanly), then whatever is left of their sessions is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from engine.errors import ToolchainError

# What a tool may inherit from the engine's environment.  Everything else is dropped.
_PASS = (
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "TERM",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
    # Go builds (the toolchain's route on machines that reach only module proxies)
    "GOPATH", "GOCACHE", "GOMODCACHE", "GOPROXY", "GOSUMDB", "GONOSUMDB", "GOPRIVATE", "GONOPROXY", "GOFLAGS",
    "GOTOOLCHAIN", "GOROOT", "XDG_CACHE_HOME",
    # the local target's providers (Pulumi's dynamic ones, the OpenTofu enginelocal one): simulated API latency
    "ENGINE_LOCAL_LATENCY_S",
)
# Cloud providers read their credentials from these; the engine never prints them.
_PASS_PREFIXES = ("AWS_", "AZURE_", "ARM_", "GOOGLE_", "CLOUDSDK_")

DEFAULT_TIMEOUT = float(os.environ.get("ENGINE_TOOL_TIMEOUT", 2 * 3600))
_GRACE_S = 20.0  # after SIGINT/SIGTERM, before SIGKILL


def tool_env(extra: Mapping[str, str] | None = None, *, path_first: Sequence[Path | str] = ()) -> dict[str, str]:
    """The scrubbed environment every tool starts with, plus ``extra`` (which wins)."""
    env = {k: v for k, v in os.environ.items() if k in _PASS or k.startswith(_PASS_PREFIXES)}
    if path_first:
        env["PATH"] = os.pathsep.join([*(str(p) for p in path_first), env.get("PATH", os.defpath)])
    env.update(extra or {})
    return env


def engine_env(extra: Mapping[str, str] | None = None, drop: Sequence[str] = ()) -> dict[str, str]:
    """The engine's own environment for an engine worker process (it needs the engine's settings)."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(extra or {})
    return env


@dataclass
class Completed:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool = False


# Sessions of the children running now (a crashed engine's lock file records them).
_running: set[int] = set()
_running_lock = threading.Lock()


_watchers: list[Callable[[], None]] = []


def children() -> list[int]:
    """Session ids of the children this process is running now (each child leads its own session)."""
    with _running_lock:
        return sorted(_running)


def watch(callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback`` whenever a child starts or ends (the stack lock records them); returns an unwatch function."""
    _watchers.append(callback)
    return lambda: _watchers.remove(callback) if callback in _watchers else None


def _changed() -> None:
    for callback in list(_watchers):
        try:
            callback()
        except OSError:
            pass


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot (tells a process from a later one that reused its id)."""
    fields = _stat(pid)
    try:
        return int(fields[19]) if fields else None
    except (IndexError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs.  A zombie (killed, not yet reaped — common when the parent died too) is dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    fields = _stat(pid)
    return fields is None or fields[0] != "Z"


def stop_leftovers(sessions: Sequence[tuple[int, int]], grace: float = _GRACE_S) -> list[str]:
    """Stop what a crashed engine's tools left running (the tool mid-operation, providers mid-create).

    ``sessions`` are the (session id, leader start ticks) the crashed run recorded.  Only processes
    started no earlier than that leader are touched — never a later process that happens to reuse
    the id.  Returns a description of each process stopped.
    """
    stopped: list[str] = []
    for sid, leader_start in sessions:
        stopped += stop_session(sid, signal.SIGTERM, grace, since_ticks=leader_start, leader_only=False)
    return stopped


def run(args: Sequence[str | os.PathLike], *, env: Mapping[str, str], cwd: Path | str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT, input: str | None = None,
        on_stdout: Callable[[str], None] | None = None, on_stderr: Callable[[str], None] | None = None,
        own_group: bool = True) -> Completed:
    """Run a child to completion and return its output.

    ``on_stdout``/``on_stderr`` receive each line as it arrives (live progress); the full text
    is returned either way.  A child that outlives ``timeout`` has its process group stopped and
    comes back with ``timed_out=True`` and a non-zero code.  Raises ``ToolchainError`` only when
    the program cannot be started at all.  ``own_group=False`` keeps the child in the engine's
    session and process group (fan-out workers: a terminal's Ctrl-C reaches them directly, and
    they stop their own tools).
    """
    argv = [os.fspath(a) for a in args]
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env=dict(env), stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8", errors="replace",
                                start_new_session=own_group)
    except OSError as exc:
        raise ToolchainError(f"cannot start {Path(argv[0]).name}: {exc.strerror or exc}") from None
    pgid = proc.pid if own_group else None
    if pgid is not None:
        with _running_lock:
            _running.add(pgid)
        _changed()
    out: list[str] = []
    err: list[str] = []

    def pump(stream, sink: list[str], callback) -> None:
        for line in iter(stream.readline, ""):
            sink.append(line)
            if callback is not None:
                try:
                    callback(line.rstrip("\n"))
                except Exception:  # noqa: BLE001 - a broken progress consumer must not hang the child on a full pipe
                    callback = None
        stream.close()

    threads = [threading.Thread(target=pump, args=(proc.stdout, out, on_stdout), daemon=True),
               threading.Thread(target=pump, args=(proc.stderr, err, on_stderr), daemon=True)]
    for t in threads:
        t.start()
    timed_out = False
    try:
        if input is not None:
            assert proc.stdin is not None
            try:
                proc.stdin.write(input)
                proc.stdin.close()
            except BrokenPipeError:
                pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            if pgid is not None:
                stop_session(pgid, signal.SIGTERM)
            else:
                proc.terminate()
            proc.wait()
    except BaseException:
        # Ctrl-C / SIGTERM of the engine: let the tool end its operation cleanly, then make sure it is gone.
        if pgid is not None:
            stop_session(pgid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        proc.wait()
        raise
    finally:
        for t in threads:
            t.join(timeout=5)
        if pgid is not None:
            with _running_lock:
                _running.discard(pgid)
            _changed()
    code = proc.returncode if not timed_out else (proc.returncode or 124)
    stderr = "".join(err)
    if timed_out:
        stderr += f"\n{Path(argv[0]).name} did not finish within {int(timeout or 0)}s and was stopped"
    return Completed(argv, code, "".join(out), stderr, timed_out)


def _stat(pid: int | str) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def session_members(sid: int, since_ticks: int = 0) -> list[tuple[int, str]]:
    """Live processes (pid, command line) in session ``sid`` that started at or after ``since_ticks`` — zombies excluded."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(entry.name)
        try:
            if not fields or fields[0] == "Z" or int(fields[3]) != sid or int(fields[19]) < since_ticks:
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, IndexError, ValueError):
            continue
        members.append((int(entry.name), cmdline))
    return members


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def stop_session(sid: int, first: int = signal.SIGTERM, grace: float = _GRACE_S, since_ticks: int = 0, leader_only: bool = True) -> list[str]:
    """Send ``first`` to the session's leader group (the tool, which stops its own plugins) — or to
    every member with ``leader_only=False`` — wait up to ``grace`` seconds, then SIGKILL whatever is
    left of the session.  Returns what was running."""
    members = session_members(sid, since_ticks)
    if not members:
        return []
    try:
        if not leader_only:
            raise ProcessLookupError
        os.killpg(sid, first)
    except (ProcessLookupError, PermissionError):
        _signal_all([pid for pid, _ in members], first)  # orphans (or no leader to pass it on): tell each directly
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and session_members(sid, since_ticks):
        time.sleep(0.1)
    left = session_members(sid, since_ticks)
    if left:
        _signal_all([pid for pid, _ in left], signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and session_members(sid, since_ticks):
            time.sleep(0.05)
    return [f"pid {pid} ({cmd[:80]})" for pid, cmd in members]


def install_signal_handlers() -> None:
    """SIGTERM of the engine becomes a KeyboardInterrupt, so running children are stopped cleanly too."""
    def on_term(_signum, _frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_term)
