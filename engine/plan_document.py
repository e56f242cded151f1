"""One plan document for both tools: what a preview/plan would leave behind, normalized and secret-free.

Policy (``engine/policy.py``) and cost (``engine/cost.py``) read this document, never a tool's own
plan, so one Rego policy and one price model serve Pulumi and Terraform customers alike.

Each resource change carries

- ``address`` (Terraform's address; Pulumi's ``type::name``), ``raw_type`` (the tool's type) and a
  normalized ``type`` from one vocabulary (``RESOURCE_TYPES``: "instance", "database", "nat_gateway", …);
- ``action``: create | update | delete | replace | no-op;
- ``before``/``after``: the resource's *normalized attributes* (``instance_type``, ``root_volume_gb``,
  ``multi_az``, ``tags``, … — the same keys whichever tool planned it), ``None`` where the resource
  does not exist on that side;
- ``planned``: the tool's own planned values, with everything sensitive masked.

Secrets never enter: Terraform values are masked by their ``*_sensitive`` markers (and every value the
plan marks sensitive anywhere else) with ``engine/diffs.py``'s walker; Pulumi secrets arrive as secret
envelopes in the engine events and are masked the same way, before anything is kept.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from engine.diffs import redact
from engine.results import SECRET_MASK
from engine.tfplan import _merge_sensitive, known_secrets

SCHEMA_VERSION = 1
ACTIONS = ("create", "update", "delete", "replace", "no-op")
# The normalized vocabulary of resource types (policies and the price catalog use these names).
RESOURCE_TYPES = (
    "network", "subnet", "route_table", "route_table_association", "internet_gateway", "nat_gateway", "public_ip",
    "security_group", "instance", "volume", "database", "db_subnet_group", "alarm", "notification_topic",
    "notification_subscription", "network_peering",
    # what the Azure and GCP stacks add (programs/azure, programs/gcp, terraform/azure, terraform/gcp)
    "resource_group", "association", "network_interface", "router", "private_ip", "private_endpoint", "dns_zone",
    "dns_zone_link", "database_user", "generated_secret", "iam_binding", "management_lock",
    "other",
)
UNKNOWN = "[unknown]"  # a value only known after apply (Pulumi's unknown sentinel, Terraform's after_unknown)
_PULUMI_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
# Settings keys that are the engine's bookkeeping rather than the customer's choice.
_NOT_SETTINGS = ("local_root", "upstream")


@dataclass(frozen=True)
class PlannedResource:
    address: str
    type: str  # one of RESOURCE_TYPES
    raw_type: str
    action: str  # one of ACTIONS
    before: dict | None = None  # normalized attributes, None when the resource does not exist before
    after: dict | None = None  # normalized attributes, None when it will not exist after
    planned: dict = field(default_factory=dict)  # the tool's planned values, sensitive parts masked


@dataclass(frozen=True)
class PlanDocument:
    """The normalized plan of one customer × environment."""

    tenant: str
    environment: str
    tool: str  # pulumi | terraform
    target: str  # local | aws | azure | gcp
    region: str
    settings: dict  # the validated settings the planner made from the customer file for this environment
    properties: dict  # the tenant's custom properties (infrastructure_tools, …)
    resources: tuple[PlannedResource, ...] = ()
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict:
        return asdict(self) | {"resources": [asdict(r) for r in self.resources]}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True, default=str)

    @classmethod
    def from_dict(cls, data: dict) -> "PlanDocument":
        resources = tuple(PlannedResource(**r) for r in data.get("resources") or [])
        return cls(**{**data, "resources": resources})


def _settings(target) -> dict:
    return {k: v for k, v in (target.config or {}).items() if k not in _NOT_SETTINGS}


def target_properties(target) -> dict:
    """The custom properties a target was planned from (what the runner knows; the caller may pass the tenant's own)."""
    return {"infrastructure_tools": [target.tool, *target.post_steps], "terraform_version": target.tool_version}


def _document(target, properties: dict | None, resources: Iterable[PlannedResource]) -> PlanDocument:
    order = {a: i for i, a in enumerate(ACTIONS)}
    return PlanDocument(
        tenant=target.customer, environment=target.environment, tool=target.tool, target=target.program,
        region=str((target.config or {}).get("region") or ""), settings=_settings(target),
        properties=dict(properties) if properties is not None else target_properties(target),
        resources=tuple(sorted(resources, key=lambda r: (r.address, order.get(r.action, 9)))),
    )


# ---------------------------------------------------------------------------------------------
# Normalization: a tool's type and values -> the vocabulary


_TERRAFORM_TYPES = {
    "aws_vpc": "network", "aws_subnet": "subnet", "aws_route_table": "route_table",
    "aws_route_table_association": "route_table_association", "aws_internet_gateway": "internet_gateway",
    "aws_nat_gateway": "nat_gateway", "aws_eip": "public_ip", "aws_security_group": "security_group",
    "aws_instance": "instance", "aws_ebs_volume": "volume", "aws_db_instance": "database",
    "aws_db_subnet_group": "db_subnet_group", "aws_cloudwatch_metric_alarm": "alarm", "aws_sns_topic": "notification_topic",
    "aws_sns_topic_subscription": "notification_subscription", "aws_vpc_peering_connection": "network_peering",
    "enginelocal_disk": "volume",
    # Azure (terraform/azure)
    "azurerm_resource_group": "resource_group", "azurerm_virtual_network": "network", "azurerm_subnet": "subnet",
    "azurerm_public_ip": "public_ip", "azurerm_nat_gateway": "nat_gateway", "azurerm_nat_gateway_public_ip_association": "association",
    "azurerm_network_security_group": "security_group", "azurerm_subnet_network_security_group_association": "association",
    "azurerm_subnet_nat_gateway_association": "association", "azurerm_network_interface": "network_interface",
    "azurerm_linux_virtual_machine": "instance", "azurerm_private_dns_zone": "dns_zone",
    "azurerm_private_dns_zone_virtual_network_link": "dns_zone_link", "azurerm_postgresql_flexible_server": "database",
    "azurerm_management_lock": "management_lock", "azurerm_monitor_action_group": "notification_topic",
    "azurerm_monitor_metric_alert": "alarm", "azurerm_virtual_network_peering": "network_peering",
    # GCP (terraform/gcp)
    "google_compute_network": "network", "google_compute_subnetwork": "subnet", "google_compute_address": "public_ip",
    "google_compute_router": "router", "google_compute_router_nat": "nat_gateway", "google_compute_firewall": "security_group",
    "google_compute_instance": "instance", "google_sql_database_instance": "database", "google_sql_user": "database_user",
    "google_compute_forwarding_rule": "private_endpoint", "google_pubsub_topic": "notification_topic",
    "google_pubsub_topic_iam_member": "iam_binding", "google_monitoring_notification_channel": "notification_subscription",
    "google_monitoring_alert_policy": "alarm", "google_compute_network_peering": "network_peering",
    "random_password": "generated_secret", "random_id": "generated_secret",
}
_PULUMI_TYPES = {
    "aws:ec2/vpc:Vpc": "network", "aws:ec2/subnet:Subnet": "subnet", "aws:ec2/routeTable:RouteTable": "route_table",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "route_table_association",
    "aws:ec2/internetGateway:InternetGateway": "internet_gateway", "aws:ec2/natGateway:NatGateway": "nat_gateway",
    "aws:ec2/eip:Eip": "public_ip", "aws:ec2/securityGroup:SecurityGroup": "security_group",
    "aws:ec2/instance:Instance": "instance", "aws:ebs/volume:Volume": "volume", "aws:rds/instance:Instance": "database",
    "aws:rds/subnetGroup:SubnetGroup": "db_subnet_group", "aws:cloudwatch/metricAlarm:MetricAlarm": "alarm",
    "aws:sns/topic:Topic": "notification_topic", "aws:sns/topicSubscription:TopicSubscription": "notification_subscription",
    "aws:ec2/vpcPeeringConnection:VpcPeeringConnection": "network_peering",
    # Azure (programs/azure)
    "azure-native:resources:ResourceGroup": "resource_group", "azure-native:network:VirtualNetwork": "network",
    "azure-native:network:Subnet": "subnet", "azure-native:network:PublicIPAddress": "public_ip",
    "azure-native:network:NatGateway": "nat_gateway", "azure-native:network:NetworkSecurityGroup": "security_group",
    "azure-native:network:NetworkInterface": "network_interface", "azure-native:compute:VirtualMachine": "instance",
    "azure-native:privatedns:PrivateZone": "dns_zone", "azure-native:privatedns:VirtualNetworkLink": "dns_zone_link",
    "azure-native:dbforpostgresql:Server": "database", "azure-native:authorization:ManagementLockByScope": "management_lock",
    "azure-native:monitor:ActionGroup": "notification_topic", "azure-native:monitor:MetricAlert": "alarm",
    "azure-native:network:VirtualNetworkPeering": "network_peering",
    # GCP (programs/gcp)
    "gcp:compute/network:Network": "network", "gcp:compute/subnetwork:Subnetwork": "subnet", "gcp:compute/address:Address": "public_ip",
    "gcp:compute/router:Router": "router", "gcp:compute/routerNat:RouterNat": "nat_gateway", "gcp:compute/firewall:Firewall": "security_group",
    "gcp:compute/instance:Instance": "instance", "gcp:sql/databaseInstance:DatabaseInstance": "database", "gcp:sql/user:User": "database_user",
    "gcp:compute/forwardingRule:ForwardingRule": "private_endpoint", "gcp:pubsub/topic:Topic": "notification_topic",
    "gcp:pubsub/topicIAMMember:TopicIAMMember": "iam_binding", "gcp:monitoring/notificationChannel:NotificationChannel": "notification_subscription",
    "gcp:monitoring/alertPolicy:AlertPolicy": "alarm", "gcp:compute/networkPeering:NetworkPeering": "network_peering",
    "random:index/randomPassword:RandomPassword": "generated_secret",
}
# The local target's resources (Pulumi's dynamic providers and Terraform's enginelocal_document) say what
# they are in their definition's "kind".
_LOCAL_KINDS = {"network": "network", "subnet": "subnet", "route-table": "route_table", "instance": "instance",
                "database": "database", "monitor": "alarm"}
_LOCAL_PULUMI_TYPES = {"local:Network": "network", "local:Subnet": "subnet", "local:RouteTable": "route_table",
                       "local:Instance": "instance", "local:Database": "database", "local:Monitor": "alarm"}


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _first(value: Any) -> dict:
    """A nested block: Terraform writes it as a one-element list, Pulumi as an object."""
    if isinstance(value, list):
        return _dict(value[0]) if value else {}
    return _dict(value)


def _number(value: Any) -> float | int | None:
    """A number, whole ones as ``int`` (Pulumi passes every number as a float: 50.0 GB is 50 GB)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    return int(value) if float(value).is_integer() else value


def _tags(value: Any) -> dict | None:
    if value == SECRET_MASK:
        return {}
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else None


def _local_attributes(kind: str, spec: dict) -> dict:
    """Attributes of a local-target resource from its definition's spec."""
    tags = _tags(spec.get("tags"))
    if kind == "instance":
        # the local disk stands in for the AWS programs' gp3 root volume
        return {"instance_type": spec.get("instance_type"), "root_volume_gb": _number(spec.get("volume_size_gb")), "root_volume_type": "gp3",
                "tags": tags}
    if kind == "database":
        return {"engine": spec.get("engine"), "instance_class": spec.get("instance_class"), "storage_gb": _number(spec.get("storage_gb")),
                "multi_az": bool(spec.get("multi_az")), "backup_retention_days": _number(spec.get("backup_retention_days")),
                "publicly_accessible": bool(spec.get("publicly_accessible", False)), "storage_encrypted": True, "tags": tags}
    if kind == "monitor":
        return {"alarm_count": len(spec.get("alarms") or []), "tags": tags}
    if kind == "route-table":
        targets = sorted({str(r.get("target")).replace("-", "_") for r in spec.get("routes") or [] if isinstance(r, dict)})
        return {"routes_to": targets, "tags": tags}
    if kind in ("network", "subnet"):
        return {"cidr": spec.get("cidr"), **({"tier": spec.get("tier")} if kind == "subnet" else {}), "tags": tags}
    return {"tags": tags}


def _aws_attributes(kind: str, v: dict, *, pulumi: bool) -> dict:
    """Attributes of an AWS resource from its planned values (Terraform's snake_case or Pulumi's camelCase)."""
    def get(snake: str, camel: str) -> Any:
        return v.get(camel if pulumi else snake)

    tags = _tags(v.get("tags_all")) if not pulumi and isinstance(v.get("tags_all"), dict) else _tags(v.get("tags"))
    if kind == "instance":
        root = _first(get("root_block_device", "rootBlockDevice"))
        return {"instance_type": get("instance_type", "instanceType"), "root_volume_gb": _number(root.get("volumeSize" if pulumi else "volume_size")),
                "root_volume_type": root.get("volumeType" if pulumi else "volume_type") or "gp2", "tags": tags}
    if kind == "volume":
        return {"size_gb": _number(v.get("size")), "volume_type": get("type", "type") or "gp2", "tags": tags}
    if kind == "database":
        return {"engine": v.get("engine"), "instance_class": get("instance_class", "instanceClass"),
                "storage_gb": _number(get("allocated_storage", "allocatedStorage")), "multi_az": bool(get("multi_az", "multiAz")),
                "backup_retention_days": _number(get("backup_retention_period", "backupRetentionPeriod")),
                "publicly_accessible": bool(get("publicly_accessible", "publiclyAccessible")),
                "storage_encrypted": bool(get("storage_encrypted", "storageEncrypted")), "tags": tags}
    if kind == "alarm":
        return {"alarm_count": 1, "tags": tags}
    if kind == "route_table":
        routes = v.get("routes" if pulumi else "route") or []
        targets = set()
        for route in routes if isinstance(routes, list) else []:
            route = _dict(route)
            if route.get("natGatewayId" if pulumi else "nat_gateway_id"):
                targets.add("nat_gateway")
            if route.get("gatewayId" if pulumi else "gateway_id"):
                targets.add("internet_gateway")
        return {"routes_to": sorted(targets), "tags": tags}
    if kind in ("network", "subnet"):
        return {"cidr": get("cidr_block", "cidrBlock"), "tags": tags}
    if kind in ("route_table_association", "notification_subscription"):
        return {"tags": None}  # these AWS resources take no tags
    return {"tags": tags}


def _path(v: Any, *keys: Any) -> Any:
    """``v[k1][k2]…`` through Terraform's one-element block lists and Pulumi's objects alike; None where absent."""
    for key in keys:
        v = _first(v) if not isinstance(key, int) else v
        if isinstance(key, int):
            v = v[key] if isinstance(v, list) and len(v) > key else None
        else:
            v = v.get(key) if isinstance(v, dict) else None
        if v is None:
            return None
    return v


def _azure_attributes(kind: str, v: dict, *, pulumi: bool) -> dict:
    """Attributes of an Azure resource from azure-native's inputs (camelCase) or azurerm's planned values (snake_case)."""
    tags = _tags(v.get("tags"))
    if kind == "instance":
        if pulumi:
            disk = _path(v, "storageProfile", "osDisk")
            return {"instance_type": _path(v, "hardwareProfile", "vmSize"), "root_volume_gb": _number(_path(disk, "diskSizeGB")),
                    "root_volume_type": _path(disk, "managedDisk", "storageAccountType") or "StandardSSD_LRS", "tags": tags}
        return {"instance_type": v.get("size"), "root_volume_gb": _number(_path(v, "os_disk", "disk_size_gb")),
                "root_volume_type": _path(v, "os_disk", "storage_account_type") or "StandardSSD_LRS", "tags": tags}
    if kind == "database":
        if pulumi:
            sku, storage, ha = _path(v, "sku", "name"), _number(_path(v, "storage", "storageSizeGB")), _path(v, "highAvailability", "mode")
            days, public = _number(_path(v, "backup", "backupRetentionDays")), _path(v, "network", "publicNetworkAccess") != "Disabled"
        else:
            raw = v.get("sku_name")
            sku = raw.split("_", 1)[1] if isinstance(raw, str) and "_" in raw else raw  # B_Standard_B1ms -> Standard_B1ms
            mb = _number(v.get("storage_mb"))
            storage = _number(mb / 1024) if isinstance(mb, (int, float)) else None
            ha, days = _path(v, "high_availability", "mode"), _number(v.get("backup_retention_days"))
            public = v.get("public_network_access_enabled") is not False
        return {"engine": "postgres", "instance_class": sku, "storage_gb": storage, "multi_az": ha == "ZoneRedundant",
                "backup_retention_days": days, "publicly_accessible": public, "storage_encrypted": True, "tags": tags}
    if kind == "alarm":
        return {"alarm_count": 1, "tags": tags}
    if kind == "network":
        return {"cidr": _path(v, "addressSpace", "addressPrefixes", 0) if pulumi else _path(v, "address_space", 0), "tags": tags}
    if kind == "subnet":
        return {"cidr": v.get("addressPrefix") if pulumi else _path(v, "address_prefixes", 0), "tags": None}  # Azure subnets take no tags
    if kind in ("association", "network_peering", "generated_secret", "management_lock"):
        return {"tags": None}
    return {"tags": tags}


def _gcp_attributes(kind: str, v: dict, *, pulumi: bool) -> dict:
    """Attributes of a GCP resource from pulumi-gcp's inputs (camelCase) or google's planned values (snake_case)."""
    def get(snake: str, camel: str) -> Any:
        return v.get(camel if pulumi else snake)

    labels = v.get("terraform_labels") if not pulumi and isinstance(v.get("terraform_labels"), dict) else get("labels", "labels")
    tags = _tags(get("user_labels", "userLabels") if kind in ("alarm", "notification_subscription") else labels)
    if kind == "instance":
        disk = _path(v, "bootDisk" if pulumi else "boot_disk", "initializeParams" if pulumi else "initialize_params")
        return {"instance_type": get("machine_type", "machineType"), "root_volume_gb": _number(_path(disk, "size")),
                "root_volume_type": _path(disk, "type") or "pd-standard", "tags": tags}
    if kind == "database":
        settings = _first(v.get("settings"))
        version = str(get("database_version", "databaseVersion") or "")
        backup = _first(settings.get("backupConfiguration" if pulumi else "backup_configuration"))
        kept = _path(backup, "backupRetentionSettings" if pulumi else "backup_retention_settings", "retainedBackups" if pulumi else "retained_backups")
        ip = _first(settings.get("ipConfiguration" if pulumi else "ip_configuration"))
        return {"engine": version.split("_", 1)[0].lower() or None, "instance_class": settings.get("tier"),
                "storage_gb": _number(settings.get("diskSize" if pulumi else "disk_size")),
                "multi_az": settings.get("availabilityType" if pulumi else "availability_type") == "REGIONAL",
                "backup_retention_days": _number(kept) if backup.get("enabled") else 0,
                "publicly_accessible": ip.get("ipv4Enabled" if pulumi else "ipv4_enabled") is not False, "storage_encrypted": True,
                "tags": _tags(settings.get("userLabels" if pulumi else "user_labels"))}
    if kind == "alarm":
        return {"alarm_count": 1, "tags": tags}
    if kind == "subnet":
        return {"cidr": get("ip_cidr_range", "ipCidrRange"), "tags": None}  # GCP networks and subnets take no labels
    if kind in ("network", "router", "nat_gateway", "security_group", "database_user", "iam_binding", "network_peering", "generated_secret"):
        return {"cidr": None, "tags": None} if kind == "network" else {"tags": None}
    return {"tags": tags}


def _attributes(raw_type: str, kind: str, values: dict, *, pulumi: bool) -> tuple[str, dict]:
    """(normalized type, attributes) of a cloud resource: AWS's, Azure's or GCP's reader by the type's provider."""
    if raw_type.startswith(("azure-native:", "azurerm_")):
        return kind, _azure_attributes(kind, values, pulumi=pulumi)
    if raw_type.startswith(("gcp:", "google_", "random")):
        if kind == "public_ip" and values.get("addressType" if pulumi else "address_type") == "INTERNAL":
            kind = "private_ip"  # an internal address (the database's endpoint) is not a public IPv4
        return kind, _gcp_attributes(kind, values, pulumi=pulumi)
    return kind, _aws_attributes(kind, values, pulumi=pulumi)


def _unknowns_to_marker(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _unknowns_to_marker(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unknowns_to_marker(v) for v in value]
    return UNKNOWN if value == _PULUMI_UNKNOWN else value


def _public(values: Any) -> dict:
    """The tool's values without its bookkeeping keys (``__provider``, ``__defaults``, …)."""
    return {k: v for k, v in _dict(values).items() if not str(k).startswith("__")}


# ---------------------------------------------------------------------------------------------
# Terraform / OpenTofu: ``show -json``

_TF_ACTIONS = {("no-op",): "no-op", ("read",): "no-op", ("create",): "create", ("update",): "update", ("delete",): "delete",
               ("delete", "create"): "replace", ("create", "delete"): "replace", ("forget",): "delete"}


def _fill_unknown(after: Any, unknown: Any) -> Any:
    """Terraform leaves values known only after apply out of ``after``; mark them instead."""
    if unknown is True:
        return UNKNOWN
    if isinstance(unknown, dict):
        base = dict(after) if isinstance(after, dict) else {}
        for key, marker in unknown.items():
            base[key] = _fill_unknown(base.get(key), marker)
        return base
    if isinstance(unknown, list) and isinstance(after, list):
        return [_fill_unknown(a, unknown[i] if i < len(unknown) else False) for i, a in enumerate(after)]
    return after


def _terraform_side(raw_type: str, values: Any) -> tuple[str, dict, dict]:
    """(normalized type, attributes, planned values) of one side of a Terraform change, values already masked."""
    values = _dict(values)
    if raw_type == "enginelocal_document":
        content = values.get("content")
        try:
            document = json.loads(content) if isinstance(content, str) else _dict(content)
        except ValueError:
            document = {}
        kind = str(_dict(document).get("kind") or "")
        planned = {**values, "content": document} if document else values
        attributes = _local_attributes(kind, _dict(document.get("spec")))
        if kind == "instance":
            attributes["root_volume_gb"] = None  # the module's disk is a resource of its own (enginelocal_disk), priced there
        return _LOCAL_KINDS.get(kind, "other"), attributes, planned
    if raw_type == "enginelocal_disk":
        # the local disk stands in for the AWS module's gp3 root volume
        return "volume", {"size_gb": _number(values.get("size_gb")), "volume_type": "gp3", "tags": None}, values
    kind, attributes = _attributes(raw_type, _TERRAFORM_TYPES.get(raw_type, "other"), values, pulumi=False)
    return kind, attributes, values


def from_terraform_plan(plan: dict, target, properties: dict | None = None) -> PlanDocument:
    """The plan document of a ``tofu``/``terraform show -json`` plan of ``target`` (a ``StackTarget``).

    Every value is masked where ``before_sensitive``/``after_sensitive`` mark it (at any depth) and
    wherever a value the plan marks sensitive elsewhere turns up; data sources are left out.
    """
    secrets = known_secrets(plan)
    resources: list[PlannedResource] = []
    for entry in plan.get("resource_changes") or []:
        if entry.get("mode") == "data":
            continue
        change = entry.get("change") or {}
        action = _TF_ACTIONS.get(tuple(change.get("actions") or ["no-op"]), "update")
        raw_type = str(entry.get("type") or "?")
        sensitive = _merge_sensitive(change.get("before_sensitive"), change.get("after_sensitive"))
        before = after = None
        planned: dict = {}
        kind = _TERRAFORM_TYPES.get(raw_type, "other")
        if change.get("before") is not None and action != "create":
            kind, before, planned = _terraform_side(raw_type, redact(change.get("before"), sensitive, secrets))
        if action != "delete" and change.get("after") is not None:
            after_values = _fill_unknown(redact(change.get("after"), sensitive, secrets), change.get("after_unknown"))
            kind, after, planned = _terraform_side(raw_type, after_values)
        resources.append(PlannedResource(address=str(entry.get("address") or "?"), type=kind, raw_type=raw_type, action=action,
                                         before=before, after=after, planned=planned))
    return _document(target, properties, resources)


# ---------------------------------------------------------------------------------------------
# Pulumi: the preview's engine events (ResourcePreEvent: metadata.old/new.inputs)


@dataclass(frozen=True)
class PulumiStep:
    """One step of a Pulumi preview, with its inputs already masked (see ``step_from_event``)."""

    urn: str
    type: str
    op: str
    old_inputs: dict | None = None
    new_inputs: dict | None = None


_PULUMI_ACTIONS = {"create": "create", "update": "update", "delete": "delete", "replace": "replace", "same": "no-op",
                   "create-replacement": "replace", "delete-replaced": None, "discard": "delete", "import": "create",
                   "read": None, "refresh": None, "remove-pending-replace": None}


def _inputs(state: Any) -> dict | None:
    if state is None:
        return None
    inputs = getattr(state, "inputs", None)
    if inputs is None:
        inputs = getattr(state, "outputs", None)
    return redact(_public(inputs)) if inputs is not None else None  # secret envelopes masked here, before anything keeps them


def step_from_event(event: Any) -> PulumiStep | None:
    """The step of an Automation API ``EngineEvent`` (``resource_pre_event``), secrets masked; else None."""
    pre = getattr(event, "resource_pre_event", None)
    if pre is None:
        return None
    meta = pre.metadata
    op = meta.op.value if hasattr(meta.op, "value") else str(meta.op)
    if str(meta.type).startswith("pulumi:"):  # the stack and providers are the tool's own
        return None
    return PulumiStep(urn=str(meta.urn), type=str(meta.type), op=op, old_inputs=_inputs(meta.old), new_inputs=_inputs(meta.new))


def _short_type(raw: str) -> str:
    return raw.split("dynamic/", 1)[1] if "dynamic/" in raw else raw


def _pulumi_side(raw_type: str, inputs: dict) -> tuple[str, dict]:
    short = _short_type(raw_type)
    if short in _LOCAL_PULUMI_TYPES:
        kind = _LOCAL_PULUMI_TYPES[short]
        local_kind = {"route_table": "route-table", "alarm": "monitor"}.get(kind, kind)
        return kind, _local_attributes(local_kind, _dict(inputs.get("spec")))
    return _attributes(short, _PULUMI_TYPES.get(short, "other"), inputs, pulumi=True)


def from_pulumi_preview(steps: Iterable[PulumiStep], target, properties: dict | None = None) -> PlanDocument:
    """The plan document of a Pulumi preview of ``target`` from its steps (planned inputs, secrets already masked).

    A replacement shows up as several steps (create-replacement, replace, delete-replaced): one change.
    """
    by_urn: dict[str, PlannedResource] = {}
    for step in steps:
        action = _PULUMI_ACTIONS.get(step.op, "update")
        if action is None:
            continue
        short = _short_type(step.type)
        address = f"{short}::{step.urn.rsplit('::', 1)[-1]}"
        new = _unknowns_to_marker(redact(step.new_inputs)) if step.new_inputs is not None else None
        old = redact(step.old_inputs) if step.old_inputs is not None else None
        kind, before, after = _PULUMI_TYPES.get(short) or _LOCAL_PULUMI_TYPES.get(short) or "other", None, None
        if old is not None and action != "create":
            kind, before = _pulumi_side(step.type, old)
        if new is not None and action != "delete":
            kind, after = _pulumi_side(step.type, new)
        if address in by_urn and action != "replace":
            continue  # the replace step itself (with old and new) wins over its companions
        by_urn[address] = PlannedResource(address=address, type=kind, raw_type=short, action=action, before=before, after=after,
                                          planned=new if new is not None else (old or {}))
    return _document(target, properties, by_urn.values())


# ---------------------------------------------------------------------------------------------
# The desired state, without a tool: what the provider's programs create for a target's settings


def desired_document(target, properties: dict | None = None) -> PlanDocument:
    """Every resource the provider's program (``programs/<target>``, ``terraform/``) creates for ``target``'s settings,
    as creates — no tool runs, so a fleet's monthly cost is priced in milliseconds (``engine cost --all``).

    It models the programs: a test prices it against real previews and plans of the same settings, so the two
    cannot drift apart unnoticed.  Consumed tenants' network peerings are left out (they carry no charge).
    """
    s = target.config or {}
    tags = dict(s.get("tags") or {})
    net = s.get("network") or {}
    count = int(s.get("instance_count") or 1)
    resources: list[PlannedResource] = []

    def add(name: str, kind: str, attributes: dict, raw: str = "desired") -> None:
        resources.append(PlannedResource(address=f"{kind}.{name}", type=kind, raw_type=raw, action="create", after=attributes))

    if target.program in ("azure", "gcp"):
        _desired_cloud(target.program, s, add)
        return _document(target, properties, resources)
    aws = target.program == "aws"
    add("vpc", "network", {"cidr": net.get("vpc_cidr"), "tags": tags})
    subnets = [("public", i, c) for i, c in enumerate(net.get("public_subnets") or [])] + \
              [("private", i, c) for i, c in enumerate(net.get("private_subnets") or [])]
    for tier, index, cidr in subnets:
        add(f"{tier}-{index}", "subnet", {"cidr": cidr, "tags": tags} | ({} if aws else {"tier": tier}))
    add("public", "route_table", {"routes_to": ["internet_gateway"], "tags": tags})
    add("private", "route_table", {"routes_to": ["nat_gateway"], "tags": tags})
    if aws:
        add("igw", "internet_gateway", {"tags": tags})
        for tier, index, _ in subnets:
            add(f"{tier}-{index}", "route_table_association", {"tags": None})
        add("nat", "public_ip", {"tags": tags})
        add("nat", "nat_gateway", {"tags": tags})
        add("app", "security_group", {"tags": tags})
    for index in range(count):
        add(f"app-{index + 1}", "instance", {"instance_type": s.get("instance_type"), "root_volume_gb": s.get("volume_size_gb"),
                                             "root_volume_type": "gp3", "tags": tags})
    db = s.get("database")
    if db:
        add("database", "database", {"engine": db.get("engine"), "instance_class": db.get("instance_class"), "storage_gb": db.get("storage_gb"),
                                     "multi_az": bool(db.get("multi_az")), "backup_retention_days": db.get("backup_retention_days"),
                                     "publicly_accessible": False, "storage_encrypted": True, "tags": tags})
        if aws:
            add("database", "security_group", {"tags": tags})
            add("database", "db_subnet_group", {"tags": tags})
    mon = s.get("monitoring")
    if mon:
        if aws:
            add("alerts", "notification_topic", {"tags": tags})
            if mon.get("alert_email"):
                add("alerts-email", "notification_subscription", {"tags": None})
            for index in range(count):
                add(f"cpu-high-app-{index + 1}", "alarm", {"alarm_count": 1, "tags": tags})
        else:
            add("monitoring", "alarm", {"alarm_count": count, "tags": tags})
    return _document(target, properties, resources)


def _desired_cloud(cloud: str, s: dict, add) -> None:
    """What programs/azure and programs/gcp (and their modules) create for settings ``s``, resource for resource."""
    tags = dict(s.get("tags") or {})
    net = s.get("network") or {}
    count = int(s.get("instance_count") or 1)
    azure = cloud == "azure"
    if azure:
        add("rg", "resource_group", {"tags": tags})
    add("vpc", "network", {"cidr": net.get("vpc_cidr") if azure else None, "tags": tags if azure else None})
    for tier in ("public", "private"):
        for index, cidr in enumerate(net.get(f"{tier}_subnets") or []):
            add(f"{tier}-{index}", "subnet", {"cidr": cidr, "tags": None})
    add("nat", "public_ip", {"tags": tags})
    add("nat", "nat_gateway", {"tags": tags if azure else None})
    if azure:
        for name in ("public", "app", "database"):
            add(name, "security_group", {"tags": tags})
        add("admin", "generated_secret", {"tags": None})
    else:
        add("nat", "router", {"tags": None})
        add("app", "security_group", {"tags": None})
    volume = "StandardSSD_LRS" if azure else "pd-balanced"
    for index in range(count):
        if azure:
            add(f"app-{index + 1}", "network_interface", {"tags": tags})
        add(f"app-{index + 1}", "instance", {"instance_type": s.get("instance_type"), "root_volume_gb": s.get("volume_size_gb"),
                                             "root_volume_type": volume, "tags": tags})
    db = s.get("database")
    if db:
        add("database", "database", {"engine": db.get("engine"), "instance_class": db.get("instance_class"), "storage_gb": db.get("storage_gb"),
                                     "multi_az": bool(db.get("multi_az")), "backup_retention_days": db.get("backup_retention_days"),
                                     "publicly_accessible": False, "storage_encrypted": True, "tags": tags})
        add("database", "generated_secret", {"tags": None})
        if azure:
            add("database", "dns_zone", {"tags": tags})
            add("database", "dns_zone_link", {"tags": tags})
            if s.get("environment") == "production":
                add("database", "management_lock", {"tags": None})
        else:
            add("database", "database_user", {"tags": None})
            add("database", "private_ip", {"tags": tags})
            add("database", "private_endpoint", {"tags": tags})
    mon = s.get("monitoring")
    if mon:
        add("alerts", "notification_topic", {"tags": tags})
        if not azure:
            add("alerts", "iam_binding", {"tags": None})
            add("alerts", "notification_subscription", {"tags": tags})
            if mon.get("alert_email"):
                add("alerts-email", "notification_subscription", {"tags": tags})
        for index in range(count):
            add(f"cpu-high-app-{index + 1}", "alarm", {"alarm_count": 1, "tags": tags})
