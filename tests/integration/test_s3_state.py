"""Remote state on a real S3-compatible server (moto's standalone server), one prefix per customer."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from tests.conftest import SMALL_CONFIG, EngineCLI, make_catalog, tenant_record

CREDS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3_server(tmp_path):
    port = _free_port()
    server = Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen([str(server), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("moto_server did not start")
            time.sleep(0.2)
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
    client.create_bucket(Bucket="fleet-state")
    yield endpoint, client
    proc.terminate()
    proc.wait(timeout=10)


def keys(client, prefix: str) -> list[str]:
    return [o["Key"] for o in client.list_objects_v2(Bucket="fleet-state", Prefix=prefix).get("Contents", [])]


def test_each_customer_gets_its_own_prefix_on_s3(tmp_path, s3_server, monkeypatch):
    endpoint, client = s3_server
    url = f'"s3://fleet-state/pulumi?region=us-east-1&endpoint={endpoint}&use_path_style=true&disable_https=true"'
    root = make_catalog(tmp_path / "catalog", {
        "acme": (tenant_record("acme", 1) + f"state:\n  url: {url}\n", SMALL_CONFIG.format(name="acme-shop")),
        "beta": (tenant_record("beta", 2) + f"state:\n  url: {url}\n", SMALL_CONFIG.format(name="beta-app")),
    })
    for k, v in CREDS.items():
        monkeypatch.setenv(k, v)
    cli = EngineCLI(tmp_path / "home", root)

    cli("up", "acme", "--env", "staging", check=0)
    cli("up", "beta", "--env", "staging", check=0)
    assert "pulumi/acme/.pulumi/stacks/acme/staging.json" in keys(client, "pulumi/acme/")
    assert "pulumi/beta/.pulumi/stacks/beta/staging.json" in keys(client, "pulumi/beta/")
    assert not [k for k in keys(client, "pulumi/") if not k.startswith(("pulumi/acme/", "pulumi/beta/"))]
    assert not (cli.home / "state").exists()  # nothing fell back to local state

    again = cli("up", "acme", "--env", "staging", "--json", check=0).json()["environments"]["staging"]["changes"]
    assert (again["create"], again["update"], again["delete"]) == (0, 0, 0)
    # state backups (engine/backups.py) sit beside the state, under the customer's own prefix, sealed
    backups = cli("state", "backups", "acme", "--env", "staging", "--json", check=0).json()
    assert backups["location"] == "s3://fleet-state/pulumi/acme/backups/staging/" and len(backups["backups"]) == 2
    assert sorted(keys(client, "pulumi/acme/backups/staging/")) == sorted(f"pulumi/acme/backups/staging/{b['id']}.bak" for b in backups["backups"])
    sealed = client.get_object(Bucket="fleet-state", Key=f"pulumi/acme/backups/staging/{backups['backups'][0]['id']}.bak")["Body"].read()
    assert b"urn:pulumi" not in sealed and b"acme-shop" not in sealed

    cli("destroy", "acme", "--yes", check=0)
    assert not [k for k in keys(client, "pulumi/acme/.pulumi/stacks/") if k.endswith(".json")]
    assert keys(client, "pulumi/acme/backups/") == []  # nothing left to restore: the backups go with the stack
    assert "pulumi/beta/.pulumi/stacks/beta/staging.json" in keys(client, "pulumi/beta/")
