"""The AWS program under Pulumi's own mocks: what it would create, with which settings."""

from __future__ import annotations

import pulumi
import pytest

from engine.config import CustomerConfig, TenantRecord
from engine.planning import Settings, plan_targets


class Recorder(pulumi.runtime.Mocks):
    def __init__(self):
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args):
        self.resources.append(args)
        outputs = dict(args.inputs)
        if args.typ == "aws:ec2/instance:Instance":
            outputs["privateIp"] = "10.0.0.10"
        if args.typ == "aws:rds/instance:Instance":
            outputs["endpoint"] = "db.example:5432"
        return [f"{args.name}-id", outputs]

    def call(self, args):
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            return {"names": ["eu-west-1a", "eu-west-1b"], "zoneIds": ["a", "b"], "id": "eu-west-1"}
        if args.token == "aws:ec2/getAmi:getAmi":
            return {"id": "ami-0123456789", "architecture": "x86_64"}
        return {}


def run_program(settings: dict) -> Recorder:
    import programs.aws

    recorder = Recorder()
    pulumi.runtime.set_mocks(recorder, project="acme", stack=settings["environment"], preview=False)

    @pulumi.runtime.test
    def body():
        programs.aws.program(settings)

    body()
    return recorder


def settings_for(environment: str, **customer_extra) -> dict:
    record = TenantRecord.model_validate({"customer": "acme", "repository": "acme/app", "network_index": 9, "target": "aws"})
    config = CustomerConfig.model_validate({
        "project_name": "shop",
        "environments": {"staging": {"instance_type": "t3.micro"}, "production": {"instance_type": "m6i.large", "instance_count": 2, "volume_size_gb": 50}},
        **customer_extra,
    })
    return plan_targets(record, config, Settings("/s", "/l"), [environment])[0].config


def by_type(rec: Recorder, typ: str):
    return [r for r in rec.resources if r.typ == typ]


def test_network_has_public_and_private_subnets_with_routing():
    rec = run_program(settings_for("staging"))
    (vpc,) = by_type(rec, "aws:ec2/vpc:Vpc")
    assert vpc.inputs["cidrBlock"] == "10.2.68.0/22"
    subnets = by_type(rec, "aws:ec2/subnet:Subnet")
    assert sorted(s.inputs["cidrBlock"] for s in subnets) == ["10.2.68.0/24", "10.2.69.0/24", "10.2.70.0/24", "10.2.71.0/24"]
    assert len(by_type(rec, "aws:ec2/routeTable:RouteTable")) == 2
    assert len(by_type(rec, "aws:ec2/routeTableAssociation:RouteTableAssociation")) == 4
    assert len(by_type(rec, "aws:ec2/natGateway:NatGateway")) == 1


def test_compute_is_sized_by_the_customer_file():
    rec = run_program(settings_for("production"))
    instances = by_type(rec, "aws:ec2/instance:Instance")
    assert len(instances) == 2
    assert {i.inputs["instanceType"] for i in instances} == {"m6i.large"}
    assert all(i.inputs["rootBlockDevice"]["volumeSize"] == 50 for i in instances)
    assert all(i.inputs["metadataOptions"]["httpTokens"] == "required" for i in instances)


def test_database_and_monitoring_are_optional():
    plain = run_program(settings_for("staging"))
    assert not by_type(plain, "aws:rds/instance:Instance") and not by_type(plain, "aws:cloudwatch/metricAlarm:MetricAlarm")
    full = run_program(settings_for("production", database={"engine": "postgres", "multi_az": True}, monitoring={"alert_email": "ops@acme.example"}))
    (db,) = by_type(full, "aws:rds/instance:Instance")
    assert db.inputs["engine"] == "postgres" and db.inputs["multiAz"] is True and db.inputs["manageMasterUserPassword"] is True
    assert db.inputs["deletionProtection"] is True and "password" not in db.inputs
    assert len(by_type(full, "aws:cloudwatch/metricAlarm:MetricAlarm")) == 2
    (sub,) = by_type(full, "aws:sns/topicSubscription:TopicSubscription")
    assert sub.inputs["endpoint"] == "ops@acme.example"


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_every_taggable_resource_carries_customer_environment_and_managed_by(environment):
    rec = run_program(settings_for(environment, database={"engine": "mysql"}, monitoring={}))
    tagged = [r for r in rec.resources if "tags" in r.inputs]
    assert len(tagged) >= 10
    for r in tagged:
        assert r.inputs["tags"]["customer"] == "acme", r.name
        assert r.inputs["tags"]["environment"] == environment
        assert r.inputs["tags"]["managed-by"] == "managed-infra-engine"


def test_consumed_tenant_networks_are_peered():
    settings = settings_for("staging")
    settings["upstream"] = {"shared": {"vpc_id": "vpc-0abc", "vpc_cidr": "10.2.0.0/22"}, "other": {"vpc_cidr": "10.1.192.0/22"}}
    (peer,) = by_type(run_program(settings), "aws:ec2/vpcPeeringConnection:VpcPeeringConnection")
    assert peer.name == "peer-shared" and peer.inputs["peerVpcId"] == "vpc-0abc" and peer.inputs["autoAccept"] is True
