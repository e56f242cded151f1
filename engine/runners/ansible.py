"""The Ansible step: the only module that starts Ansible (through ansible-runner).

Runs the provider's ``ansible/site.yml`` after a successful deploy of a customer that
asked for it, with the stack's non-secret outputs as variables.  A failure is reported
like any other step failure: it fails the environment's result, with the failing task
and host named.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from engine import process
from engine.home import EngineHome
from engine.planning import StackTarget
from engine.results import SECRET_MASK, StackResult, Status, StepOutcome
from engine.stream import EventStream, Notice, ResourceStep

PLAYBOOKS = Path(__file__).resolve().parent.parent.parent / "ansible"


class AnsibleStep:
    """Configure what a deploy created.  ``run`` mutates and returns the deploy's ``StackResult``."""

    name = "ansible"

    def __init__(self, home: EngineHome, stream: EventStream | None = None, playbook_dir: Path = PLAYBOOKS):
        self.home = home
        self.stream = stream or EventStream()
        self.playbook_dir = playbook_dir

    def _inventory(self, target: StackTarget, outputs: dict) -> dict:
        if target.program == "local":
            host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
            return {"all": {"children": {"app": {"hosts": {"localhost": host}}}}}
        # Cloud targets: the instances' private addresses (reached through the provider's bastion/SSM setup).
        hosts = {ip: {} for ip in outputs.get("instance_ips") or []}
        return {"all": {"children": {"app": {"hosts": hosts}}}}

    def run(self, target: StackTarget, result: StackResult) -> StackResult:
        started = time.monotonic()
        outputs = {k: v for k, v in result.outputs.items() if v != SECRET_MASK}
        extravars = {
            "customer": target.customer,
            "environment_name": target.environment,  # `environment` is a reserved play keyword in Ansible
            "project_name": target.config.get("project_name"),
            "target": target.program,
            "local_root": target.config.get("local_root", ""),
            "outputs": outputs,
        }
        private = self.home.work_dir(target.customer, target.environment) / "ansible"
        private.mkdir(parents=True, exist_ok=True)
        job = {"private_data_dir": str(private), "project_dir": str(self.playbook_dir), "playbook": "site.yml",
               "inventory": self._inventory(target, outputs), "extravars": extravars}
        self.stream.publish(Notice(target, "ansible started"))
        step: dict = {}

        def on_line(line: str) -> None:
            nonlocal step
            try:
                message = json.loads(line)
            except ValueError:
                return
            if "task" in message:
                self.stream.publish(ResourceStep(target, "task", message["task"], "ansible", status="changed" if message.get("changed") else "ok"))
            elif "result" in message:
                step = message["result"]

        # A fresh process runs ansible-runner: it forks (pexpect), and forking this process — which
        # holds Pulumi's gRPC threads — breaks the child ("epoll_wait error: Bad file descriptor").
        proc = process.run([sys.executable, "-m", "engine.runners.ansible"], input=json.dumps(job), cwd=self.playbook_dir,
                           env=_child_env(), on_stdout=on_line)
        if not step:
            step = {"status": "failed", "changed": 0, "tasks": 0, "artifacts": str(private / "artifacts"),
                    "error": (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1][:300]}
        error = step.pop("error", None)
        result.ansible = StepOutcome(**{**step, "duration_s": round(time.monotonic() - started, 2)})
        if result.ansible.status != "succeeded":
            result.status = Status.FAILED
            result.error = "ansible: " + (error or "failed")
        self.stream.publish(Notice(target, f"ansible {result.ansible.status} ({result.ansible.changed} changed)"))
        return result


def _child_env() -> dict[str, str]:
    """Only what Ansible needs: ansible-runner records its whole environment in the artifacts,
    so passphrases, tokens and cloud credentials of the engine's process must not be in it."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "SSL_CERT_FILE", "SSL_CERT_DIR")
    engine_root = Path(__file__).resolve().parent.parent.parent  # where `engine` is importable from (checkout or site-packages)
    return {k: v for k, v in process.tool_env().items() if k in keep} | {"PYTHONPATH": str(engine_root)}


def _child() -> int:
    """Runs in its own process: one ansible-runner job from stdin, JSON lines on stdout."""
    import ansible_runner

    job = json.loads(sys.stdin.read())
    tasks: list[str] = []

    def on_event(event: dict) -> bool:
        data = event.get("event_data") or {}
        if event.get("event") in ("runner_on_ok", "runner_on_failed") and data.get("task"):
            tasks.append(data["task"])
            print(json.dumps({"task": data["task"], "changed": bool(data.get("res", {}).get("changed"))}), flush=True)
        return True

    bin_dir = str(Path(sys.executable).parent)
    run = ansible_runner.run(
        **job,
        envvars={"PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]), "ANSIBLE_NOCOLOR": "1",
                 "ANSIBLE_RETRY_FILES_ENABLED": "0", "ANSIBLE_LOCALHOST_WARNING": "0"},
        quiet=True, event_handler=on_event, rotate_artifacts=5,
    )
    stats = run.stats or {}
    result = {"status": "succeeded" if run.rc == 0 else "failed", "changed": sum((stats.get("changed") or {}).values()),
              "tasks": len(tasks), "artifacts": str(Path(run.config.artifact_dir))}
    if run.rc != 0:
        result["error"] = _failure(run)
    print(json.dumps({"result": result}), flush=True)
    return 0


def _failure(run) -> str:
    for event in run.events:
        if event.get("event") in ("runner_on_failed", "runner_on_unreachable"):
            data = event.get("event_data") or {}
            res = data.get("res") or {}
            msg = res.get("msg") or res.get("stderr") or "failed"
            return f"task '{data.get('task', '?')}' failed on {data.get('host', '?')}: {str(msg).splitlines()[0][:300]}"
    stdout = ""
    try:
        stdout = " ".join(run.stdout.read().strip().splitlines()[-3:])[:300]
    except (AttributeError, OSError, ValueError):
        pass
    return f"ansible-playbook exited with {run.rc} (status {run.status})" + (f": {stdout}" if stdout else "")


if __name__ == "__main__":
    sys.exit(_child())
