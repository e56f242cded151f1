"""Every tool start gets the same scrubbed environment (issue 9, item 4): no engine secret, no GitHub
token, no TF_LOG/TF_CLI_ARGS — also for a `terraform` found on PATH, which used to get everything."""

from __future__ import annotations

import json
import os
import stat
import sys

from engine import process
from engine.runners.terraform import terraform_on_path

SECRETS = {
    "ENGINE_PASSPHRASE_ACME": "canary-passphrase-1",
    "PULUMI_CONFIG_PASSPHRASE": "canary-passphrase-2",
    "GITHUB_TOKEN": "canary-token-3",
    "ENGINE_GITHUB_TOKEN": "canary-token-4",
    "ENGINE_GITHUB_APP_PRIVATE_KEY": "canary-key-5",
    "ENGINE_DISPATCH_SECRETS": '{"acme": "canary-dispatch-6"}',
    "ENGINE_HISTORY_URL": "postgresql://bob:canary-pw-7@db/h",
    "TF_LOG": "TRACE",
    "TF_LOG_PATH": "/tmp/leak.log",
    "TF_CLI_ARGS": "-var=x",
    "TF_VAR_password": "canary-8",
}


def test_a_terraform_on_path_sees_none_of_the_engines_secrets(tmp_path, monkeypatch):
    dump = tmp_path / "env.json"
    fake = tmp_path / "bin" / "terraform"
    fake.parent.mkdir()
    fake.write_text(f"#!{sys.executable}\nimport json, os\nopen({str(dump)!r}, 'w').write(json.dumps(dict(os.environ)))\n"
                    "print(json.dumps({'terraform_version': '1.9.8'}))\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")  # cloud credentials do pass: providers need them

    assert terraform_on_path() == (str(fake), "1.9.8")
    seen = json.loads(dump.read_text())
    assert not set(SECRETS) & set(seen), sorted(set(SECRETS) & set(seen))
    assert not any("canary" in v for v in seen.values())
    assert seen["AWS_ACCESS_KEY_ID"] == "AKIAEXAMPLE" and seen["CHECKPOINT_DISABLE"] == "1"


def test_the_tool_environment_is_one_allow_list(monkeypatch):
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    env = process.tool_env({"TF_IN_AUTOMATION": "1"}, path_first=["/opt/tools"])
    assert not set(SECRETS) & set(env)
    assert env["TF_IN_AUTOMATION"] == "1" and env["PATH"].startswith("/opt/tools" + os.pathsep)
