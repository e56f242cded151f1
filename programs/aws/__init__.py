"""The AWS target: per environment a VPC with subnets and routing, compute, optional RDS and monitoring.

CIDRs come from the planner (tenant /18 by network index, environment /22 by slot, /24 subnets),
so two customers or two environments never overlap.  Every resource carries the
customer/environment/managed-by tags.  The database password is generated and kept
by RDS in Secrets Manager (``manage_master_user_password``), so no secret ever passes
through the engine.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

_ENGINE_PORTS = {"postgres": 5432, "mysql": 3306}
_DEFAULT_VERSIONS = {"postgres": "16", "mysql": "8.0"}


def program(settings: dict) -> None:
    name = f"{settings['customer']}-{settings['environment']}"
    net = settings["network"]
    tags = settings["tags"]

    def tagged(resource: str) -> dict:
        return {**tags, "Name": f"{name}-{resource}"}

    vpc = aws.ec2.Vpc("vpc", cidr_block=net["vpc_cidr"], enable_dns_hostnames=True, enable_dns_support=True, tags=tagged("vpc"))
    igw = aws.ec2.InternetGateway("igw", vpc_id=vpc.id, tags=tagged("igw"))
    for upstream, outputs in sorted((settings.get("upstream") or {}).items()):
        if outputs.get("vpc_id"):
            # A consumed tenant's network (e.g. shared services): peer with it.
            aws.ec2.VpcPeeringConnection(f"peer-{upstream}", vpc_id=vpc.id, peer_vpc_id=outputs["vpc_id"], auto_accept=True,
                                         tags=tagged(f"peer-{upstream}"))
    zones = aws.get_availability_zones(state="available").names

    public, private = [], []
    for index, cidr in enumerate(net["public_subnets"]):
        public.append(aws.ec2.Subnet(f"public-{index}", vpc_id=vpc.id, cidr_block=cidr, availability_zone=zones[index % len(zones)],
                                     map_public_ip_on_launch=True, tags=tagged(f"public-{index}")))
    for index, cidr in enumerate(net["private_subnets"]):
        private.append(aws.ec2.Subnet(f"private-{index}", vpc_id=vpc.id, cidr_block=cidr, availability_zone=zones[index % len(zones)],
                                      tags=tagged(f"private-{index}")))

    public_rt = aws.ec2.RouteTable("public", vpc_id=vpc.id, routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": igw.id}], tags=tagged("public"))
    for index, subnet in enumerate(public):
        aws.ec2.RouteTableAssociation(f"public-{index}", subnet_id=subnet.id, route_table_id=public_rt.id)

    eip = aws.ec2.Eip("nat", domain="vpc", tags=tagged("nat"))
    nat = aws.ec2.NatGateway("nat", allocation_id=eip.id, subnet_id=public[0].id, tags=tagged("nat"), opts=pulumi.ResourceOptions(depends_on=[igw]))
    private_rt = aws.ec2.RouteTable("private", vpc_id=vpc.id, routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat.id}], tags=tagged("private"))
    for index, subnet in enumerate(private):
        aws.ec2.RouteTableAssociation(f"private-{index}", subnet_id=subnet.id, route_table_id=private_rt.id)

    app_sg = aws.ec2.SecurityGroup(
        "app", vpc_id=vpc.id, description=f"{name} application instances",
        ingress=[{"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_blocks": [net["vpc_cidr"]]}],
        egress=[{"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": ["0.0.0.0/0"]}],
        tags=tagged("app"),
    )
    arch = "arm64" if settings["instance_type"].split(".")[0].endswith("g") else "x86_64"
    ami = aws.ec2.get_ami(most_recent=True, owners=["amazon"], filters=[
        {"name": "name", "values": ["al2023-ami-2023.*"]}, {"name": "architecture", "values": [arch]}])

    instances = []
    for index in range(settings["instance_count"]):
        instances.append(aws.ec2.Instance(
            f"app-{index + 1}", ami=ami.id, instance_type=settings["instance_type"], subnet_id=private[index % len(private)].id,
            vpc_security_group_ids=[app_sg.id], root_block_device={"volume_size": settings["volume_size_gb"], "volume_type": "gp3", "encrypted": True},
            metadata_options={"http_tokens": "required"}, tags=tagged(f"app-{index + 1}"),
        ))

    pulumi.export("vpc_id", vpc.id)
    pulumi.export("vpc_cidr", net["vpc_cidr"])
    pulumi.export("public_subnet_ids", [s.id for s in public])
    pulumi.export("private_subnet_ids", [s.id for s in private])
    pulumi.export("instance_ids", [i.id for i in instances])
    pulumi.export("instance_ips", [i.private_ip for i in instances])
    pulumi.export("instance_type", settings["instance_type"])

    db = settings.get("database")
    if db:
        port = _ENGINE_PORTS[db["engine"]]
        db_sg = aws.ec2.SecurityGroup("database", vpc_id=vpc.id, description=f"{name} database",
                                      ingress=[{"protocol": "tcp", "from_port": port, "to_port": port, "security_groups": [app_sg.id]}],
                                      tags=tagged("database"))
        subnets = aws.rds.SubnetGroup("database", subnet_ids=[s.id for s in private], tags=tagged("database"))
        database = aws.rds.Instance(
            "database", engine=db["engine"], engine_version=db.get("engine_version") or _DEFAULT_VERSIONS[db["engine"]],
            instance_class=db["instance_class"], allocated_storage=db["storage_gb"], storage_encrypted=True,
            backup_retention_period=db["backup_retention_days"], multi_az=db["multi_az"],
            db_subnet_group_name=subnets.name, vpc_security_group_ids=[db_sg.id], username="app",
            manage_master_user_password=True, skip_final_snapshot=settings["environment"] != "production",
            final_snapshot_identifier=f"{name}-final" if settings["environment"] == "production" else None,
            deletion_protection=settings["environment"] == "production", tags=tagged("database"),
        )
        pulumi.export("database_endpoint", database.endpoint)
        pulumi.export("database_username", database.username)

    mon = settings.get("monitoring")
    if mon:
        topic = aws.sns.Topic("alerts", tags=tagged("alerts"))
        if mon.get("alert_email"):
            aws.sns.TopicSubscription("alerts-email", topic=topic.arn, protocol="email", endpoint=mon["alert_email"])
        for index, instance in enumerate(instances):
            aws.cloudwatch.MetricAlarm(
                f"cpu-high-app-{index + 1}", namespace="AWS/EC2", metric_name="CPUUtilization", statistic="Average",
                period=300, evaluation_periods=2, comparison_operator="GreaterThanThreshold", threshold=mon["cpu_alarm_threshold"],
                dimensions={"InstanceId": instance.id}, actions_enabled=mon["alerts_enabled"], alarm_actions=[topic.arn], tags=tagged("cpu"),
            )
        pulumi.export("alerts_topic_arn", topic.arn)
