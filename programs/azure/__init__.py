"""The Azure target: per environment a resource group with a virtual network, subnets and NAT, network security
groups, virtual machines, an optional Azure Database for PostgreSQL flexible server and Azure Monitor alerts.

The same stack as ``programs/aws``, role for role (docs/CLOUDS.md): CIDRs come from the planner (tenant /18 by
network index, environment /22 by slot, /24 subnets), the VM size and database SKU from the one sizing table
(``engine/sizing.py``, already the Azure names in the settings), and every resource that takes tags carries
customer/environment/managed-by.

- Subnets: public-0/1 (no outbound of their own: for the provider's load balancers), private-0 for the virtual
  machines (outbound through the NAT gateway only: ``default_outbound_access`` off), private-1 for the database
  (delegated to the flexible server: its private address stays in the tenant's plan).  Azure subnets span the
  region's zones, so instances need not be spread over subnets as on AWS.
- Every subnet has a network security group that denies inbound traffic but what its tier needs (Azure's defaults
  allow everything from the virtual network): 443 from the network to the instances, the database port from the
  instances' subnet to the database.
- Credentials: the VMs' admin password and the database's are generated (pulumi_random) and exist only as secrets in
  the stack's state; the database password is the secret output ``database_password``.  SSH is closed (Run Command
  or Bastion reach the VMs, as SSM does on AWS).
"""

from __future__ import annotations

import pulumi
import pulumi_random as random
from pulumi_azure_native import authorization, compute, dbforpostgresql, monitor, network, privatedns, resources

_PORT = 5432
_DEFAULT_VERSION = "16"
_UBUNTU = {"x86_64": "server", "arm64": "server-arm64"}  # Canonical ubuntu-24_04-lts image SKUs (Gen2)


def _rules(allowed: list[dict]) -> list[dict]:
    """Inbound rules: ``allowed`` first, then deny everything else (overriding Azure's AllowVnetInBound)."""
    rules = [{"name": rule["name"], "priority": 100 + index, "direction": "Inbound", "access": "Allow", "protocol": "Tcp",
              "source_port_range": "*", "destination_address_prefix": "*", **{k: v for k, v in rule.items() if k != "name"}}
             for index, rule in enumerate(allowed)]
    rules.append({"name": "deny-all-inbound", "priority": 4096, "direction": "Inbound", "access": "Deny", "protocol": "*",
                  "source_address_prefix": "*", "source_port_range": "*", "destination_address_prefix": "*", "destination_port_range": "*"})
    return rules


def program(settings: dict) -> None:
    name = f"{settings['customer']}-{settings['environment']}"
    net = settings["network"]
    tags = settings["tags"]
    location = settings["region"]
    production = settings["environment"] == "production"

    group = resources.ResourceGroup("rg", resource_group_name=f"rg-{name}", location=location, tags=tags)
    placed = {"resource_group_name": group.name, "location": location, "tags": tags}
    vnet = network.VirtualNetwork("vnet", virtual_network_name=f"vnet-{name}", address_space={"address_prefixes": [net["vpc_cidr"]]}, **placed)
    for upstream, outputs in sorted((settings.get("upstream") or {}).items()):
        if outputs.get("vpc_id"):
            # A consumed tenant's network (e.g. shared services): peer with it (the upstream's side peers back).
            network.VirtualNetworkPeering(f"peer-{upstream}", resource_group_name=group.name, virtual_network_name=vnet.name,
                                          virtual_network_peering_name=f"peer-{upstream}", remote_virtual_network={"id": outputs["vpc_id"]},
                                          allow_virtual_network_access=True)

    nat_ip = network.PublicIPAddress("nat", public_ip_address_name=f"{name}-nat", sku={"name": "Standard"},
                                     public_ip_allocation_method="Static", **placed)
    nat = network.NatGateway("nat", nat_gateway_name=f"{name}-nat", sku={"name": "Standard"}, public_ip_addresses=[{"id": nat_ip.id}], **placed)

    public_nsg = network.NetworkSecurityGroup("public", network_security_group_name=f"{name}-public", security_rules=_rules([]), **placed)
    app_nsg = network.NetworkSecurityGroup("app", network_security_group_name=f"{name}-app", security_rules=_rules([
        {"name": "https-from-network", "source_address_prefix": net["vpc_cidr"], "destination_port_range": "443"}]), **placed)
    db = settings.get("database")
    app_cidr, db_cidr = net["private_subnets"][0], net["private_subnets"][1]
    db_nsg = network.NetworkSecurityGroup("database", network_security_group_name=f"{name}-database", security_rules=_rules([
        {"name": "database-from-app", "source_address_prefix": app_cidr, "destination_port_range": str(_PORT)}]), **placed)

    def subnet(resource: str, cidr: str, nsg: network.NetworkSecurityGroup, **extra) -> network.Subnet:
        return network.Subnet(resource, subnet_name=resource, resource_group_name=group.name, virtual_network_name=vnet.name,
                              address_prefix=cidr, network_security_group={"id": nsg.id}, default_outbound_access=False, **extra)

    public = [subnet(f"public-{index}", cidr, public_nsg) for index, cidr in enumerate(net["public_subnets"])]
    app_subnet = subnet("private-0", app_cidr, app_nsg, nat_gateway={"id": nat.id})
    delegation = [{"name": "postgres", "service_name": "Microsoft.DBforPostgreSQL/flexibleServers"}] if db else []
    db_subnet = subnet("private-1", db_cidr, db_nsg, delegations=delegation,
                       opts=pulumi.ResourceOptions(depends_on=[app_subnet]))  # Azure updates a network's subnets one at a time
    private = [app_subnet, db_subnet]

    arch = settings["instance_architecture"]
    # Generated once and kept in the state; marked secret here, not only by the random provider's own engine metadata.
    admin = pulumi.Output.secret(random.RandomPassword("admin", length=32, min_lower=2, min_upper=2, min_numeric=2, special=False).result)
    instances, nics = [], []
    for index in range(settings["instance_count"]):
        label = f"app-{index + 1}"
        nic = network.NetworkInterface(label, network_interface_name=f"{name}-{label}", ip_configurations=[
            {"name": "primary", "subnet": {"id": app_subnet.id}, "private_ip_allocation_method": "Dynamic"}], **placed)
        instances.append(compute.VirtualMachine(
            label, vm_name=f"{name}-{label}", hardware_profile={"vm_size": settings["instance_type"]},
            network_profile={"network_interfaces": [{"id": nic.id, "primary": True}]},
            os_profile={"computer_name": label, "admin_username": "azureuser", "admin_password": admin,
                        "linux_configuration": {"disable_password_authentication": False, "provision_vm_agent": True}},
            storage_profile={
                "image_reference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": _UBUNTU[arch], "version": "latest"},
                "os_disk": {"name": f"{name}-{label}-os", "create_option": "FromImage", "disk_size_gb": settings["volume_size_gb"],
                            "caching": "ReadWrite", "delete_option": "Delete", "managed_disk": {"storage_account_type": "StandardSSD_LRS"}},
            },
            # Trusted launch (secure boot, vTPM) where Azure offers it: not for Arm64 sizes.
            security_profile={"security_type": "TrustedLaunch", "uefi_settings": {"secure_boot_enabled": True, "v_tpm_enabled": True}}
            if arch == "x86_64" else None,
            **placed,
        ))
        nics.append(nic)

    pulumi.export("vpc_id", vnet.id)
    pulumi.export("vpc_cidr", net["vpc_cidr"])
    pulumi.export("public_subnet_ids", [s.id for s in public])
    pulumi.export("private_subnet_ids", [s.id for s in private])
    pulumi.export("instance_ids", [i.id for i in instances])
    pulumi.export("instance_ips", [n.ip_configurations.apply(lambda c: c[0].private_ip_address if c else None) for n in nics])
    pulumi.export("instance_type", settings["instance_type"])

    if db:
        zone = privatedns.PrivateZone("database", private_zone_name=f"{name}.private.postgres.database.azure.com", location="global",
                                      resource_group_name=group.name, tags=tags)
        link = privatedns.VirtualNetworkLink("database", private_zone_name=zone.name, virtual_network_link_name=f"{name}-database",
                                             virtual_network={"id": vnet.id}, registration_enabled=False, location="global",
                                             resource_group_name=group.name, tags=tags)
        password = pulumi.Output.secret(random.RandomPassword("database", length=32, min_lower=2, min_upper=2, min_numeric=2, special=False).result)
        server = dbforpostgresql.Server(
            "database", version=db.get("engine_version") or _DEFAULT_VERSION, sku={"name": db["instance_class"], "tier": db["tier"]},
            storage={"storage_size_gb": db["storage_gb"]}, backup={"backup_retention_days": db["backup_retention_days"], "geo_redundant_backup": "Disabled"},
            high_availability={"mode": "ZoneRedundant" if db["multi_az"] else "Disabled"},
            network={"delegated_subnet_resource_id": db_subnet.id, "private_dns_zone_arm_resource_id": zone.id, "public_network_access": "Disabled"},
            administrator_login="app", administrator_login_password=password,
            opts=pulumi.ResourceOptions(depends_on=[link]), **placed,
        )
        if production:  # deletion protection, as RDS's on AWS
            authorization.ManagementLockByScope("database", lock_name=f"{name}-database", level="CanNotDelete", scope=server.id,
                                                notes="production database: remove this lock to delete it")
        pulumi.export("database_endpoint", pulumi.Output.concat(server.fully_qualified_domain_name, f":{_PORT}"))
        pulumi.export("database_username", server.administrator_login)
        pulumi.export("database_password", password)

    mon = settings.get("monitoring")
    if mon:
        receivers = [{"name": "email", "email_address": mon["alert_email"], "use_common_alert_schema": True}] if mon.get("alert_email") else []
        group_alerts = monitor.ActionGroup("alerts", action_group_name=f"{name}-alerts", group_short_name=name[:12], enabled=True,
                                           email_receivers=receivers, resource_group_name=group.name, location="global", tags=tags)
        for index, instance in enumerate(instances):
            monitor.MetricAlert(
                f"cpu-high-app-{index + 1}", rule_name=f"{name}-cpu-high-app-{index + 1}", description=f"{name}: CPU above {mon['cpu_alarm_threshold']}%",
                severity=2, enabled=mon["alerts_enabled"], scopes=[instance.id], evaluation_frequency="PT5M", window_size="PT10M",
                target_resource_type="Microsoft.Compute/virtualMachines", target_resource_region=location,
                # typed: `criteria` is a union, so a plain dict's keys would reach Azure unconverted (odata_type, all_of)
                criteria=monitor.MetricAlertSingleResourceMultipleMetricCriteriaArgs(
                    odata_type="Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria", all_of=[monitor.MetricCriteriaArgs(
                        criterion_type="StaticThresholdCriterion", name="cpu", metric_name="Percentage CPU",
                        metric_namespace="Microsoft.Compute/virtualMachines", operator="GreaterThan",
                        threshold=mon["cpu_alarm_threshold"], time_aggregation="Average")]),
                actions=[{"action_group_id": group_alerts.id}], resource_group_name=group.name, location="global", tags=tags,
            )
        pulumi.export("alerts_topic_arn", group_alerts.id)
