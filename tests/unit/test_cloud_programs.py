"""The three cloud programs under Pulumi's own mocks, held to the same assertions: programs/aws, programs/azure, programs/gcp.

Each test runs for every cloud; what differs between clouds is only *how* a role is spelled there (``ROLES``, the
per-cloud readers below), never what is asserted.  "Taggable" is what the cloud's SDK says: a resource whose class
takes ``tags`` (AWS, Azure) or ``labels``/``user_labels`` (GCP) must carry the provider's three tags.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import ipaddress
import re

import pulumi
import pytest

from engine import sizing
from engine.config import CustomerConfig, TenantRecord
from engine.planning import MANAGED_BY, Settings, plan_targets

CLOUDS = ("aws", "azure", "gcp")
PASSWORD = "mock-generated-password-7Qx"  # what the mocked random provider "generates"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"  # Pulumi's wire signature of a secret value

# Each role of the stack and the resource types that play it on each cloud.
ROLES = {
    "network": {"aws": "aws:ec2/vpc:Vpc", "azure": "azure-native:network:VirtualNetwork", "gcp": "gcp:compute/network:Network"},
    "subnet": {"aws": "aws:ec2/subnet:Subnet", "azure": "azure-native:network:Subnet", "gcp": "gcp:compute/subnetwork:Subnetwork"},
    "nat": {"aws": "aws:ec2/natGateway:NatGateway", "azure": "azure-native:network:NatGateway", "gcp": "gcp:compute/routerNat:RouterNat"},
    "nat_address": {"aws": "aws:ec2/eip:Eip", "azure": "azure-native:network:PublicIPAddress", "gcp": "gcp:compute/address:Address"},
    "firewall": {"aws": "aws:ec2/securityGroup:SecurityGroup", "azure": "azure-native:network:NetworkSecurityGroup",
                 "gcp": "gcp:compute/firewall:Firewall"},
    "instance": {"aws": "aws:ec2/instance:Instance", "azure": "azure-native:compute:VirtualMachine", "gcp": "gcp:compute/instance:Instance"},
    "database": {"aws": "aws:rds/instance:Instance", "azure": "azure-native:dbforpostgresql:Server", "gcp": "gcp:sql/databaseInstance:DatabaseInstance"},
    "database_private_access": {"aws": "aws:rds/subnetGroup:SubnetGroup", "azure": "azure-native:privatedns:PrivateZone",
                                "gcp": "gcp:compute/forwardingRule:ForwardingRule"},
    "alert": {"aws": "aws:cloudwatch/metricAlarm:MetricAlarm", "azure": "azure-native:monitor:MetricAlert",
              "gcp": "gcp:monitoring/alertPolicy:AlertPolicy"},
    "alert_destination": {"aws": "aws:sns/topic:Topic", "azure": "azure-native:monitor:ActionGroup", "gcp": "gcp:pubsub/topic:Topic"},
}
OPTIONAL_ROLES = {"database", "database_private_access", "alert", "alert_destination"}
# The outputs every cloud's program exports (the contract consumers and `engine outputs` rely on) ...
COMMON_OUTPUTS = {"vpc_id", "vpc_cidr", "public_subnet_ids", "private_subnet_ids", "instance_ids", "instance_ips", "instance_type",
                  "database_endpoint", "database_username", "alerts_topic_arn"}
# ... and the secret one the clouds whose database password the program generates add (RDS keeps AWS's in Secrets Manager).
GENERATED_PASSWORD_OUTPUT = {"aws": set(), "azure": {"database_password"}, "gcp": {"database_password"}}


class Recorder(pulumi.runtime.Mocks):
    def __init__(self):
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args):
        self.resources.append(args)
        outputs = dict(args.inputs)
        typ = args.typ
        if typ == "aws:ec2/instance:Instance":
            outputs["privateIp"] = "10.0.0.10"
        elif typ == "aws:rds/instance:Instance":
            outputs["endpoint"] = "db.example:5432"
        elif typ == "random:index/randomPassword:RandomPassword":
            outputs["result"] = PASSWORD
        elif typ == "azure-native:network:NetworkInterface":
            outputs["ipConfigurations"] = [{**c, "privateIPAddress": "10.0.0.10"} for c in args.inputs.get("ipConfigurations", [])]
        elif typ == "azure-native:dbforpostgresql:Server":
            outputs["fullyQualifiedDomainName"] = "db.private.postgres.database.azure.com"
        elif typ == "gcp:compute/instance:Instance":
            outputs["networkInterfaces"] = [{**n, "networkIp": "10.0.0.10"} for n in args.inputs.get("networkInterfaces", [])]
            outputs["instanceId"] = f"{args.name}-0001"
        elif typ == "gcp:sql/databaseInstance:DatabaseInstance":
            outputs["pscServiceAttachmentLink"] = "projects/p/regions/r/serviceAttachments/a"
            outputs["name"] = "database-1a2b3c"
        elif typ == "gcp:compute/address:Address":
            outputs["address"] = "10.0.0.20"
        return [f"{args.name}-id", outputs]

    def call(self, args):
        token = args.token
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            return {"names": ["eu-west-1a", "eu-west-1b"], "zoneIds": ["a", "b"], "id": "eu-west-1"}
        if token == "aws:ec2/getAmi:getAmi":
            return {"id": "ami-0123456789", "architecture": "x86_64"}
        if token == "gcp:compute/getZones:getZones":
            return {"names": ["europe-west4-a", "europe-west4-b", "europe-west4-c"], "id": "zones"}
        if token == "gcp:organizations/getClientConfig:getClientConfig":
            return {"project": "acme-project", "region": "europe-west4", "id": "config"}
        if token == "gcp:organizations/getProject:getProject":
            return {"number": "123456789012", "projectId": "acme-project", "id": "projects/acme-project"}
        return {}


class Run:
    def __init__(self, recorder: Recorder, exports: dict[str, tuple[object, bool]], settings: dict):
        self.resources = recorder.resources
        self.exports = exports  # name -> (value, is it a secret)
        self.settings = settings

    def of(self, role: str, cloud: str) -> list:
        return [r for r in self.resources if r.typ == ROLES[role][cloud]]


def run_program(cloud: str, settings: dict, monkeypatch) -> Run:
    module = importlib.import_module(f"programs.{cloud}")
    recorder = Recorder()
    exported: dict[str, object] = {}
    monkeypatch.setattr(pulumi, "export", lambda name, value: exported.__setitem__(name, value))
    pulumi.runtime.set_mocks(recorder, project="acme", stack=settings["environment"], preview=False)
    resolved: dict[str, tuple[object, bool]] = {}

    async def resolve():
        for name, value in exported.items():
            output = pulumi.Output.from_input(value)
            resolved[name] = (await output.future(), await output.is_secret())

    @pulumi.runtime.test
    def body():
        module.program(settings)
        return asyncio.ensure_future(resolve())

    body()
    return Run(recorder, resolved, settings)


def settings_for(cloud: str, environment: str = "production", **customer_extra) -> dict:
    record = TenantRecord.model_validate({"customer": "acme", "repository": "acme/app", "network_index": 9, "target": cloud})
    config = CustomerConfig.model_validate({
        "project_name": "shop",
        "environments": {"staging": {"instance_type": "small"},
                         "production": {"instance_type": "m6i.large", "instance_count": 3, "volume_size_gb": 50}},
        "tags": {"team": "Platform Team"},
        **customer_extra,
    })
    return plan_targets(record, config, Settings("/s", "/l"), [environment])[0].config


FULL = {"database": {"engine": "postgres", "instance_class": "db.m6i.large", "multi_az": True},
        "monitoring": {"alert_email": "ops@acme.example"}}


def _secret(value) -> bool:
    return isinstance(value, dict) and value.get("4dabf18193072939515e22adb298388d") == SECRET_SIG


def _walk(value):
    yield value
    if isinstance(value, dict):
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)


# --- how each cloud spells what the assertions read ------------------------------------------------------------------

def _network_range(cloud: str, run: Run) -> str:
    (network,) = run.of("network", cloud)
    return {"aws": lambda i: i["cidrBlock"], "azure": lambda i: i["addressSpace"]["addressPrefixes"][0],
            "gcp": lambda i: re.search(r"[0-9.]+/[0-9]+", i["description"]).group(0)}[cloud](network.inputs)


def _subnet_range(cloud: str, inputs: dict) -> str:
    return inputs[{"aws": "cidrBlock", "azure": "addressPrefix", "gcp": "ipCidrRange"}[cloud]]


def _instance_size(cloud: str, inputs: dict) -> str:
    return {"aws": lambda i: i["instanceType"], "azure": lambda i: i["hardwareProfile"]["vmSize"], "gcp": lambda i: i["machineType"]}[cloud](inputs)


def _instance_disk_gb(cloud: str, inputs: dict) -> int:
    return {"aws": lambda i: i["rootBlockDevice"]["volumeSize"], "azure": lambda i: i["storageProfile"]["osDisk"]["diskSizeGB"],
            "gcp": lambda i: i["bootDisk"]["initializeParams"]["size"]}[cloud](inputs)


def _database_class(cloud: str, inputs: dict) -> str:
    return {"aws": lambda i: i["instanceClass"], "azure": lambda i: i["sku"]["name"], "gcp": lambda i: i["settings"]["tier"]}[cloud](inputs)


def _tag_parameter(typ: str) -> str | None:
    """The parameter the SDK's class for ``typ`` takes tags or labels in (GCP's user-defined labels win), or None."""
    package, module_path, cls = typ.split(":")
    sdk = {"aws": "pulumi_aws", "azure-native": "pulumi_azure_native", "gcp": "pulumi_gcp", "random": "pulumi_random"}[package]
    module = importlib.import_module(sdk if module_path.startswith("index") else f"{sdk}.{module_path.split('/')[0]}")
    parameters = inspect.signature(getattr(module, cls)._internal_init).parameters
    for name in ("user_labels", "labels", "tags") if package == "gcp" else ("tags",):
        if name in parameters:
            return name
    return None


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


# --- the assertions --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cloud", CLOUDS)
def test_every_role_of_the_stack_is_there(cloud, monkeypatch):
    full = run_program(cloud, settings_for(cloud, **FULL), monkeypatch)
    for role in ROLES:
        assert full.of(role, cloud), f"{cloud}: nothing plays {role} ({ROLES[role][cloud]})"
    plain = run_program(cloud, settings_for(cloud, "staging"), monkeypatch)
    for role in ROLES:
        assert bool(plain.of(role, cloud)) == (role not in OPTIONAL_ROLES), (cloud, role)


@pytest.mark.parametrize("cloud", CLOUDS)
def test_two_public_and_two_private_subnets_inside_the_environments_network(cloud, monkeypatch):
    run = run_program(cloud, settings_for(cloud, "staging"), monkeypatch)
    assert _network_range(cloud, run) == "10.2.68.0/22"  # tenant index 9's /18, staging's slot 1
    vpc = ipaddress.ip_network("10.2.68.0/22")
    ranges = [ipaddress.ip_network(_subnet_range(cloud, s.inputs)) for s in run.of("subnet", cloud)]
    assert sorted(map(str, ranges)) == ["10.2.68.0/24", "10.2.69.0/24", "10.2.70.0/24", "10.2.71.0/24"]
    assert all(r.subnet_of(vpc) for r in ranges)
    assert sorted(s.name for s in run.of("subnet", cloud)) == ["private-0", "private-1", "public-0", "public-1"]


@pytest.mark.parametrize("cloud", CLOUDS)
def test_instances_are_sized_from_the_customer_file_through_the_sizing_table(cloud, monkeypatch):
    run = run_program(cloud, settings_for(cloud), monkeypatch)
    instances = run.of("instance", cloud)
    assert len(instances) == 3
    assert {_instance_size(cloud, i.inputs) for i in instances} == {sizing.TABLE["instance"]["m6i.large"][cloud]}
    assert {_instance_disk_gb(cloud, i.inputs) for i in instances} == {50}
    staging = run_program(cloud, settings_for(cloud, "staging"), monkeypatch)  # the portable word "small"
    assert {_instance_size(cloud, i.inputs) for i in staging.of("instance", cloud)} == {sizing.TABLE["instance"]["t3.small"][cloud]}
    (database,) = run_program(cloud, settings_for(cloud, **FULL), monkeypatch).of("database", cloud)
    assert _database_class(cloud, database.inputs) == sizing.TABLE["database"]["db.m6i.large"][cloud]


def _no_public_database(cloud: str, run: Run) -> None:
    (db,) = run.of("database", cloud)
    if cloud == "aws":
        assert db.inputs.get("publiclyAccessible") is not True
        (sg,) = [s for s in run.of("firewall", cloud) if s.name == "database"]
        for rule in sg.inputs["ingress"]:
            assert not rule.get("cidrBlocks") and rule["securityGroups"], rule  # only from the instances' group
    elif cloud == "azure":
        assert db.inputs["network"]["publicNetworkAccess"] == "Disabled" and db.inputs["network"]["delegatedSubnetResourceId"]
        (nsg,) = [s for s in run.of("firewall", cloud) if s.name == "database"]
        allowed = [r for r in nsg.inputs["securityRules"] if r["access"] == "Allow"]
        assert [(r["sourceAddressPrefix"], r["destinationPortRange"]) for r in allowed] == [(run.settings["network"]["private_subnets"][0], "5432")]
        assert nsg.inputs["securityRules"][-1]["access"] == "Deny" and nsg.inputs["securityRules"][-1]["sourceAddressPrefix"] == "*"
    else:
        ip = db.inputs["settings"]["ipConfiguration"]
        assert ip["ipv4Enabled"] is False and not ip.get("authorizedNetworks")
        (endpoint,) = [a for a in run.of("nat_address", cloud) if a.name == "database"]
        assert endpoint.inputs["addressType"] == "INTERNAL"


@pytest.mark.parametrize("cloud", CLOUDS)
def test_the_database_is_not_reachable_from_the_internet(cloud, monkeypatch):
    _no_public_database(cloud, run_program(cloud, settings_for(cloud, **FULL), monkeypatch))


@pytest.mark.parametrize("cloud", CLOUDS)
def test_instances_have_no_public_address_and_only_https_from_the_network_reaches_them(cloud, monkeypatch):
    run = run_program(cloud, settings_for(cloud), monkeypatch)
    vpc_cidr = run.settings["network"]["vpc_cidr"]
    for instance in run.of("instance", cloud):
        assert not [v for v in _walk(instance.inputs) if isinstance(v, dict) and (v.get("accessConfigs") or v.get("associatePublicIpAddress"))]
    if cloud == "aws":
        (app,) = [s for s in run.of("firewall", cloud) if s.name == "app"]
        rules = [(r["fromPort"], r["toPort"], tuple(r["cidrBlocks"])) for r in app.inputs["ingress"]]
    elif cloud == "azure":
        (app,) = [s for s in run.of("firewall", cloud) if s.name == "app"]
        rules = [(443, 443, (r["sourceAddressPrefix"],)) for r in app.inputs["securityRules"] if r["access"] == "Allow" and r["destinationPortRange"] == "443"]
        assert len([r for r in app.inputs["securityRules"] if r["access"] == "Allow"]) == 1
    else:
        (app,) = run.of("firewall", cloud)
        rules = [(443, 443, tuple(app.inputs["sourceRanges"]))] if app.inputs["allows"] == [{"protocol": "tcp", "ports": ["443"]}] else []
    assert rules == [(443, 443, (vpc_cidr,))]


@pytest.mark.parametrize("cloud", CLOUDS)
@pytest.mark.parametrize("environment", ["staging", "production"])
def test_every_taggable_resource_carries_customer_environment_and_managed_by(cloud, environment, monkeypatch):
    run = run_program(cloud, settings_for(cloud, environment, **FULL), monkeypatch)
    checked = 0
    for resource in run.resources:
        parameter = _tag_parameter(resource.typ)
        if resource.typ == "gcp:sql/databaseInstance:DatabaseInstance":
            tags = resource.inputs["settings"].get("userLabels")  # Cloud SQL's labels live in its settings
        elif parameter is None:
            continue
        else:
            tags = resource.inputs.get(_camel(parameter))
        assert isinstance(tags, dict), f"{cloud}: {resource.typ} {resource.name} takes {parameter} but has none"
        assert (tags.get("customer"), tags.get("environment"), tags.get("managed-by")) == ("acme", environment, MANAGED_BY), resource.name
        assert tags.get("team") == ("platform_team" if cloud == "gcp" else "Platform Team")  # GCP labels are lower case
        checked += 1
    assert checked >= 8, checked  # the instances, their disks (GCP), the database, addresses, alerts, ...


@pytest.mark.parametrize("cloud", CLOUDS)
def test_credentials_are_secrets_from_generation_to_output(cloud, monkeypatch):
    run = run_program(cloud, settings_for(cloud, **FULL), monkeypatch)
    (db,) = run.of("database", cloud)
    if cloud == "aws":
        assert db.inputs["manageMasterUserPassword"] is True and "password" not in db.inputs  # RDS keeps it in Secrets Manager
    else:
        carriers = [r for r in run.resources if PASSWORD in str(r.inputs)]
        assert {r.typ for r in carriers} >= {ROLES["database"][cloud] if cloud == "azure" else "gcp:sql/user:User"}
        for resource in carriers:  # the password only ever inside a secret (Pulumi makes the whole top-level input secret)
            clear = [key for key, value in resource.inputs.items() if PASSWORD in str(value) and not _secret(value)]
            assert not clear, f"{cloud}: {resource.name} gets a generated password in clear text in {clear}"
        assert run.exports["database_password"] == (PASSWORD, True)
    for name, (value, secret) in run.exports.items():
        assert secret or PASSWORD not in str(value), f"{cloud}: output {name} shows a password"


@pytest.mark.parametrize("cloud", CLOUDS)
def test_every_cloud_exports_the_same_outputs(cloud, monkeypatch):
    full = run_program(cloud, settings_for(cloud, **FULL), monkeypatch)
    assert set(full.exports) == COMMON_OUTPUTS | GENERATED_PASSWORD_OUTPUT[cloud]
    assert full.exports["vpc_cidr"] == ("10.2.64.0/22", False)
    assert full.exports["instance_type"] == (sizing.TABLE["instance"]["m6i.large"][cloud], False)
    assert len(full.exports["instance_ips"][0]) == 3 and len(full.exports["private_subnet_ids"][0]) == 2
    plain = run_program(cloud, settings_for(cloud, "staging"), monkeypatch)
    assert set(plain.exports) == COMMON_OUTPUTS - {"database_endpoint", "database_username", "alerts_topic_arn"}


@pytest.mark.parametrize("cloud", CLOUDS)
def test_one_cpu_alert_per_instance_at_the_customers_threshold(cloud, monkeypatch):
    extra = {"monitoring": {"cpu_alarm_threshold": 65, "alerts_enabled": False}}
    run = run_program(cloud, settings_for(cloud, **extra), monkeypatch)
    alerts = run.of("alert", cloud)
    assert len(alerts) == 3
    for alert in alerts:
        if cloud == "aws":
            threshold, enabled = alert.inputs["threshold"], alert.inputs["actionsEnabled"]
        elif cloud == "azure":
            threshold, enabled = alert.inputs["criteria"]["allOf"][0]["threshold"], alert.inputs["enabled"]
        else:
            threshold, enabled = alert.inputs["conditions"][0]["conditionThreshold"]["thresholdValue"] * 100, alert.inputs["enabled"]
        assert (round(threshold), enabled) == (65, False)


@pytest.mark.parametrize("cloud", CLOUDS)
def test_production_databases_are_protected_from_deletion(cloud, monkeypatch):
    production = run_program(cloud, settings_for(cloud, **FULL), monkeypatch)
    staging = run_program(cloud, settings_for(cloud, "staging", **FULL), monkeypatch)

    def protected(run: Run) -> bool:
        (db,) = run.of("database", cloud)
        if cloud == "aws":
            return db.inputs["deletionProtection"] is True
        if cloud == "azure":
            return any(r.typ == "azure-native:authorization:ManagementLockByScope" and r.inputs["level"] == "CanNotDelete" for r in run.resources)
        return db.inputs["deletionProtection"] is True and db.inputs["settings"]["deletionProtectionEnabled"] is True

    assert protected(production) and not protected(staging)


@pytest.mark.parametrize("cloud", CLOUDS)
def test_consumed_tenant_networks_are_peered(cloud, monkeypatch):
    settings = settings_for(cloud, "staging")
    settings["upstream"] = {"shared": {"vpc_id": "upstream-network-id", "vpc_cidr": "10.2.0.0/22"}, "other": {"vpc_cidr": "10.1.192.0/22"}}
    run = run_program(cloud, settings, monkeypatch)
    peerings = [r for r in run.resources if "eering" in r.typ]
    assert [p.name for p in peerings] == ["peer-shared"]
    assert "upstream-network-id" in list(_walk(peerings[0].inputs))
