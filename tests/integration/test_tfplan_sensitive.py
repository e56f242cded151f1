"""Sensitive values in a real OpenTofu plan: list-shaped and nested-block markers, a tainted replace.

Makes the plan of ``tests/golden/tfplan/opentofu-tainted-sensitive-list.tf`` with the real
tool (the unit tests read a stored copy of it) and checks every output the engine makes
from it: no sensitive value, the reason for the replace shown.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from engine import tfplan, toolchain
from engine.reporters.github import render_comment
from engine.results import SECRET_MASK, StackResult
from tests.unit.test_sensitive_masking import CANARY, as_drift, everything_rendered

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "tfplan"


def tofu(work: Path, *args: str, **variables: str) -> subprocess.CompletedProcess:
    tool = toolchain.ensure("tofu", allow_install=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    env.update({"TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1"}, **{f"TF_VAR_{k}": v for k, v in variables.items()})
    proc = subprocess.run([str(tool.executable), *args], cwd=work, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_real_plan_with_sensitive_lists_and_a_tainted_resource_leaks_nothing_and_says_tainted(tmp_path):
    shutil.copyfile(GOLDEN / "opentofu-tainted-sensitive-list.tf", tmp_path / "main.tf")
    tofu(tmp_path, "init", "-input=false")
    tofu(tmp_path, "apply", "-auto-approve", "-input=false", password="ZQX-old-password", generation="1")
    tofu(tmp_path, "taint", "terraform_data.app")
    tofu(tmp_path, "plan", "-input=false", "-out=p.tfplan", password="ZQX-new-password", generation="2")
    plan = json.loads(tofu(tmp_path, "show", "-json", "p.tfplan").stdout)
    assert "ZQX-new-password" in json.dumps(plan)  # the tool's JSON carries it in clear …

    assert CANARY not in everything_rendered(as_drift(plan))  # … nothing the engine makes from it does
    changes, resources = tfplan.summarize(plan)
    by_name = {r.urn_name: r for r in resources}
    assert (by_name["terraform_data.app"].action, by_name["terraform_data.app"].action_reason) == ("replace", "replace_because_tainted")
    assert by_name["terraform_data.upd"].action == "update"
    body = render_comment(StackResult("acme", "staging", "acme/staging", "terraform", "preview", "succeeded", changes=changes,
                                      resources=resources), mode="plan", sha=None, run_url=None)
    assert "| replace (tainted) | `terraform_data.app` |" in body

    # the stored copy the unit tests read has the same shape of markers as what the tool makes today
    stored = json.loads((GOLDEN / "opentofu-tainted-sensitive-list.json").read_text())
    shape = {e["address"]: (e["change"]["actions"], e.get("action_reason"), e["change"]["before_sensitive"], e["change"]["after_sensitive"])
             for e in plan["resource_changes"]}
    assert shape == {e["address"]: (e["change"]["actions"], e.get("action_reason"), e["change"]["before_sensitive"], e["change"]["after_sensitive"])
                     for e in stored["resource_changes"]}
    _, drifted = tfplan.summarize(as_drift(plan), drift=True)
    upd = next(r for r in drifted if r.urn_name == "terraform_data.upd")
    assert {"path": "input.tags[1]", "old": SECRET_MASK, "new": SECRET_MASK} in upd.diffs
