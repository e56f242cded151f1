"""Post-deploy tests of the local Terraform module (terraform/local): the real files and disks match the plan.

Network, subnets, disks and alarms are checked by the Pulumi local program's own tests (programs/local/tests): the
module makes the same files. Only the database differs — the module defines it (a spec file and a connection string),
the program also creates it with its password — so that test is this module's own. The engine runs these after every
successful `up` it is asked to test (docs/TESTING.md, "Post-deploy tests").
"""

from pathlib import Path

import pytest

from programs.local.tests.test_local_target import (  # noqa: F401 - pytest collects the imported tests
    _spec,
    test_an_alarm_watches_every_instance,
    test_every_instance_disk_has_the_requested_size,
    test_every_subnet_has_its_planned_cidr_and_tier,
    test_the_network_has_the_planned_cidr,
)


def test_the_database_is_defined_and_its_connection_names_it(stack, secret):
    database = stack.settings.get("database")
    if not database:
        pytest.skip("no database in this environment")
    path = Path(stack.outputs["database_endpoint"].removeprefix("file://"))
    spec = _spec(path)
    assert (spec["engine"], spec["storage_gb"]) == (database["engine"], database["storage_gb"])
    connection = secret("database_connection")  # sensitive output: never printed
    assert connection.startswith(f"{database['engine']}://") and connection.endswith(f"/{stack.settings['project_name']}")
