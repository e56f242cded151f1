"""Post-deploy tests of the AWS target (programs/aws): the real resources, read through the AWS API (boto3), match the plan.

The engine runs these after every successful `up` it is asked to test (docs/TESTING.md, "Post-deploy tests"), with
the fixtures of engine/post_deploy.py: ``stack`` (outputs, planned ``settings``), ``aws`` (a boto3 session in the
stack's region; AWS_ENDPOINT_URL, e.g. a local moto server, is honoured). The same checks hold for the Terraform AWS
module (terraform/tests): both export the same outputs.
"""

import pytest


def test_the_vpc_has_the_planned_cidr_and_the_stacks_tags(stack, aws):
    (vpc,) = aws.client("ec2").describe_vpcs(VpcIds=[stack.outputs["vpc_id"]])["Vpcs"]
    assert vpc["CidrBlock"] == stack.settings["network"]["vpc_cidr"]
    tags = {t["Key"]: t["Value"] for t in vpc.get("Tags", [])}
    assert (tags.get("customer"), tags.get("environment")) == (stack.customer, stack.environment)


def test_every_subnet_has_its_planned_cidr_in_the_vpc(stack, aws):
    ec2 = aws.client("ec2")
    for tier in ("public", "private"):
        ids = stack.outputs[f"{tier}_subnet_ids"]
        subnets = {s["SubnetId"]: s for s in ec2.describe_subnets(SubnetIds=ids)["Subnets"]}
        assert [subnets[i]["CidrBlock"] for i in ids] == stack.settings["network"][f"{tier}_subnets"], f"{tier} subnets"
        assert {s["VpcId"] for s in subnets.values()} == {stack.outputs["vpc_id"]}


def test_every_instance_has_the_planned_type_and_root_disk_size(stack, aws):
    ec2 = aws.client("ec2")
    ids = stack.outputs["instance_ids"]
    assert len(ids) == stack.settings["instance_count"]
    instances = [i for r in ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]]
    for instance in instances:
        assert instance["InstanceType"] == stack.settings["instance_type"], instance["InstanceId"]
        root = next(m for m in instance["BlockDeviceMappings"] if m["DeviceName"] == instance["RootDeviceName"])
        (volume,) = ec2.describe_volumes(VolumeIds=[root["Ebs"]["VolumeId"]])["Volumes"]
        assert volume["Size"] == stack.settings["volume_size_gb"], (
            f"{instance['InstanceId']}: root disk is {volume['Size']} GB, {stack.settings['volume_size_gb']} GB requested")


def test_the_database_runs_with_the_planned_engine_and_storage(stack, aws):
    database = stack.settings.get("database")
    if not database:
        pytest.skip("no database in this environment")
    host = stack.outputs["database_endpoint"].rsplit(":", 1)[0]
    found = [d for d in aws.client("rds").describe_db_instances()["DBInstances"] if (d.get("Endpoint") or {}).get("Address") == host]
    assert found, f"no database answers at {host}"
    (db,) = found
    assert (db["Engine"], db["AllocatedStorage"], db["MultiAZ"]) == (database["engine"], database["storage_gb"], database["multi_az"])
    assert db["DBInstanceStatus"] == "available" and db["MasterUsername"] == stack.outputs["database_username"]


def test_an_alarm_watches_every_instance(stack, aws):
    monitoring = stack.settings.get("monitoring")
    if not monitoring:
        pytest.skip("no monitoring in this environment")
    alarms = aws.client("cloudwatch").describe_alarms()["MetricAlarms"]
    watched = {d["Value"]: a for a in alarms for d in a.get("Dimensions", []) if d["Name"] == "InstanceId"}
    for instance_id in stack.outputs["instance_ids"]:
        assert instance_id in watched, f"no alarm watches {instance_id}"
        alarm = watched[instance_id]
        assert (alarm["MetricName"], alarm["Threshold"]) == ("CPUUtilization", monitoring["cpu_alarm_threshold"])
        assert alarm["ActionsEnabled"] == monitoring["alerts_enabled"]
