"""The plan document: one normalized, secret-free description of a plan, from OpenTofu's show -json or a Pulumi preview."""

from __future__ import annotations

import json
from pathlib import Path

from pulumi import automation as auto

from engine.diffs import SECRET_SIG
from engine.plan_document import (RESOURCE_TYPES, UNKNOWN, PlanDocument, from_pulumi_preview, from_terraform_plan,
                                  step_from_event)
from tests.plans import fixture_target, pulumi_document, terraform_document, terraform_plan
from tests.unit.test_sensitive_masking import CANARY

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "tfplan"


def by_address(doc: PlanDocument) -> dict:
    return {r.address: r for r in doc.resources}


def test_a_terraform_local_plan_names_every_resource_in_the_common_vocabulary():
    doc = terraform_document("local", "create")
    assert (doc.tenant, doc.environment, doc.tool, doc.target, doc.region) == ("tfco", "production", "terraform", "local", "eu-west-1")
    assert doc.settings["instance_type"] == "t3.small" and "local_root" not in doc.settings
    kinds = sorted(r.type for r in doc.resources)
    assert kinds == ["alarm", "database", "instance", "instance", "network", "route_table", "route_table", "subnet", "subnet", "subnet",
                     "subnet", "volume", "volume"]
    assert {r.action for r in doc.resources} == {"create"}
    app = by_address(doc)['enginelocal_document.instance["app-1"]']
    assert app.before is None and app.after["instance_type"] == "t3.small"
    assert app.after["root_volume_gb"] is None  # the module's disk is its own resource …
    assert by_address(doc)['enginelocal_disk.root["app-1"]'].after["size_gb"] == 40  # … priced there, once
    assert app.planned["content"]["spec"]["memory_mib"] == 2048  # the tool's own values, readable (content decoded)


def test_a_terraform_update_carries_both_sides():
    doc = terraform_document("local", "update")
    db = by_address(doc)["enginelocal_document.database[0]"]
    assert db.action == "update" and (db.before["multi_az"], db.after["multi_az"]) == (True, False)
    app = by_address(doc)['enginelocal_document.instance["app-2"]']
    assert (app.before["instance_type"], app.after["instance_type"]) == ("t3.small", "t3.medium")
    assert by_address(doc)["enginelocal_document.network"].action == "no-op"


def test_a_real_aws_plan_reads_provider_attributes_and_default_tags():
    doc = terraform_document("aws", "update")
    resources = by_address(doc)
    app = resources["aws_instance.app[0]"]
    assert app.action == "update" and (app.before["instance_type"], app.after["instance_type"]) == ("t3.small", "t3.medium")
    assert (app.after["root_volume_gb"], app.after["root_volume_type"]) == (40, "gp3")
    assert app.after["tags"]["customer"] == "tfaws"  # tags_all: the provider's default tags included
    db = resources["aws_db_instance.this[0]"]
    assert (db.after["engine"], db.after["instance_class"], db.after["storage_gb"], db.after["backup_retention_days"]) == ("postgres", "db.t3.small", 50, 7)
    assert db.after["publicly_accessible"] is False and db.after["multi_az"] is False
    assert resources["aws_nat_gateway.this"].type == "nat_gateway" and resources["aws_eip.nat"].type == "public_ip"
    assert resources["aws_route_table.private"].after["routes_to"] == ["nat_gateway"]
    assert resources["aws_route_table_association.public[0]"].after["tags"] is None  # takes no tags: not judged by tag policies
    assert not any(r.type == "other" for r in doc.resources)
    assert all(r.type in RESOURCE_TYPES for r in doc.resources)


def test_values_known_only_after_apply_are_marked_unknown():
    created = by_address(terraform_document("aws", "create"))["aws_instance.app[0]"]
    assert created.planned["id"] == UNKNOWN and created.planned["instance_type"] == "t3.small"


def test_sensitive_terraform_values_never_enter_the_document():
    plan = json.loads((GOLDEN / "opentofu-tainted-sensitive-list.json").read_text())
    assert CANARY in json.dumps(plan)  # the tool's JSON carries the values in clear …
    doc = from_terraform_plan(plan, fixture_target("local"))
    assert CANARY not in doc.to_json()  # … the document does not, at any depth
    assert doc.resources  # and it still describes the plan


def test_a_sensitive_attribute_of_a_known_resource_is_masked_but_the_rest_is_kept():
    plan = {"resource_changes": [{"address": "aws_db_instance.this[0]", "type": "aws_db_instance", "mode": "managed", "change": {
        "actions": ["create"], "before": None,
        "after": {"instance_class": "db.t3.small", "engine": "postgres", "allocated_storage": 20, "password": f"{CANARY}-pw",
                  "tags_all": {"customer": "acme"}},
        "after_sensitive": {"password": True}, "after_unknown": {"id": True}}}]}
    (db,) = from_terraform_plan(plan, fixture_target("local")).resources
    assert db.planned["password"] == "[secret]" and db.after["instance_class"] == "db.t3.small"
    assert CANARY not in json.dumps(db.planned)


def _pre_event(op: str, typ: str, name: str, old: dict | None, new: dict | None) -> auto.EngineEvent:
    urn = f"urn:pulumi:production::acme::{typ}::{name}"
    state = lambda inputs: {"type": typ, "urn": urn, "custom": True, "inputs": inputs, "outputs": {}} if inputs is not None else None  # noqa: E731
    return auto.EngineEvent.from_json({"sequence": 1, "timestamp": 0, "resourcePreEvent": {"metadata": {
        "op": op, "urn": urn, "type": typ, "provider": "", "old": state(old), "new": state(new)}}})


def test_pulumi_preview_events_become_the_same_vocabulary_with_secrets_masked():
    secret = {SECRET_SIG: "1b47061264138c4ac30d75fd1eb44270", "plaintext": json.dumps(f"{CANARY}-pw")}
    events = [
        _pre_event("update", "aws:ec2/instance:Instance", "app-1",
                   {"instanceType": "t3.small", "rootBlockDevice": {"volumeSize": 20.0, "volumeType": "gp3"}, "tags": {"customer": "acme"}},
                   {"instanceType": "t3.large", "rootBlockDevice": {"volumeSize": 20.0, "volumeType": "gp3"}, "tags": {"customer": "acme"},
                    "userData": secret, "__defaults": []}),
        _pre_event("create", "aws:rds/instance:Instance", "database", None,
                   {"instanceClass": "db.t3.micro", "engine": "postgres", "allocatedStorage": 20.0, "multiAz": False,
                    "backupRetentionPeriod": 7.0, "password": secret, "vpcSecurityGroupIds": ["04da6b54-80e4-46f7-96ec-b56ff0331ba9"]}),
        _pre_event("same", "aws:ec2/natGateway:NatGateway", "nat", {"tags": {}}, {"tags": {}}),
        _pre_event("delete", "aws:cloudwatch/metricAlarm:MetricAlarm", "cpu-high-app-2", {"threshold": 80.0}, None),
        _pre_event("create", "pulumi:pulumi:Stack", "acme-production", None, {}),  # the tool's own: not a resource
    ]
    steps = [s for s in map(step_from_event, events) if s is not None]
    assert CANARY not in repr(steps)  # masked when captured: the runner never holds the secret
    doc = from_pulumi_preview(steps, fixture_target("aws"))
    assert CANARY not in doc.to_json()
    r = by_address(doc)
    app = r["aws:ec2/instance:Instance::app-1"]
    assert (app.action, app.before["instance_type"], app.after["instance_type"], app.after["root_volume_gb"]) == ("update", "t3.small", "t3.large", 20)
    assert app.planned["userData"] == "[secret]" and "__defaults" not in app.planned
    db = r["aws:rds/instance:Instance::database"]
    assert (db.type, db.before, db.after["storage_gb"], db.after["backup_retention_days"]) == ("database", None, 20, 7)
    assert db.planned["vpcSecurityGroupIds"] == [UNKNOWN]
    assert r["aws:ec2/natGateway:NatGateway::nat"].action == "no-op"
    gone = r["aws:cloudwatch/metricAlarm:MetricAlarm::cpu-high-app-2"]
    assert (gone.action, gone.after, gone.before["alarm_count"]) == ("delete", None, 1)
    assert len(doc.resources) == 4


def test_a_pulumi_replacement_is_one_change():
    old, new = {"instanceType": "t3.small"}, {"instanceType": "t3.medium"}
    steps = [step_from_event(_pre_event(op, "aws:ec2/instance:Instance", "app-1", old, new))
             for op in ("create-replacement", "replace", "delete-replaced")]
    (app,) = from_pulumi_preview(steps, fixture_target("aws")).resources
    assert (app.action, app.before["instance_type"], app.after["instance_type"]) == ("replace", "t3.small", "t3.medium")


def _comparable(doc: PlanDocument) -> list:
    """What must not depend on the tool: per normalized type, the attributes after the change (tags and all)."""
    return sorted((r.type, json.dumps(r.after, sort_keys=True)) for r in doc.resources
                  if r.type not in ("volume", "instance", "route_table_association"))


def test_the_same_settings_give_the_same_document_from_pulumi_and_terraform():
    for kind in ("local", "aws"):
        terraform = terraform_document(kind, "create")
        pulumi = pulumi_document(fixture_target(kind))
        assert (pulumi.tool, terraform.tool) == ("pulumi", "terraform")
        assert pulumi.settings == terraform.settings and pulumi.region == terraform.region
        assert _comparable(pulumi) == _comparable(terraform), kind
        instances = lambda d: sorted(r.after["instance_type"] for r in d.resources if r.type == "instance")  # noqa: E731
        assert instances(pulumi) == instances(terraform) == ["t3.small", "t3.small"]


def test_the_document_round_trips_through_json():
    doc = terraform_document("aws", "update")
    assert PlanDocument.from_dict(json.loads(doc.to_json())) == doc


def test_a_result_carries_its_plan_but_json_output_keeps_its_shape():
    from engine.results import StackResult

    doc = terraform_document("local", "create")
    with_plan = StackResult("tfco", "production", "tfco/production", "terraform", "preview", "succeeded", plan=doc)
    without = StackResult("tfco", "production", "tfco/production", "terraform", "preview", "succeeded")
    assert with_plan.plan is doc
    assert with_plan.to_dict() == without.to_dict()  # `--json` is unchanged: the document is shown by `engine policy eval`
