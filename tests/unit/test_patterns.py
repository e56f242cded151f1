"""The repository patterns of docs/PATTERNS.md: each example's tenant record and customer file are valid,
plan as documented, and fit into one catalog with the others."""

from __future__ import annotations

import ipaddress
import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, EngineCLI

PATTERNS = REPO / "examples" / "patterns"
# pattern: (customer, repository the record names, config_path, environments in deploy order)
EXPECTED = {
    "monorepo": ("storefront", "shopco/storefront", "infra/variables.yml", ["staging", "production"]),
    "infra-only": ("ledger", "finco/ledger-infra", "infra/variables.yml", ["development", "staging", "production"]),
    "app-only": ("billing", "platco/billing-deploy", "infrastructure.yml", ["staging", "production"]),
}


def pattern_cli(tmp_path: Path, pattern: str) -> EngineCLI:
    return EngineCLI(tmp_path / "home", PATTERNS / pattern)


def test_every_pattern_directory_is_documented_and_tested():
    assert sorted(p.name for p in PATTERNS.iterdir() if p.is_dir()) == sorted(EXPECTED)
    doc = (REPO / "docs" / "PATTERNS.md").read_text()
    for pattern, (customer, _repository, config_path, _envs) in EXPECTED.items():
        assert f"examples/patterns/{pattern}/stacks/{customer}.yml" in doc
        assert f"--catalog examples/patterns/{pattern} plan-targets {customer}" in doc


@pytest.mark.parametrize("pattern", sorted(EXPECTED))
def test_pattern_tenant_record_and_customer_file_are_valid(pattern: str, tmp_path: Path):
    customer, repository, config_path, environments = EXPECTED[pattern]
    cli = pattern_cli(tmp_path, pattern)
    record = cli("validate", f"stacks/{customer}.yml", "--json", check=0).json()
    assert record["kind"] == "tenant"
    assert (record["value"]["repository"], record["value"]["config_path"]) == (repository, config_path)
    customer_file = PATTERNS / pattern / record["value"]["source"] / config_path
    config = cli("validate", str(customer_file), "--json", check=0).json()
    assert config["kind"] == "customer" and list(config["value"]["environments"]) == environments


@pytest.mark.parametrize("pattern", sorted(EXPECTED))
def test_pattern_plans_one_stack_per_environment_in_the_tenants_own_network(pattern: str, tmp_path: Path):
    customer, _repository, _config_path, environments = EXPECTED[pattern]
    cli = pattern_cli(tmp_path, pattern)
    targets = json.loads(cli("plan-targets", customer, check=0).stdout)
    assert [t["environment"] for t in targets] == environments
    index = yaml.safe_load((PATTERNS / pattern / "stacks" / f"{customer}.yml").read_text())["network_index"]
    tenant_net = ipaddress.ip_network(f"10.{index >> 2}.{(index & 3) * 64}.0/18")
    for target in targets:
        assert ipaddress.ip_network(target["config"]["network"]["vpc_cidr"]).subnet_of(tenant_net), target["config"]["network"]
    assert not (cli.home / "state").exists()  # planning wrote nothing


def test_the_app_only_record_names_the_repository_holding_the_file_not_the_apps(tmp_path: Path):
    record = yaml.safe_load((PATTERNS / "app-only" / "stacks" / "billing.yml").read_text())
    assert record["repository"] == "platco/billing-deploy" and record["config_path"] == "infrastructure.yml"
    # the file lives where the record says, at a path other than the template's default
    assert (PATTERNS / "app-only" / record["source"] / "infrastructure.yml").is_file()
    assert not (PATTERNS / "app-only" / record["source"] / "infra").exists()


def test_all_patterns_fit_into_one_catalog_with_disjoint_networks(tmp_path: Path):
    catalog = tmp_path / "catalog"
    for pattern in EXPECTED:
        shutil.copytree(PATTERNS / pattern, catalog, dirs_exist_ok=True)
    cli = EngineCLI(tmp_path / "home", catalog)
    listed = cli("list", "--json", check=0).json()["customers"]
    assert {(c["customer"], c["repository"]) for c in listed} == {(c, r) for c, r, _p, _e in EXPECTED.values()}
    networks = []
    for customer, *_ in EXPECTED.values():
        networks += [ipaddress.ip_network(t["config"]["network"]["vpc_cidr"]) for t in json.loads(cli("plan-targets", customer, check=0).stdout)]
    assert len(networks) == 7
    assert not any(a.overlaps(b) for i, a in enumerate(networks) for b in networks[i + 1:])


def test_a_pattern_record_without_its_local_source_is_a_valid_github_tenant(tmp_path: Path):
    """docs/PATTERNS.md: to make an example real, delete the `source:` line."""
    for pattern, (customer, *_rest) in EXPECTED.items():
        text = (PATTERNS / pattern / "stacks" / f"{customer}.yml").read_text()
        lines = [line for line in text.splitlines() if not line.startswith("source:")]
        assert len(lines) == len(text.splitlines()) - 1, pattern
        path = tmp_path / pattern / "stacks" / f"{customer}.yml"
        path.parent.mkdir(parents=True)
        path.write_text("\n".join(lines) + "\n")
        run = EngineCLI(tmp_path / "home", tmp_path / pattern)("validate", str(path), "--json", check=0).json()
        assert "source" not in run["value"] or run["value"]["source"] is None
