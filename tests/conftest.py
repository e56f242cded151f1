"""Shared test helpers: run the real `engine` entry point in an isolated home and catalog."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ENGINE = [sys.executable, str(REPO / "cli.py")]


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


class EngineCLI:
    """Runs `engine` as a user would, with its own ENGINE_HOME and catalog directory."""

    def __init__(self, home: Path, catalog: Path):
        self.home = home
        self.catalog = catalog

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "ENGINE_PASSPHRASE_"))}
        env.update({"ENGINE_HOME": str(self.home), "ENGINE_CATALOG": str(self.catalog), "PYTHONPATH": str(REPO)})
        env.pop("ENGINE_PROGRESS", None)
        return env

    # The unit tier runs the same entry point in this process (click's test runner): the same parsing,
    # commands and error boundary, without paying for a Python start per call.  Integration tests
    # run it as a user does, as a separate process.
    in_process = False

    def __call__(self, *args: str, timeout: float = 600, check: int | None = None) -> Run:
        if self.in_process:
            run = self._in_process(args)
        else:
            proc = subprocess.run([*ENGINE, *args], capture_output=True, text=True, env=self.env(), cwd=self.catalog, timeout=timeout)
            run = Run(proc.returncode, proc.stdout, proc.stderr)
        if check is not None:
            assert run.code == check, f"engine {' '.join(args)} exited {run.code}, expected {check}\nstdout:\n{run.stdout}\nstderr:\n{run.stderr}"
        return run


    def _in_process(self, args: tuple[str, ...]) -> Run:
        from click.testing import CliRunner

        import cli as entry

        env = self.env()
        unset = {k: None for k in os.environ if k not in env}
        cwd = os.getcwd()
        os.chdir(self.catalog)
        try:
            result = CliRunner().invoke(entry.main, list(args), env={**unset, **env}, catch_exceptions=False)
        finally:
            os.chdir(cwd)
        return Run(result.exit_code, result.stdout, result.stderr)


def make_catalog(root: Path, tenants: dict[str, tuple[str, str]]) -> Path:
    """A provider catalog under ``root``: {customer: (tenant_record_yaml, customer_file_yaml)}."""
    (root / "stacks").mkdir(parents=True, exist_ok=True)
    for customer, (record, config) in tenants.items():
        (root / "stacks" / f"{customer}.yml").write_text(record)
        if config is not None:
            path = root / "customers" / customer / "infra" / "variables.yml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(config)
    return root


def tenant_record(customer: str, network_index: int, **extra: str) -> str:
    lines = [f"customer: {customer}", f"repository: {customer}-org/app", f"source: customers/{customer}", "target: local",
             f"network_index: {network_index}"]
    lines += [f"{k}: {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


SMALL_CONFIG = """\
project_name: {name}
environments:
  staging:
    instance_type: t3.micro
  production:
    instance_type: t3.small
    instance_count: 2
database:
  engine: postgres
monitoring:
  alert_email: ops@example.com
"""


# A source of truth (CMDB export) that disagrees with beta's repository on terraform_version.
CMDB_CSV = "repository,infrastructure_tools,terraform_version\nacme-org/shop,pulumi,\nbeta-org/site,terraform|ansible,1.8\n"


def compliance_catalog(tmp_path: Path, github, beta_tools: list[str]) -> tuple[Path, Path]:
    """Two tenants (acme-org/shop on pulumi, beta-org/site on terraform 1.5 with ``beta_tools``), the repository's
    policy, their repositories on the local GitHub server, and the CMDB export: (catalog root, CMDB file)."""
    root = make_catalog(tmp_path / "c", {
        "acme": (tenant_record("acme", 1).replace("acme-org/app", "acme-org/shop"), SMALL_CONFIG.format(name="acme-app")),
        "beta": (tenant_record("beta", 2).replace("beta-org/app", "beta-org/site"), SMALL_CONFIG.format(name="beta-app")),
    })
    (root / "policy").mkdir()
    (root / "policy" / "properties.yml").write_text((REPO / "policy" / "properties.yml").read_text())
    github.add_repo("acme-org", "shop", properties={"infrastructure_tools": ["pulumi"]})
    github.add_repo("beta-org", "site", properties={"infrastructure_tools": beta_tools, "terraform_version": "1.5"})
    (tmp_path / "cmdb.csv").write_text(CMDB_CSV)
    return root, tmp_path / "cmdb.csv"


# A customer with three environments, in the order they deploy.
THREE_ENVIRONMENTS = """\
project_name: {name}
environments:
  development:
    instance_type: t3.micro
  staging:
    instance_type: t3.micro
  production:
    instance_type: t3.small
"""


@pytest.fixture
def cli(tmp_path: Path) -> EngineCLI:
    """An engine with a fresh home, pointed at a copy of the repository's own catalog (acme)."""
    catalog = tmp_path / "catalog"
    shutil.copytree(REPO / "stacks", catalog / "stacks")
    shutil.copytree(REPO / "examples", catalog / "examples")
    return EngineCLI(tmp_path / "home", catalog)
