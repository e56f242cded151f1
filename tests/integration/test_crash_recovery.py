"""kill -9 of the engine in the middle of `up`, at several points: the next run stops what the
crashed run left running (the tool and its provider plugins live on in their own sessions),
resolves locks and pending operations, and ends clean."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ENGINE, SMALL_CONFIG, EngineCLI, make_catalog, tenant_record

TF = 'properties:\n  infrastructure_tools: [terraform]\n  terraform_version: "1.6"\n'


def tool_running(lock: Path, proc: subprocess.Popen, timeout: float = 120) -> bool:
    """Wait until the engine holding ``lock`` is running a tool (its lock file lists the tool's session).
    False when the engine finished first (a fast machine: the whole up fit before this kill point)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if json.loads(lock.read_text() or "{}").get("children"):
                return True
        except (OSError, ValueError):
            pass
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    raise AssertionError(f"no tool started under {lock} within {timeout}s")


def files(cli: EngineCLI, customer: str) -> list[str]:
    root = cli.home / "local-cloud" / customer / "staging"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.mark.parametrize("tool", ["pulumi", "terraform"])
def test_kill_minus_nine_during_up_then_the_next_run_ends_clean(tmp_path, tool):
    root = make_catalog(tmp_path / "c", {"crash": (tenant_record("crash", 30) + (TF if tool == "terraform" else ""), SMALL_CONFIG.format(name="crash-app"))})
    cli = EngineCLI(tmp_path / "home", root)
    env = {**cli.env(), "ENGINE_LOCAL_LATENCY_S": "1.0"}  # each resource takes a second, like a (fast) cloud API

    # reference: what a clean deploy leaves on disk
    reference = EngineCLI(tmp_path / "ref-home", root)
    reference("up", "crash", "--env", "staging", check=0)
    expected = files(reference, "crash")

    recovered_any, killed = False, 0
    for kill_after in (1.5, 2.5, 3.5, 4.5):
        proc = subprocess.Popen([*ENGINE, "up", "crash", "--env", "staging", "--quiet"], env=env, cwd=root,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        # Time from the tool's start, not the engine's (a loaded machine starts Python slowly), and kill only
        # while a tool is running: the stack lock names the tools the engine runs.
        lock = cli.home / "locks" / "crash" / "staging.lock"
        assert tool_running(lock, proc), "the engine ended before it started a tool"
        time.sleep(kill_after - 1.0)
        if tool_running(lock, proc):
            os.killpg(proc.pid, signal.SIGKILL)  # the engine, mid-flight; its tool runs on in a session of its own
            killed += 1
        proc.wait()

        run = cli("up", "crash", "--env", "staging", "--json")
        assert run.code == 0, f"after kill at {kill_after}s:\n{run.stdout}\n{run.stderr}"
        recovered = run.json()["environments"]["staging"]["details"].get("recovered") or []
        recovered_any |= any("the interrupted run" in note for note in recovered)
        preview = cli("preview", "crash", "--env", "staging", "--json", check=0).json()["environments"]["staging"]["changes"]
        assert (preview["create"], preview["update"], preview["delete"], preview["replace"]) == (0, 0, 0, 0), (kill_after, preview)
        assert files(cli, "crash") == expected  # nothing orphaned, nothing duplicated
        assert cli("drift", "crash", "--env", "staging").code == 0
        cli("destroy", "crash", "--yes", check=0)  # start the next round from nothing
        assert files(cli, "crash") == []
    assert killed >= 2  # most kill points hit a running tool
    if tool == "pulumi":
        # Pulumi's engine and plugins outlive the killed engine in sessions of their own: at least one kill left them
        # running, and the next run stopped them before touching state.  OpenTofu/Terraform die at their next write to
        # the dead engine's pipe, so whether one is still running when the next run starts is down to timing.
        assert recovered_any
