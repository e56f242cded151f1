"""The AWS post-deploy tests (programs/aws/tests, terraform/tests) against a real AWS-compatible API: moto's standalone
server.  The resources are made here through boto3 as the AWS program makes them (nothing is deployed with a tool: the
AWS providers cannot be downloaded here); the engine then runs the provider's tests against them, in their own process."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from engine.planning import Settings, plan_targets
from engine.post_deploy import PostDeployTests
from engine.config import CustomerConfig, TenantRecord
from tests.conftest import REPO

CREDS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "eu-west-1", "AWS_REGION": "eu-west-1"}


@pytest.fixture
def aws_api(monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
    endpoint = f"http://127.0.0.1:{port}"
    for key, value in {**CREDS, "AWS_ENDPOINT_URL": endpoint}.items():
        monkeypatch.setenv(key, value)  # the tests' child process inherits these (engine.process passes AWS_*)
    yield boto3.session.Session(region_name="eu-west-1")
    proc.terminate()
    proc.wait(timeout=10)


def target(tool: str):
    record = TenantRecord.model_validate({"customer": "acme", "repository": "acme-org/shop", "network_index": 3, "target": "aws",
                                          "properties": {"infrastructure_tools": [tool]}})
    config = CustomerConfig.model_validate({"project_name": "shop", "environments": {"production": {
        "instance_type": "t3.small", "instance_count": 2, "volume_size_gb": 40,
        "database": {"engine": "postgres", "storage_gb": 50}, "monitoring": {"cpu_alarm_threshold": 75}}}})
    (planned,) = plan_targets(record, config, Settings(state_root="/tmp/state", local_root="/tmp/local"))
    return planned


def deploy_like_the_program(aws, settings: dict, disk_gb: int, name: str = "acme-production") -> dict:
    """What programs/aws creates, made through the API; returns the stack's outputs as the runner reveals them."""
    ec2, tags = aws.client("ec2"), [{"Key": k, "Value": v} for k, v in settings["tags"].items()]
    net = settings["network"]
    vpc = ec2.create_vpc(CidrBlock=net["vpc_cidr"], TagSpecifications=[{"ResourceType": "vpc", "Tags": tags}])["Vpc"]["VpcId"]
    subnets = {tier: [ec2.create_subnet(VpcId=vpc, CidrBlock=cidr)["Subnet"]["SubnetId"] for cidr in net[f"{tier}_subnets"]]
               for tier in ("public", "private")}
    image = ec2.describe_images()["Images"][0]
    run = ec2.run_instances(ImageId=image["ImageId"], MinCount=settings["instance_count"], MaxCount=settings["instance_count"],
                            InstanceType=settings["instance_type"], SubnetId=subnets["private"][0],
                            BlockDeviceMappings=[{"DeviceName": image["RootDeviceName"], "Ebs": {"VolumeSize": disk_gb, "VolumeType": "gp3"}}])
    instance_ids = [i["InstanceId"] for i in run["Instances"]]
    db = settings["database"]
    created = aws.client("rds").create_db_instance(
        DBInstanceIdentifier=f"{name}-database", Engine=db["engine"], DBInstanceClass=db["instance_class"],
        AllocatedStorage=db["storage_gb"], MultiAZ=db["multi_az"], MasterUsername="app", ManageMasterUserPassword=True)["DBInstance"]
    for index, instance_id in enumerate(instance_ids):
        aws.client("cloudwatch").put_metric_alarm(
            AlarmName=f"{name}-cpu-high-app-{index + 1}", Namespace="AWS/EC2", MetricName="CPUUtilization", Statistic="Average", Period=300,
            EvaluationPeriods=2, ComparisonOperator="GreaterThanThreshold", Threshold=settings["monitoring"]["cpu_alarm_threshold"],
            Dimensions=[{"Name": "InstanceId", "Value": instance_id}], ActionsEnabled=settings["monitoring"]["alerts_enabled"])
    endpoint = created["Endpoint"]
    values = {"vpc_id": vpc, "vpc_cidr": net["vpc_cidr"], "public_subnet_ids": subnets["public"], "private_subnet_ids": subnets["private"],
              "instance_ids": instance_ids, "instance_type": settings["instance_type"],
              "database_endpoint": f"{endpoint['Address']}:{endpoint['Port']}", "database_username": "app"}
    return {k: {"value": v, "secret": False} for k, v in values.items()}


def test_the_aws_tests_of_both_tools_pass_on_what_the_plan_asked_for_and_name_a_smaller_disk(aws_api):
    tests = PostDeployTests(REPO / "programs", REPO / "terraform")
    pulumi_target, terraform_target = target("pulumi"), target("terraform")
    outputs = deploy_like_the_program(aws_api, pulumi_target.config, disk_gb=40)

    for planned in (pulumi_target, terraform_target):
        outcome = tests.test(planned, outputs)
        assert (outcome.status, outcome.passed, outcome.failures) == ("passed", 5, []), outcome
    assert tests.test(terraform_target, outputs).directory == "terraform/tests"

    small = deploy_like_the_program(aws_api, pulumi_target.config, disk_gb=20, name="acme-small")  # a second stack whose disks are too small
    outcome = tests.test(pulumi_target, small)
    assert outcome.status == "failed" and [f.name for f in outcome.failures] == [
        "test_aws_target.py::test_every_instance_has_the_planned_type_and_root_disk_size"]
    assert "root disk is 20 GB, 40 GB requested" in outcome.failures[0].message
