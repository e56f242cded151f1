"""What a crashed engine leaves running is stopped before the next run touches the stack (issue 9, item 10).

Real processes stand in for a tool and its provider plugin: a session leader with a child in a
process group of its own (as pulumi starts its plugins), recorded in the stack lock by a run
that then "crashed".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from engine import locks, process
from engine.home import EngineHome
from engine.planning import StackTarget
from engine.runners.base import exclusive
from engine.stream import EventStream, Notice

# A "tool" that starts a "plugin" in a process group of its own, then both wait forever.
TOOL = """
import os, subprocess, sys, time
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], process_group=0)
print("ready", flush=True)
time.sleep(300)
"""


def target() -> StackTarget:
    return StackTarget(customer="acme", environment="staging", tool="pulumi", program="local", project="acme", stack="staging",
                       backend_url="file:///unused", config={})


def test_a_crashed_runs_tool_and_plugins_are_stopped_before_the_next_run(tmp_path):
    tool = subprocess.Popen([sys.executable, "-c", TOOL], stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert tool.stdout.readline().strip() == "ready"
    session = tool.pid
    assert len(process.session_members(session)) == 2  # the tool and its plugin
    # the crashed engine: a dead pid, and the session of the tool it was running
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    lock = tmp_path / "home/locks/acme/staging.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(json.dumps({"pid": int(dead), "user": "ci", "host": "h", "operation": "up", "since": "2026-11-27T00:00:00Z",
                                "children": [[session, process.start_ticks(session)]]}))
    stream, notices, recovered = EventStream(), [], []
    stream.subscribe(lambda e: notices.append(e.text) if isinstance(e, Notice) else None)
    with exclusive(EngineHome(tmp_path / "home"), target(), "up", 0, stream, recovered):
        assert process.session_members(session) == []  # gone before the block runs
    tool.wait(timeout=5)
    assert len(recovered) == 1 and "stopped 2 process(es) the interrupted run" in recovered[0] and f"pid {dead}" in recovered[0]
    assert notices == recovered
    assert json.loads(lock.read_text() or "{}") == {}  # released cleanly: nothing for the next run to recover


def test_a_live_holders_processes_and_later_processes_are_never_touched(tmp_path):
    """A recorded session whose id now belongs to a process started later is left alone; so is a clean release."""
    newer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        time.sleep(0.05)
        lock = tmp_path / "home/locks/acme/staging.lock"
        lock.parent.mkdir(parents=True)
        started = process.start_ticks(newer.pid)
        lock.write_text(json.dumps({"pid": 1 << 22, "user": "ci", "host": "h", "operation": "up", "since": "x",
                                    "children": [[newer.pid, started + 10_000]]}))  # recorded leader "started later" than this one
        recovered: list[str] = []
        with exclusive(EngineHome(tmp_path / "home"), target(), "up", 0, EventStream(), recovered):
            pass
        assert recovered == [] and newer.poll() is None
    finally:
        newer.kill()
        newer.wait()


def test_the_lock_records_the_sessions_of_running_tools(tmp_path):
    lease = locks.acquire(tmp_path / "locks", "acme", "staging", "up")
    assert isinstance(lease, locks.Lease)
    with lease:
        seen: list[list] = []
        done = process.run([sys.executable, "-c", "import sys; sys.stdin.readline()"], env=process.tool_env(),
                           input="go\n", on_stdout=None)
        assert done.returncode == 0
        # while it ran, the lock file named its session (checked through a watcher, the same hook the lease uses)
        unwatch = process.watch(lambda: seen.append(json.loads((tmp_path / "locks/acme/staging.lock").read_text())["children"]))
        process.run([sys.executable, "-c", "pass"], env=process.tool_env())
        unwatch()
    assert seen and seen[0] and seen[0][0][0] > 0 and seen[-1] == []
    assert os.path.getsize(tmp_path / "locks/acme/staging.lock") == 0
