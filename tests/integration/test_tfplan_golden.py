"""Plan summaries from real OpenTofu plans, compared with golden files.

The scenario (tests/fixtures/tfplan) makes one plan that holds every kind of change:
no-op, update in place, replace, delete, create, moved, and a sensitive value.
Regenerate the golden file with UPDATE_GOLDEN=1 after an intended change.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from pathlib import Path

from engine import tfplan, toolchain

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "tfplan"
GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "tfplan"
OLD_SECRET = "hunter2-old-Secret-value"
NEW_SECRET = "correct-horse-NEW-secret"


def tofu(work: Path, *args: str, secret: str) -> subprocess.CompletedProcess:
    tool = toolchain.ensure("tofu", allow_install=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    env.update({"TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1", "TF_VAR_password": secret})
    proc = subprocess.run([str(tool.executable), *args], cwd=work, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc


def make_plan(tmp_path: Path, stage2: str | None) -> dict:
    work = tmp_path / "work"
    work.mkdir()
    shutil.copyfile(FIXTURES / "before.tf", work / "main.tf")
    tofu(work, "init", "-input=false", secret=OLD_SECRET)
    tofu(work, "apply", "-auto-approve", "-input=false", secret=OLD_SECRET)
    if stage2:
        shutil.copyfile(FIXTURES / stage2, work / "main.tf")
    tofu(work, "plan", "-input=false", "-out=p.tfplan", secret=NEW_SECRET if stage2 else OLD_SECRET)
    return json.loads(tofu(work, "show", "-json", "p.tfplan", secret=OLD_SECRET).stdout)


def summary_of(plan: dict) -> dict:
    changes, resources = tfplan.summarize(plan)
    return {"changes": dataclasses.asdict(changes), "has_changes": tfplan.has_changes(plan),
            "resources": [dataclasses.asdict(r) for r in resources]}


def check_golden(name: str, summary: dict) -> None:
    path = GOLDEN / f"{name}.json"
    text = json.dumps(summary, indent=2, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"missing golden file {path}; run with UPDATE_GOLDEN=1"
    assert text == path.read_text()


def test_every_kind_of_change_summarizes_correctly(tmp_path):
    plan = make_plan(tmp_path, "after.tf")
    raw = json.dumps(plan)
    assert NEW_SECRET in raw  # show -json really carries it in clear text …
    summary = summary_of(plan)
    text = json.dumps(summary)
    assert NEW_SECRET not in text and OLD_SECRET not in text  # … and the summary never does
    check_golden("every-change", summary)
    actions = {r["urn_name"]: r["action"] for r in summary["resources"]}
    assert actions == {
        "terraform_data.upd": "update",
        "terraform_data.rep": "replace",
        "terraform_data.gone": "delete",
        "terraform_data.new": "create",
        "terraform_data.new_name": "move",
        "terraform_data.secret": "update",
    }
    moved = next(r for r in summary["resources"] if r["action"] == "move")
    assert moved["moved_from"] == "terraform_data.old_name"


def test_no_change_plan_summarizes_as_nothing_to_do(tmp_path):
    plan = make_plan(tmp_path, None)
    summary = summary_of(plan)
    check_golden("no-op", summary)
    assert summary["has_changes"] is False and summary["resources"] == []
    assert summary["changes"]["same"] == 6
