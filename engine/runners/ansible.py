"""The Ansible step: the only module that starts Ansible (through ansible-runner).

Runs the provider's ``ansible/site.yml`` after a successful deploy of a customer that
asked for it, with the stack's non-secret outputs as variables.  A failure is reported
like any other step failure: it fails the environment's result, with the failing task
and host named.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Callable

from engine.home import EngineHome
from engine.planning import StackTarget
from engine.results import SECRET_MASK, StackResult

PLAYBOOKS = Path(__file__).resolve().parent.parent.parent / "ansible"
Progress = Callable[[StackTarget, str], None]


class AnsibleStep:
    """Configure what a deploy created.  ``run`` mutates and returns the deploy's ``StackResult``."""

    name = "ansible"

    def __init__(self, home: EngineHome, progress: Progress = lambda _t, _m: None, playbook_dir: Path = PLAYBOOKS):
        self.home = home
        self.progress = progress
        self.playbook_dir = playbook_dir

    def _inventory(self, target: StackTarget, outputs: dict) -> dict:
        if target.program == "local":
            host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
            return {"all": {"children": {"app": {"hosts": {"localhost": host}}}}}
        # Cloud targets: the instances' private addresses (reached through the provider's bastion/SSM setup).
        hosts = {ip: {} for ip in outputs.get("instance_ips") or []}
        return {"all": {"children": {"app": {"hosts": hosts}}}}

    def run(self, target: StackTarget, result: StackResult) -> StackResult:
        import ansible_runner  # imported here: the Pulumi/Terraform paths never pay for it

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
        self.progress(target, "ansible started")
        tasks: list[str] = []

        def on_event(event: dict) -> bool:
            data = event.get("event_data") or {}
            if event.get("event") in ("runner_on_ok", "runner_on_failed") and data.get("task"):
                tasks.append(data["task"])
                self.progress(target, f"ansible   {data['task']} ({'changed' if data.get('res', {}).get('changed') else 'ok'})")
            return True

        bin_dir = str(Path(sys.executable).parent)
        run = ansible_runner.run(
            private_data_dir=str(private),
            project_dir=str(self.playbook_dir),
            playbook="site.yml",
            inventory=self._inventory(target, outputs),
            extravars=extravars,
            envvars={"PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]), "ANSIBLE_NOCOLOR": "1",
                     "ANSIBLE_RETRY_FILES_ENABLED": "0", "ANSIBLE_LOCALHOST_WARNING": "0"},
            quiet=True,
            event_handler=on_event,
            rotate_artifacts=5,
        )
        stats = run.stats or {}
        changed = sum((stats.get("changed") or {}).values())
        step = {"status": "succeeded" if run.rc == 0 else "failed", "changed": changed, "tasks": len(tasks),
                "artifacts": str(Path(run.config.artifact_dir)), "duration_s": round(time.monotonic() - started, 2)}
        result.details["ansible"] = step
        if run.rc != 0:
            result.status = "failed"
            result.error = "ansible: " + _failure(run)
        self.progress(target, f"ansible {step['status']} ({changed} changed)")
        return result


def _failure(run) -> str:
    for event in run.events:
        if event.get("event") in ("runner_on_failed", "runner_on_unreachable"):
            data = event.get("event_data") or {}
            res = data.get("res") or {}
            msg = res.get("msg") or res.get("stderr") or "failed"
            return f"task '{data.get('task', '?')}' failed on {data.get('host', '?')}: {str(msg).splitlines()[0][:300]}"
    return f"ansible-playbook exited with {run.rc} (status {run.status})"
