"""The embedded default target: real resources on this machine, no cloud account.

Same shape as the AWS program (network with public/private subnets and routing,
compute sized by ``instance_type``, optional database and monitoring, tags), made of
the dynamic providers in ``resources.py``.
"""

from __future__ import annotations

import ipaddress

import pulumi

from programs.local.resources import LocalDatabase, LocalInstance, LocalMonitor, LocalNetwork, LocalRouteTable, LocalSubnet


def program(settings: dict) -> None:
    root = settings["local_root"]
    net = settings["network"]
    tags = settings["tags"]

    spec = {"cidr": net["vpc_cidr"], "tags": tags}
    upstream = settings.get("upstream") or {}
    if upstream:
        # Peer with the networks of the stacks this tenant consumes (their outputs, passed by the engine).
        spec["peers"] = [{"customer": name, **upstream[name]} for name in sorted(upstream)]
    network = LocalNetwork("vpc", f"{root}/network/network.json", spec)
    child = pulumi.ResourceOptions(depends_on=[network])

    subnets = {}
    for tier in ("public", "private"):
        for index, cidr in enumerate(net[f"{tier}_subnets"]):
            name = f"{tier}-{chr(ord('a') + index)}"
            subnets[name] = LocalSubnet(
                f"subnet-{name}", f"{root}/network/subnets/{name}.json", {"cidr": cidr, "tier": tier, "tags": tags}, child
            )
    for tier, gateway in (("public", "internet-gateway"), ("private", "nat-gateway")):
        members = sorted(n for n in subnets if n.startswith(tier))
        LocalRouteTable(
            f"routes-{tier}",
            f"{root}/network/routes/{tier}.json",
            {"routes": [{"destination": "0.0.0.0/0", "target": gateway}], "subnets": members, "tags": tags},
            pulumi.ResourceOptions(depends_on=[subnets[m] for m in members]),
        )

    instances = []
    private = [n for n in sorted(subnets) if n.startswith("private")]
    for index in range(settings["instance_count"]):
        subnet_name = private[index % len(private)]
        subnet_cidr = ipaddress.ip_network(net["private_subnets"][index % len(private)])
        spec = {
            "instance_type": settings["instance_type"],
            "vcpu": settings["instance_vcpu"],
            "memory_mib": settings["instance_memory_mib"],
            "volume_size_gb": settings["volume_size_gb"],
            "subnet": subnet_name,
            "private_ip": str(subnet_cidr.network_address + 10 + index // len(private)),
            "tags": tags,
        }
        instances.append(
            LocalInstance(f"app-{index + 1}", f"{root}/compute/app-{index + 1}", spec, pulumi.ResourceOptions(depends_on=[subnets[subnet_name]]))
        )

    pulumi.export("vpc_cidr", net["vpc_cidr"])
    pulumi.export("network_path", network.path)
    pulumi.export("instance_ips", pulumi.Output.all(*[i.private_ip for i in instances]))
    pulumi.export("instance_type", settings["instance_type"])

    db = settings.get("database")
    if db:
        database = LocalDatabase(
            "database",
            f"{root}/database/{settings['project_name']}.sqlite3",
            {**db, "subnets": private, "tags": tags},
            pulumi.ResourceOptions(depends_on=[subnets[n] for n in private]),
        )
        pulumi.export("database_endpoint", database.endpoint)
        pulumi.export("database_username", database.username)
        pulumi.export("database_password", database.password)

    mon = settings.get("monitoring")
    if mon:
        alarms = [
            {"name": f"cpu-high-app-{i + 1}", "metric": "cpu_percent", "threshold": mon["cpu_alarm_threshold"], "enabled": mon["alerts_enabled"]}
            for i in range(settings["instance_count"])
        ]
        monitor = LocalMonitor(
            "monitoring",
            f"{root}/monitoring/alarms.json",
            {"alarms": alarms, "notify": mon.get("alert_email"), "retention_days": mon["retention_days"], "tags": tags},
            pulumi.ResourceOptions(depends_on=instances),
        )
        pulumi.export("monitoring_path", monitor.path)
