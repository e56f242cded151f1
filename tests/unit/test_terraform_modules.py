"""The provider's Terraform modules against the tfvars the engine really writes, one module per target.

No provider can be installed here for azurerm or google (the plugin mirror has hashicorp/aws only), so ``tofu
validate`` cannot run for those modules; instead their HCL is read with python-hcl2 and held against the
``terraform.tfvars.json`` the Terraform runner writes for a planned target (``TerraformRunner._workdir``: the same
file, the same module copy a real run uses): every value has a variable, every variable without a default gets a
value, object variables name exactly the planner's keys, the modules' own ``can(regex(...))`` validations accept the
values (and every size the sizing table can hand them), and every module's outputs carry the same names.
``tofu fmt -check`` runs on them in tests/integration/test_terraform_modules_fmt.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import hcl2
import pytest

from engine import sizing
from engine.clouds import terraform_module
from engine.config import CustomerConfig, TenantRecord
from engine.home import EngineHome
from engine.planning import Settings, plan_targets
from engine.runners.terraform import MODULES_ROOT, TerraformRunner
from tests.unit.test_cloud_programs import COMMON_OUTPUTS, GENERATED_PASSWORD_OUTPUT

TARGETS = ("local", "aws", "azure", "gcp")
FULL = {"database": {"engine": "postgres", "instance_class": "db.r6i.large", "multi_az": True, "storage_gb": 40},
        "monitoring": {"alert_email": "ops@acme.example"}}


def module_dir(target: str) -> Path:
    return (MODULES_ROOT / terraform_module(target)).resolve()


def read_blocks(target: str, kind: str) -> dict[str, dict]:
    """Every ``variable``/``output`` block of the module by name (python-hcl2's reading of the HCL)."""
    blocks: dict[str, dict] = {}
    for path in sorted(module_dir(target).glob("*.tf")):
        with path.open() as fh:
            for block in hcl2.load(fh).get(kind, []):
                blocks.update(block)
    return blocks


def object_attributes(type_expression: str) -> tuple[set[str], set[str]]:
    """(every attribute, the required ones) of an ``object({...})`` type as python-hcl2 writes it."""
    body = type_expression[type_expression.index("object(") :]
    attributes = dict(re.findall(r'"([a-z_]+)": "([^"]*(?:"[^"]*"[^"]*)*?)"(?=, "|\})', body))
    return set(attributes), {name for name, kind in attributes.items() if not kind.startswith("${optional(")}


def written_tfvars(target: str, tmp_path: Path, environment: str = "production", **extra) -> dict:
    record = TenantRecord.model_validate({"customer": "acme", "repository": "acme/app", "network_index": 9, "target": target,
                                          "source": "examples/acme"})
    config = CustomerConfig.model_validate({"project_name": "shop", "environments": {
        "staging": {"instance_type": "small"}, "production": {"instance_type": "m7g.large", "instance_count": 2}}, **extra})
    (stack,) = plan_targets(record, config, Settings(str(tmp_path / "state"), str(tmp_path / "cloud")), [environment])
    runner = TerraformRunner(EngineHome(tmp_path / "home"), find_tool=None, find_mirror=None, find_terraform=lambda: None)  # type: ignore[arg-type]
    work = runner._workdir(stack)
    assert sorted(p.name for p in work.glob("*.tf")) == sorted(p.name for p in module_dir(target).glob("*.tf"))  # this target's module
    return json.loads((work / "terraform.tfvars.json").read_text())


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("extra", [FULL, {}], ids=["database-and-monitoring", "plain"])
def test_the_tfvars_the_engine_writes_match_the_modules_variables(target, extra, tmp_path):
    tfvars = written_tfvars(target, tmp_path, **extra)
    variables = read_blocks(target, "variable")
    assert set(tfvars) == set(variables), f"{target}: no variable for {set(tfvars) - set(variables)}, no value for {set(variables) - set(tfvars)}"
    for name, block in variables.items():
        if "default" not in block:
            assert tfvars[name] is not None, (target, name)
        kind = block.get("type", "")
        if "object(" in kind and tfvars[name] is not None:
            every, required = object_attributes(kind)
            assert set(tfvars[name]) <= every, f"{target}: {name} has no attribute for {set(tfvars[name]) - every}"
            assert required <= set(tfvars[name]), f"{target}: {name} lacks {required - set(tfvars[name])}"
            if target != "local":  # the local module types only what it reads
                assert set(tfvars[name]) == every, f"{target}: {name} declares {every - set(tfvars[name])} the engine never writes"


def _regex_validations(variables: dict) -> list[tuple[str, str]]:
    """(variable, pattern) of every ``can(regex(PATTERN, var.X))`` validation of a top-level string variable."""
    found = []
    for name, block in variables.items():
        for validation in block.get("validation", []):
            match = re.fullmatch(r'\$\{can\(regex\("(.*)", var\.' + name + r'\)\)\}', validation["condition"])
            if match:
                found.append((name, json.loads(f'"{match.group(1)}"')))  # HCL's string escapes are JSON's here
    return found


@pytest.mark.parametrize("target", ["aws", "azure", "gcp"])
def test_the_modules_validations_accept_every_size_the_sizing_table_can_give_them(target, tmp_path):
    variables = read_blocks(target, "variable")
    patterns = dict(_regex_validations(variables))
    assert {"customer", "region", "instance_type"} <= set(patterns), patterns
    tfvars = written_tfvars(target, tmp_path, **FULL)
    for name, pattern in patterns.items():
        assert re.search(pattern, tfvars[name]), f"{target}: {name}={tfvars[name]!r} fails the module's own validation {pattern}"
    for word in sizing.allowed("instance", target):
        size = sizing.resolve("instance", word, target).name
        assert re.search(patterns["instance_type"], size), f"{target}: the module would refuse {size} ({word})"


def test_each_module_takes_its_own_clouds_database_classes():
    classes = {cloud: {row[cloud] for row in sizing.TABLE["database"].values() if row.get(cloud)} for cloud in sizing.CLOUDS}
    aws_rule = next(v["condition"] for v in read_blocks("aws", "variable")["database"]["validation"] if "instance_class" in v["condition"])
    gcp_rule = next(v["condition"] for v in read_blocks("gcp", "variable")["database"]["validation"] if "instance_class" in v["condition"])
    for cloud, rule in (("aws", aws_rule), ("gcp", gcp_rule)):
        pattern = json.loads('"' + re.search(r'regex\("(.*?)", var\.database\.instance_class\)', rule).group(1) + '"')
        assert all(re.search(pattern, name) for name in classes[cloud]), cloud
    tiers = {sizing.OFFERED["database"]["azure"][name].tier for name in classes["azure"]}
    azure_rule = next(v["condition"] for v in read_blocks("azure", "variable")["database"]["validation"] if "tier" in v["condition"])
    assert all(tier in azure_rule for tier in tiers)  # python-hcl2 drops the quotes of a list's strings


@pytest.mark.parametrize("target", ["aws", "azure", "gcp"])
def test_every_clouds_module_has_the_programs_outputs(target):
    assert set(read_blocks(target, "output")) == COMMON_OUTPUTS | GENERATED_PASSWORD_OUTPUT[target]
    outputs = read_blocks(target, "output")
    assert outputs.get("database_password", {"sensitive": True}).get("sensitive") is True


@pytest.mark.parametrize("target", ["azure", "gcp"])
def test_every_resource_that_takes_tags_gets_them(target):
    """In the module's HCL: each resource of a type that takes tags (azurerm) or labels (google) sets them from var.tags."""
    takes = {"azure": re.compile(r"^azurerm_(?!subnet|nat_gateway_public_ip|virtual_network_peering|management_lock)"),
             "gcp": re.compile(r"^google_(compute_(address|instance|forwarding_rule)|pubsub_topic$|monitoring_(alert_policy|notification_channel))")}[target]
    key = {"azure": "tags", "gcp": "labels"}[target]
    checked = 0
    for path in sorted(module_dir(target).glob("*.tf")):
        with path.open() as fh:
            for block in hcl2.load(fh).get("resource", []):
                for rtype, instances in block.items():
                    if not takes.match(rtype):
                        continue
                    for name, body in instances.items():
                        text = json.dumps(body)
                        assert "var.tags" in text, f"{target}: {rtype}.{name} has no {key}"
                        checked += 1
    assert checked >= 8, checked


def test_no_installed_distribution_shadows_the_engines_own_top_level_modules():
    """python-hcl2 8.1 ships a top-level package `cli`, which shadowed the engine's cli.py and broke the `engine` command."""
    from importlib import metadata

    ours = {"cli", "engine", "programs"}
    clashes = set()
    for dist in metadata.distributions():
        if (dist.metadata["Name"] or "").lower() == "managed-infra-engine":
            continue
        for file in dist.files or ():
            top = file.parts[0].removesuffix(".py") if file.parts else ""
            if top in ours and (len(file.parts) > 1 or file.suffix == ".py"):
                clashes.add((dist.metadata["Name"], top))
    assert not clashes, f"installed packages that shadow the engine's modules: {sorted(clashes)}"
