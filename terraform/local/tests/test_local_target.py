"""Post-deploy tests of the local Terraform module (terraform/local): the real files and disks match the plan.

The engine runs these after every successful `up` it is asked to test (docs/TESTING.md, "Post-deploy tests"), with
the fixtures of engine/post_deploy.py: ``stack`` (outputs, planned ``settings``), ``secret(name)``.
"""

import json
from pathlib import Path

import pytest

GIB = 2**30


def _spec(path: Path) -> dict:
    assert path.is_file(), f"{path} does not exist"
    return json.loads(path.read_text())["spec"]


def test_the_network_has_the_planned_cidr(stack):
    network = _spec(Path(stack.outputs["network_path"]))
    assert network["cidr"] == stack.settings["network"]["vpc_cidr"] == stack.outputs["vpc_cidr"]
    assert network["tags"]["customer"] == stack.customer and network["tags"]["environment"] == stack.environment


def test_every_subnet_has_its_planned_cidr_and_tier(stack):
    root = Path(stack.settings["local_root"]) / "network" / "subnets"
    for tier in ("public", "private"):
        for index, cidr in enumerate(stack.settings["network"][f"{tier}_subnets"]):
            subnet = _spec(root / f"{tier}-{'ab'[index]}.json")
            assert (subnet["cidr"], subnet["tier"]) == (cidr, tier), f"subnet {tier}-{'ab'[index]}"
    assert sorted(p.stem for p in root.glob("*.json")) == ["private-a", "private-b", "public-a", "public-b"]


def test_every_instance_disk_has_the_requested_size(stack):
    wanted = stack.settings["volume_size_gb"]
    compute = Path(stack.settings["local_root"]) / "compute"
    for index in range(stack.settings["instance_count"]):
        disk = compute / f"app-{index + 1}" / "root.img"
        assert disk.is_file(), f"app-{index + 1} has no root disk"
        size = disk.stat().st_size
        assert size == wanted * GIB, f"app-{index + 1}: disk is {size / GIB:g} GB, {wanted} GB requested"
        assert _spec(compute / f"app-{index + 1}" / "instance.json")["instance_type"] == stack.settings["instance_type"]
    assert len(stack.outputs["instance_ips"]) == stack.settings["instance_count"]


def test_the_database_is_defined_and_its_connection_names_it(stack, secret):
    database = stack.settings.get("database")
    if not database:
        pytest.skip("no database in this environment")
    path = Path(stack.outputs["database_endpoint"].removeprefix("file://"))
    spec = _spec(path)
    assert (spec["engine"], spec["storage_gb"]) == (database["engine"], database["storage_gb"])
    connection = secret("database_connection")  # sensitive output: never printed
    assert connection.startswith(f"{database['engine']}://") and connection.endswith(f"/{stack.settings['project_name']}")


def test_an_alarm_watches_every_instance(stack):
    monitoring = stack.settings.get("monitoring")
    if not monitoring:
        pytest.skip("no monitoring in this environment")
    alarms = _spec(Path(stack.outputs["monitoring_path"]))["alarms"]
    assert sorted(a["name"] for a in alarms) == sorted(f"cpu-high-app-{i + 1}" for i in range(stack.settings["instance_count"]))
    assert all(a["threshold"] == monitoring["cpu_alarm_threshold"] and a["enabled"] == monitoring["alerts_enabled"] for a in alarms)
