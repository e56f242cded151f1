"""Commands that run no tool: schema, validate, list, plan-targets, tools status."""

from __future__ import annotations

import json

from tests.conftest import REPO


def test_schema_describes_the_customer_file(cli):
    run = cli("schema", "customer", check=0)
    schema = run.json()
    assert schema["$schema"].endswith("2020-12/schema")
    assert {"project_name", "environments"} <= set(schema["required"])
    assert schema["additionalProperties"] is False


def test_schema_for_tenant_records(cli):
    schema = cli("schema", "tenant", check=0).json()
    assert "customer" in schema["properties"] and "network_index" in schema["required"]


def test_validate_accepts_the_examples(cli):
    run = cli("validate", str(REPO / "examples/acme/infra/variables.yml"), check=0)
    assert "valid customer file (2 environments: staging, production)" in run.stdout
    run = cli("validate", str(REPO / "stacks/acme.yml"), "--json", check=0)
    assert run.json()["kind"] == "tenant" and run.json()["value"]["customer"] == "acme"


def test_validate_missing_file_is_bad_input(cli):
    run = cli("validate", "nope.yml")
    assert run.code == 2 and "nope.yml" in run.stderr


def test_list_shows_the_catalog(cli):
    data = cli("list", "--json", check=0).json()
    assert data["customers"] == [{"customer": "acme", "repository": "acme-corp/shop", "target": "local", "tools": ["pulumi"], "state": "file"}]


def test_plan_targets_prints_resolved_targets_without_running_anything(cli):
    targets = json.loads(cli("plan-targets", "acme", check=0).stdout)
    assert [t["environment"] for t in targets] == ["staging", "production"]
    assert targets[0]["backend_url"] == f"file://{cli.home}/state/acme"
    assert not (cli.home / "state").exists()


def test_tools_status_reports_pinned_versions(cli):
    data = cli("tools", "status", "--json", check=0).json()
    names = {t["name"]: t for t in data["tools"]}
    assert names["pulumi"]["version"] == "3.260.0" and names["tofu"]["version"] == "1.12.6"


def test_no_catalog_is_a_clear_error(tmp_path):
    from tests.conftest import EngineCLI

    empty = tmp_path / "empty"
    empty.mkdir()
    run = EngineCLI(tmp_path / "home", empty)("up", "acme")
    assert run.code == 2 and "no tenant catalog" in run.stderr



def test_drift_of_an_unknown_customer_is_bad_input(tmp_path):
    from tests.conftest import REPO, EngineCLI

    run = EngineCLI(tmp_path / "home", REPO)("drift", "acmee")
    assert run.code == 2 and "unknown customer 'acmee'" in run.stderr
    assert EngineCLI(tmp_path / "home", REPO)("drift").stderr.strip() == "error: name the customers to check, or pass --all"


def test_no_installed_dependency_shadows_the_engines_top_level_cli_module():
    """`engine` is `cli:main`: a dependency shipping its own top-level `cli` package (python-hcl2 8.x does) would
    replace the command with theirs. Pin such a dependency to a version without it."""
    import importlib.metadata

    import cli

    owners = set(importlib.metadata.packages_distributions().get("cli", []))
    assert owners <= {"managed-infra-engine"}, f"these distributions also install a top-level `cli`: {sorted(owners - {'managed-infra-engine'})}"
    assert hasattr(cli, "main") and cli.__file__.endswith("cli.py")
