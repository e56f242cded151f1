"""Two tenants side by side: neither can see, select or change the other's stacks or state."""

from __future__ import annotations

import json
import os
import subprocess

from engine import toolchain
from tests.conftest import SMALL_CONFIG, EngineCLI, make_catalog, tenant_record


def pulumi_stack_ls(backend: str, passphrase: str, cwd, pulumi_home) -> subprocess.CompletedProcess:
    tool = toolchain.ensure("pulumi", allow_install=False)
    env = {**os.environ, "PULUMI_BACKEND_URL": backend, "PULUMI_CONFIG_PASSPHRASE": passphrase, "PULUMI_SKIP_UPDATE_CHECK": "true",
           "PULUMI_HOME": str(pulumi_home)}
    return subprocess.run([str(tool.executable), "stack", "ls", "--all", "--json"], capture_output=True, text=True, env=env, cwd=cwd)


def test_two_tenants_are_isolated(tmp_path):
    root = make_catalog(tmp_path / "catalog", {
        "acme": (tenant_record("acme", 1), SMALL_CONFIG.format(name="acme-shop")),
        "beta": (tenant_record("beta", 2), SMALL_CONFIG.format(name="beta-app")),
    })
    cli = EngineCLI(tmp_path / "home", root)
    acme = cli("up", "acme", "--env", "staging", "--json", check=0).json()
    beta = cli("up", "beta", "--env", "staging", "--json", check=0).json()
    assert acme["environments"]["staging"]["outputs"]["vpc_cidr"] == "10.0.68.0/22"
    assert beta["environments"]["staging"]["outputs"]["vpc_cidr"] == "10.0.132.0/22"

    # separate state locations and passphrases
    state = cli.home / "state"
    assert sorted(p.name for p in state.iterdir()) == ["acme", "beta"]
    secrets = {p.stem: p.read_text().strip() for p in (cli.home / "secrets").iterdir()}
    assert secrets["acme"] != secrets["beta"]
    assert oct((cli.home / "secrets" / "acme.passphrase").stat().st_mode & 0o777) == "0o600"

    # beta's backend only knows beta's stacks
    listed = pulumi_stack_ls(f"file://{state / 'beta'}", secrets["beta"], tmp_path, cli.home / "pulumi-home")
    assert listed.returncode == 0, listed.stderr
    names = [s["name"] for s in json.loads(listed.stdout)]
    assert names and all(n.startswith("organization/beta/") for n in names), names

    # the engine will not address acme's stacks through beta, whatever the input
    for hostile in (["up", "beta", "--env", "../acme/staging"], ["up", "beta/../acme"], ["outputs", "beta", "--env", "acme"]):
        run = cli(*hostile)
        assert run.code == 2, (hostile, run.stdout, run.stderr)

    # acme's state cannot be decrypted with beta's passphrase
    env = {**os.environ, "PULUMI_BACKEND_URL": f"file://{state / 'acme'}", "PULUMI_CONFIG_PASSPHRASE": secrets["beta"],
           "PULUMI_SKIP_UPDATE_CHECK": "true", "PULUMI_HOME": str(cli.home / "pulumi-home")}
    work = cli.home / "work" / "acme" / "staging"
    tool = toolchain.ensure("pulumi", allow_install=False)
    out = subprocess.run([str(tool.executable), "stack", "output", "--show-secrets", "--stack", "organization/acme/staging", "--json"],
                         capture_output=True, text=True, env=env, cwd=work)
    assert out.returncode != 0 and "passphrase" in out.stderr.lower(), out.stderr

    # destroying beta leaves acme untouched
    cli("destroy", "beta", "--yes", check=0)
    assert not (cli.home / "local-cloud" / "beta").exists() or not any((cli.home / "local-cloud" / "beta").rglob("*.json"))
    again = cli("up", "acme", "--env", "staging", "--json", check=0).json()["environments"]["staging"]["changes"]
    assert (again["create"], again["update"], again["delete"]) == (0, 0, 0)


def test_percent_encoded_state_url_never_writes_outside_its_directory(tmp_path):
    """Pulumi decodes a state URL's path: the engine refuses encoded traversal before pulumi starts, and
    for an ordinary encoded path it creates and guards the same decoded directory pulumi writes."""
    base = tmp_path / "t"
    escape = base.parent / "escape"  # where file://…/t/state/%2e%2e/%2e%2e/escape leads once decoded
    hostile = tenant_record("esc", 1) + f"state:\n  url: file://{base}/state/%2e%2e/%2e%2e/escape\n"
    spaced = tenant_record("enc", 2) + f"state:\n  url: file://{base}/tenant%20state\n"
    root = make_catalog(base / "catalog", {"esc": (hostile, SMALL_CONFIG.format(name="esc-app")),
                                           "enc": (spaced, SMALL_CONFIG.format(name="enc-app"))})
    cli = EngineCLI(base / "home", root)

    refused = cli("up", "esc", "--env", "staging")
    assert refused.code == 2 and "stacks/esc.yml:7: state.url:" in refused.stderr and "'..'" in refused.stderr, refused.stderr
    assert not escape.exists() and not (base / "state").exists() and not (cli.home / "work" / "esc").exists()
    (root / "stacks" / "esc.yml").unlink()  # one invalid record stops every tenant of the catalog

    cli("up", "enc", "--env", "staging", check=0)
    written = base / "tenant state" / "enc" / ".pulumi" / "stacks" / "enc" / "staging.json"
    assert written.is_file() and not (base / "tenant%20state").exists()
    assert sorted(p.name for p in base.iterdir()) == ["catalog", "home", "tenant state"]

    # the tool-switch guard reads that same decoded directory: switching enc to Terraform is refused
    (root / "stacks" / "enc.yml").write_text(spaced + "properties:\n  infrastructure_tools: [terraform]\n")
    switched = cli("preview", "enc", "--env", "staging")
    assert switched.code == 2 and "enc/staging was deployed with Pulumi" in switched.stderr, switched.stderr
