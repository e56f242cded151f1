"""The GCP target: per environment a VPC network with subnets, Cloud NAT, firewall rules, Compute Engine instances,
an optional Cloud SQL database (PostgreSQL or MySQL) and Cloud Monitoring alerts.

The same stack as ``programs/aws``, role for role (docs/CLOUDS.md): CIDRs come from the planner (tenant /18 by
network index, environment /22 by slot, /24 subnets), the machine type and Cloud SQL tier from the one sizing table
(``engine/sizing.py``, already GCP's names in the settings), and every resource that takes labels carries
customer/environment/managed-by (the planner made the tags label-safe).

- Subnets: public-0/1 (for the provider's load balancers), private-0/1 for the instances (no external address;
  outbound through Cloud NAT on a reserved address).  GCP subnets span the region's zones; instances are spread over
  the private subnets and the zones.
- Firewall: custom networks deny all ingress; one rule lets 443 in from the environment's network to the instances.
- The database has no public address (``ipv4_enabled`` off).  It is reached through a Private Service Connect
  endpoint in private-1: its address is part of the tenant's plan, so peered tenants never overlap (private
  services access would take a Google-chosen range).  The password is generated (pulumi_random) and is the secret
  output ``database_password``.
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp
import pulumi_random as random

_PORTS = {"postgres": 5432, "mysql": 3306}
_DEFAULT_VERSIONS = {"postgres": "16", "mysql": "8.0"}
_IMAGES = {"x86_64": "debian-cloud/debian-12", "arm64": "debian-cloud/debian-12-arm64"}


def database_version(engine: str, version: str | None) -> str:
    """Cloud SQL's name for an engine version: postgres 16 -> POSTGRES_16, mysql 8.0 -> MYSQL_8_0."""
    return f"{engine.upper()}_{(version or _DEFAULT_VERSIONS[engine]).replace('.', '_')}"


def program(settings: dict) -> None:
    name = f"{settings['customer']}-{settings['environment']}"
    net = settings["network"]
    labels = settings["tags"]
    region = settings["region"]
    production = settings["environment"] == "production"
    zones = gcp.compute.get_zones(region=region, status="UP").names

    vpc = gcp.compute.Network("vpc", name=f"{name}-vpc", auto_create_subnetworks=False, routing_mode="REGIONAL",
                              description=f"{name}: {net['vpc_cidr']}")
    for upstream, outputs in sorted((settings.get("upstream") or {}).items()):
        if outputs.get("vpc_id"):
            # A consumed tenant's network (e.g. shared services): peer with it (the upstream's side peers back).
            gcp.compute.NetworkPeering(f"peer-{upstream}", name=f"{name}-peer-{upstream}", network=vpc.self_link, peer_network=outputs["vpc_id"])

    def subnet(resource: str, cidr: str) -> gcp.compute.Subnetwork:
        return gcp.compute.Subnetwork(resource, name=f"{name}-{resource}", network=vpc.id, region=region, ip_cidr_range=cidr,
                                      private_ip_google_access=True, stack_type="IPV4_ONLY")

    public = [subnet(f"public-{index}", cidr) for index, cidr in enumerate(net["public_subnets"])]
    private = [subnet(f"private-{index}", cidr) for index, cidr in enumerate(net["private_subnets"])]

    nat_ip = gcp.compute.Address("nat", name=f"{name}-nat", region=region, address_type="EXTERNAL", labels=labels)
    router = gcp.compute.Router("nat", name=f"{name}-router", network=vpc.id, region=region)
    gcp.compute.RouterNat("nat", name=f"{name}-nat", router=router.name, region=region, nat_ip_allocate_option="MANUAL_ONLY",
                          nat_ips=[nat_ip.self_link], source_subnetwork_ip_ranges_to_nat="LIST_OF_SUBNETWORKS",
                          subnetworks=[{"name": s.id, "source_ip_ranges_to_nats": ["ALL_IP_RANGES"]} for s in private],
                          log_config={"enable": True, "filter": "ERRORS_ONLY"})

    app_tag = f"{name}-app"
    gcp.compute.Firewall("app", name=f"{name}-app-https", network=vpc.id, direction="INGRESS", source_ranges=[net["vpc_cidr"]],
                         allows=[{"protocol": "tcp", "ports": ["443"]}], target_tags=[app_tag], description=f"{name} application instances")

    arch = settings["instance_architecture"]
    instances = []
    for index in range(settings["instance_count"]):
        label = f"app-{index + 1}"
        instances.append(gcp.compute.Instance(
            label, name=f"{name}-{label}", machine_type=settings["instance_type"], zone=zones[index % len(zones)],
            boot_disk={"auto_delete": True, "initialize_params": {"image": _IMAGES[arch], "size": settings["volume_size_gb"],
                                                                  "type": "pd-balanced", "labels": labels}},
            network_interfaces=[{"subnetwork": private[index % len(private)].id}],  # no access_configs: no external address
            metadata={"block-project-ssh-keys": "true", "enable-oslogin": "TRUE"},
            shielded_instance_config={"enable_secure_boot": True, "enable_vtpm": True, "enable_integrity_monitoring": True}
            if arch == "x86_64" else None,
            tags=[app_tag], labels=labels, allow_stopping_for_update=True,
        ))

    pulumi.export("vpc_id", vpc.id)
    pulumi.export("vpc_cidr", net["vpc_cidr"])
    pulumi.export("public_subnet_ids", [s.id for s in public])
    pulumi.export("private_subnet_ids", [s.id for s in private])
    pulumi.export("instance_ids", [i.id for i in instances])
    pulumi.export("instance_ips", [i.network_interfaces.apply(lambda n: n[0].network_ip if n else None) for i in instances])
    pulumi.export("instance_type", settings["instance_type"])

    db = settings.get("database")
    if db:
        project = gcp.organizations.get_client_config().project
        port = _PORTS[db["engine"]]
        days = db["backup_retention_days"]
        # Generated once and kept in the state; marked secret here, not only by the random provider's own engine metadata.
        password = pulumi.Output.secret(random.RandomPassword("database", length=32, min_lower=2, min_upper=2, min_numeric=2, special=False).result)
        instance = gcp.sql.DatabaseInstance(
            "database", region=region, database_version=database_version(db["engine"], db.get("engine_version")),
            deletion_protection=production,
            settings={
                "tier": db["instance_class"], "edition": "ENTERPRISE", "availability_type": "REGIONAL" if db["multi_az"] else "ZONAL",
                "disk_size": db["storage_gb"], "disk_type": "PD_SSD", "disk_autoresize": False, "deletion_protection_enabled": production,
                "backup_configuration": {"enabled": days > 0, "point_in_time_recovery_enabled": days > 0 and db["engine"] == "postgres",
                                         "binary_log_enabled": days > 0 and db["engine"] == "mysql",
                                         "backup_retention_settings": {"retained_backups": max(days, 1), "retention_unit": "COUNT"}},
                "ip_configuration": {"ipv4_enabled": False, "ssl_mode": "ENCRYPTED_ONLY",
                                     "psc_configs": [{"psc_enabled": True, "allowed_consumer_projects": [project]}]},
                "user_labels": labels,
            },
        )
        user = gcp.sql.User("database", instance=instance.name, name="app", password=password)
        endpoint = gcp.compute.Address("database", name=f"{name}-database", region=region, address_type="INTERNAL",
                                       subnetwork=private[1].id, labels=labels)
        gcp.compute.ForwardingRule("database", name=f"{name}-database", region=region, network=vpc.id, ip_address=endpoint.id,
                                   target=instance.psc_service_attachment_link, load_balancing_scheme="", labels=labels)
        pulumi.export("database_endpoint", pulumi.Output.concat(endpoint.address, f":{port}"))
        pulumi.export("database_username", user.name)
        pulumi.export("database_password", password)

    mon = settings.get("monitoring")
    if mon:
        # A Pub/Sub topic is the alerts' destination everything else subscribes to, as the SNS topic is on AWS.
        topic = gcp.pubsub.Topic("alerts", name=f"{name}-alerts", labels=labels)
        number = gcp.organizations.get_project().number
        gcp.pubsub.TopicIAMMember("alerts", topic=topic.id, role="roles/pubsub.publisher",
                                  member=f"serviceAccount:service-{number}@gcp-sa-monitoring-notification.iam.gserviceaccount.com")
        channels = [gcp.monitoring.NotificationChannel("alerts", display_name=f"{name} alerts", type="pubsub", labels={"topic": topic.id},
                                                       user_labels=labels)]
        if mon.get("alert_email"):
            channels.append(gcp.monitoring.NotificationChannel("alerts-email", display_name=f"{name} alerts (email)", type="email",
                                                               labels={"email_address": mon["alert_email"]}, user_labels=labels))
        for index, instance in enumerate(instances):
            gcp.monitoring.AlertPolicy(
                f"cpu-high-app-{index + 1}", display_name=f"{name} cpu high app-{index + 1}", combiner="OR", enabled=mon["alerts_enabled"],
                conditions=[{"display_name": f"CPU above {mon['cpu_alarm_threshold']}%", "condition_threshold": {
                    "filter": pulumi.Output.concat('metric.type="compute.googleapis.com/instance/cpu/utilization" AND resource.type="gce_instance" '
                                                   'AND resource.labels.instance_id="', instance.instance_id, '"'),
                    "comparison": "COMPARISON_GT", "threshold_value": mon["cpu_alarm_threshold"] / 100, "duration": "600s",
                    "aggregations": [{"alignment_period": "300s", "per_series_aligner": "ALIGN_MEAN"}]}}],
                notification_channels=[c.id for c in channels], user_labels=labels,
            )
        pulumi.export("alerts_topic_arn", topic.id)
