"""Custom property definitions in the organization, a repository's properties, onboarding customers.

Against the local GitHub server (every request checked against GitHub's REST description)."""

from __future__ import annotations

import ipaddress
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, SMALL_CONFIG, EngineCLI
from tests.fakegithub.fixture import github_server  # noqa: F401 - pytest fixture


def _cli(tmp_path: Path, github_server=None, **extra: str) -> EngineCLI:  # noqa: F811
    root = tmp_path / "catalog"
    shutil.copytree(REPO / "stacks", root / "stacks")
    shutil.copytree(REPO / "examples", root / "examples")
    shutil.copytree(REPO / "policy", root / "policy")
    cli = EngineCLI(tmp_path / "home", root)
    env = {k: v for k, v in cli.env().items() if not k.startswith(("GITHUB_", "ENGINE_GITHUB_"))}
    if github_server is not None:
        env.update({"GITHUB_API_URL": github_server.url, "GITHUB_TOKEN": "test-token", "ENGINE_GITHUB_TIMEOUT": "5",
                    "ENGINE_GITHUB_MAX_RETRY_WAIT": "1"})
    env.update(extra)
    cli.env = lambda: env  # type: ignore[method-assign]
    return cli


def _writes(server) -> list[dict]:
    return [w for w in server.writes()]


# -- engine properties schema ----------------------------------------------------------------------

def test_schema_dry_run_prints_the_definitions_and_writes_nothing(tmp_path, github_server):  # noqa: F811
    cli = _cli(tmp_path, github_server)
    run = cli("properties", "schema", "--org", "acme-corp", "--dry-run")
    assert run.code == 0, run.stderr
    assert "would create infrastructure_tools (multi_select, allowed [pulumi, terraform, ansible, spacelift], default [pulumi], required, " \
           "editable by org_and_repo_actors)" in run.stdout
    assert "would create drift_auto_remediate (true_false, default false, editable by org_actors)" in run.stdout
    data = cli("properties", "schema", "--org", "acme-corp", "--dry-run", "--json", check=0).json()
    assert [w.split(" {")[0] for w in data["would_write"]] == ["PATCH /orgs/acme-corp/properties/schema"]
    assert _writes(github_server) == [] and github_server.property_definitions("acme-corp") == {}


def test_schema_creates_the_definitions_then_a_second_run_writes_nothing(tmp_path, github_server):  # noqa: F811
    cli = _cli(tmp_path, github_server)
    first = cli("properties", "schema", "--org", "acme-corp", "--json", check=0).json()
    assert [c["action"] for c in first["organizations"][0]["changes"]] == ["create"] * 4 and first["writes"] == 1
    defined = github_server.property_definitions("acme-corp")
    wanted = yaml.safe_load((REPO / "policy" / "properties.yml").read_text())["properties"]
    assert set(defined) == set(wanted)
    for name, spec in wanted.items():
        assert defined[name]["value_type"] == spec["type"]
        assert defined[name]["allowed_values"] == spec.get("allowed")
        assert defined[name]["values_editable_by"] == spec["editable_by"]
        assert defined[name]["required"] == spec.get("required", False)
    writes = len(_writes(github_server))

    second = cli("properties", "schema", "--org", "acme-corp", "--json", check=0).json()
    assert second["organizations"][0]["changes"] == [] and second["writes"] == 0
    assert len(_writes(github_server)) == writes


def test_schema_updates_only_what_differs_and_leaves_other_teams_properties_alone(tmp_path, github_server):  # noqa: F811
    github_server.define_property("acme-corp", "terraform_version", value_type="single_select", allowed_values=["1.6"])
    github_server.define_property("acme-corp", "cost_center", value_type="string")
    cli = _cli(tmp_path, github_server)
    data = cli("properties", "schema", "--org", "acme-corp", "--json", check=0).json()["organizations"][0]
    update = next(c for c in data["changes"] if c["property"] == "terraform_version")
    assert update["action"] == "update" and "allowed_values" in update["fields"] and "values_editable_by" in update["fields"]
    assert data["unmanaged"] == ["cost_center"]
    assert "cost_center" in github_server.property_definitions("acme-corp")  # never deleted


def test_schema_defaults_to_every_organization_with_an_onboarded_repository(tmp_path, github_server):  # noqa: F811
    cli = _cli(tmp_path, github_server)
    data = cli("properties", "schema", "--dry-run", "--json", check=0).json()
    assert [o["org"] for o in data["organizations"]] == ["acme-corp"]  # stacks/acme.yml: acme-corp/shop


def test_a_definitions_file_github_would_refuse_is_exit_2_naming_line_and_key(tmp_path, github_server):  # noqa: F811
    cli = _cli(tmp_path, github_server)
    path = cli.catalog / "policy" / "properties.yml"
    path.write_text(path.read_text().replace('    default: "false"\n    editable_by: org_actors', '    default: "maybe"\n    editable_by: org_actors'))
    run = cli("properties", "schema", "--org", "acme-corp")
    assert run.code == 2
    line = path.read_text().splitlines().index("  drift_auto_remediate:") + 1
    assert f"policy/properties.yml:{line}: properties.drift_auto_remediate: the default of a true_false property is" in run.stderr
    assert _writes(github_server) == []


# -- engine properties show ------------------------------------------------------------------------

def test_show_says_where_each_value_comes_from_and_what_the_engine_runs(tmp_path, github_server):  # noqa: F811
    github_server.add_repo("acme-corp", "shop", properties={"infrastructure_tools": ["terraform", "ansible"], "terraform_version": "1.8",
                                                          "drift_auto_remediate": "true"})
    cli = _cli(tmp_path, github_server)
    data = cli("properties", "show", "acme-corp/shop", "--json", check=0).json()
    assert data["customer"] == "acme"
    assert data["effective"]["infrastructure_tools"] == ["terraform", "ansible"] and data["sources"]["infrastructure_tools"] == "repository"
    # drift_auto_remediate is not in acme's property_overrides: the repository's value is ignored
    assert data["effective"]["drift_auto_remediate"] is False and data["sources"]["drift_auto_remediate"] == "default"
    assert data["engine"]["infrastructure"] == "terraform" and data["engine"]["configuration"] == "ansible"
    text = cli("properties", "show", "acme-corp/shop", check=0).stdout
    assert "drift_auto_remediate: False  (default; the repository's value is ignored" in text


def test_show_of_an_invalid_value_is_exit_2_naming_the_property(tmp_path, github_server):  # noqa: F811
    github_server.add_repo("acme-corp", "shop", properties={"infrastructure_tools": ["chef"]})
    run = _cli(tmp_path, github_server)("properties", "show", "acme-corp/shop")
    assert run.code == 2 and "acme-corp/shop custom properties: infrastructure_tools" in run.stderr and "chef" in run.stderr


# -- engine onboard --------------------------------------------------------------------------------

def _networks(cli: EngineCLI, customers: list[str]) -> list[ipaddress.IPv4Network]:
    out = []
    for customer in customers:
        record = yaml.safe_load((cli.catalog / "stacks" / f"{customer}.yml").read_text())
        from engine.planning import tenant_network

        out.append(ipaddress.ip_network(tenant_network(record["network_index"])))
    return out


def test_three_onboardings_in_a_row_get_distinct_non_overlapping_networks_and_valid_records(tmp_path, github_server):  # noqa: F811
    cli = _cli(tmp_path, github_server)
    for n, name in enumerate(("beta", "gamma", "delta")):
        github_server.add_repo(f"{name}-org", "app")
        github_server.put_file(f"{name}-org", "app", "main", "infra/variables.yml", SMALL_CONFIG.format(name=f"{name}-app"))
        tools = ("--tools", "terraform", "--terraform-version", "1.6") if n == 1 else ("--tools", "pulumi,ansible")
        data = cli("onboard", name, "--repository", f"{name}-org/app", *tools, "--environments", "staging,production", "--json", check=0).json()
        assert all(c["done"] is not False for c in data["checks"]), data["checks"]
        assert github_server.properties(f"{name}-org", "app")["infrastructure_tools"] == data["plan"]["properties"]["infrastructure_tools"]
    nets = _networks(cli, ["acme", "beta", "gamma", "delta"])
    assert len(set(nets)) == 4
    assert not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1:])
    for name in ("beta", "gamma", "delta"):
        assert "valid tenant file" in cli("validate", f"stacks/{name}.yml", check=0).stdout
    from engine.catalog import Catalog

    assert len(Catalog(cli.catalog).all_records()) == 4  # the catalog-wide checks (unique indexes, sources) pass
    assert github_server.properties("gamma-org", "app")["terraform_version"] == "1.6"
    assert "terraform_version: '1.6'" in (cli.catalog / "stacks" / "gamma.yml").read_text()


@pytest.mark.parametrize("customer, repository, expected", [
    ("acme", "someone/else", "customer 'acme' is already onboarded"),
    ("newco", "ACME-corp/Shop", "acme-corp/shop is already onboarded as customer 'acme'".replace("acme-corp/shop", "ACME-corp/Shop")),
    ("../x", "x/y", "is not a valid customer id"),
    ("newco", "not a repo", "is not an OWNER/NAME repository"),
])
def test_onboarding_a_taken_id_or_repository_is_exit_2_and_writes_nothing(tmp_path, github_server, customer, repository, expected):  # noqa: F811
    cli = _cli(tmp_path, github_server)
    before = sorted(p.name for p in (cli.catalog / "stacks").iterdir())
    run = cli("onboard", customer, "--repository", repository)
    assert run.code == 2 and expected in run.stderr
    assert sorted(p.name for p in (cli.catalog / "stacks").iterdir() if p.name != ".onboard.lock") == before
    assert _writes(github_server) == []


def test_onboarding_refuses_values_the_definitions_do_not_allow(tmp_path, github_server):  # noqa: F811
    run = _cli(tmp_path, github_server)("onboard", "newco", "--repository", "newco/app", "--tools", "terraform", "--terraform-version", "0.12")
    assert run.code == 2 and "terraform_version '0.12' is not allowed by policy/properties.yml" in run.stderr
    assert _writes(github_server) == []


def test_onboard_dry_run_shows_the_record_and_the_property_write_and_makes_neither(tmp_path, github_server):  # noqa: F811
    github_server.add_repo("newco", "app")
    cli = _cli(tmp_path, github_server)
    run = cli("onboard", "newco", "--repository", "newco/app", "--dry-run")
    assert run.code == 0, run.stderr
    assert "would onboard newco (newco/app): network_index 2 = 10.0.128.0/18" in run.stdout
    assert "  customer: newco" in run.stdout
    data = cli("onboard", "newco", "--repository", "newco/app", "--dry-run", "--json", check=0).json()
    assert [w.split(" {")[0] for w in data["would_write"]] == ["PATCH /repos/newco/app/properties/values"]
    assert not (cli.catalog / "stacks" / "newco.yml").exists() and _writes(github_server) == []
    assert not (cli.catalog / "stacks" / ".onboard.lock").exists()  # a dry run leaves no file at all


def test_onboard_lists_what_a_person_must_do_when_the_customer_file_is_missing_or_invalid(tmp_path, github_server):  # noqa: F811
    github_server.add_repo("newco", "app")
    github_server.put_file("newco", "app", "main", "infra/variables.yml", "project_name: x\nenvironments:\n  Prod:\n    instance_type: t3.bogus\n")
    data = _cli(tmp_path, github_server)("onboard", "newco", "--repository", "newco/app", "--json", check=0).json()
    check = next(c for c in data["checks"] if c["what"].startswith("customer file"))
    assert check["done"] is False and "line 3" in check["detail"]
    assert any("commits a valid infra/variables.yml" in item for item in data["left_to_do"])
    assert any("ENGINE_DISPATCH_SECRETS" in item for item in data["left_to_do"])


def test_onboard_without_github_credentials_writes_the_record_and_says_what_it_could_not_do(tmp_path):
    cli = _cli(tmp_path)
    data = cli("onboard", "newco", "--repository", "newco/app", "--source", "examples/acme-copy", "--json", check=0).json()
    assert (cli.catalog / "stacks" / "newco.yml").is_file()
    assert {c["what"]: c["done"] for c in data["checks"]}["GitHub App installed"] is None
    assert any("set newco/app's custom properties: infrastructure_tools=pulumi" in item for item in data["left_to_do"])


def test_the_address_plan_full_is_exit_2(tmp_path, monkeypatch):
    from engine import onboarding

    monkeypatch.setattr(onboarding, "MAX_NETWORK_INDEX", 1)  # acme holds index 1
    run = _cli(tmp_path)("onboard", "newco", "--repository", "newco/app")
    assert run.code == 2 and "the address plan is full" in run.stderr


# -- engine offboard (the destroy itself: tests/integration/test_onboarding.py) --------------------

def test_offboard_needs_yes_and_dry_run_lists_what_it_would_do(tmp_path):
    cli = _cli(tmp_path)
    run = cli("offboard", "acme")
    assert run.code == 2 and "add --yes" in run.stderr
    data = cli("offboard", "acme", "--dry-run", "--json", check=0).json()
    assert [s["environment"] for s in data["stacks"]] == ["staging", "production"]
    assert any("state location" in item for item in data["left"])
    assert (cli.catalog / "stacks" / "acme.yml").is_file()


def test_offboard_refuses_a_customer_whose_outputs_others_consume(tmp_path):
    cli = _cli(tmp_path)
    (cli.catalog / "stacks" / "app.yml").write_text(
        "customer: app\nrepository: app-org/app\nsource: customers/app\nnetwork_index: 5\n"
        "consumes:\n  - customer: acme\n    outputs: [vpc_id]\n")
    run = cli("offboard", "acme", "--yes")
    assert run.code == 2 and "used by app" in run.stderr


def test_values_yaml_could_misread_are_written_quoted_and_read_back_as_given(tmp_path):
    cli = _cli(tmp_path)
    cli("onboard", "newco", "--repository", "newco/app", "--display-name", "0o17", check=0)
    text = (cli.catalog / "stacks" / "newco.yml").read_text()
    assert "display_name: '0o17'" in text
    assert cli("validate", "stacks/newco.yml", "--json", check=0).json()["value"]["display_name"] == "0o17"


def test_every_terraform_version_the_definitions_offer_is_one_the_engine_serves_and_no_servable_line_is_missing():
    from engine import toolchain
    from engine.properties import load
    from engine.runners.terraform import select_binary

    offered = load(REPO / "policy" / "properties.yml").properties["terraform_version"].allowed
    for line in offered:  # no PATH terraform: what a clean machine serves
        assert select_binary(line, terraform_on_path=None).label, line
    tofu_high = tuple(int(p) for p in toolchain.TOFU_VERSION.split(".")[:2])
    servable = set(toolchain.TERRAFORM_BUILDS) | {f"1.{minor}" for minor in range(6, tofu_high[1] + 1)}
    assert set(offered) == servable
