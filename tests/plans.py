"""Plans for the plan-document, cost and policy tests: real OpenTofu plans (tests/fixtures/plans) and the
real Pulumi programs' planned inputs (run under Pulumi's mocks, as a preview would register them)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pulumi

from engine.plan_document import PlanDocument, PulumiStep, from_pulumi_preview, from_terraform_plan
from engine.planning import StackTarget, UpstreamRef

PLANS = Path(__file__).resolve().parent / "fixtures" / "plans"


def target(data: dict, **changes) -> StackTarget:
    fields = {**data, **changes}
    fields["post_steps"] = tuple(fields.get("post_steps") or ())
    fields["upstreams"] = tuple(UpstreamRef(u["customer"], u["environment"], tuple(u["outputs"])) for u in fields.get("upstreams") or ())
    return StackTarget(**fields)


def fixture_target(kind: str, which: str = "create") -> StackTarget:
    """The target a stored plan was made from (``kind``: local | aws)."""
    return target(json.loads((PLANS / f"opentofu-{kind}-targets.json").read_text())[which])


def terraform_plan(kind: str, which: str) -> dict:
    return json.loads((PLANS / f"opentofu-{kind}-{which}.json").read_text())


def terraform_document(kind: str, which: str) -> PlanDocument:
    return from_terraform_plan(terraform_plan(kind, which), fixture_target(kind, which))


class _Recorder(pulumi.runtime.Mocks):
    def __init__(self):
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args):
        self.resources.append(args)
        return [f"{args.name}-id", dict(args.inputs)]

    def call(self, args):
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            return {"names": ["eu-west-1a", "eu-west-1b"], "zoneIds": ["a", "b"], "id": "eu-west-1"}
        if args.token == "aws:ec2/getAmi:getAmi":
            return {"id": "ami-0123456789", "architecture": "x86_64"}
        if args.token == "gcp:compute/getZones:getZones":
            return {"names": ["europe-west4-a", "europe-west4-b"], "id": "zones"}
        if args.token == "gcp:organizations/getClientConfig:getClientConfig":
            return {"project": "acme-project", "id": "config"}
        if args.token == "gcp:organizations/getProject:getProject":
            return {"number": "123456789012", "id": "projects/acme-project"}
        return {}


def pulumi_steps(t: StackTarget) -> list[PulumiStep]:
    """The create steps a first preview of ``t``'s Pulumi program would take: each resource's type, name and inputs."""
    import programs

    recorder = _Recorder()
    pulumi.runtime.set_mocks(recorder, project=t.project, stack=t.stack, preview=True)

    @pulumi.runtime.test
    def body():
        programs.load(t.program)(t.config)

    body()
    return [PulumiStep(urn=f"urn:pulumi:{t.stack}::{t.project}::{r.typ}::{r.name}", type=r.typ, op="create", new_inputs=_as_sent(dict(r.inputs)))
            for r in recorder.resources]


def _as_sent(value):
    """Inputs as the engine's events carry them: values not known during a preview are Pulumi's unknown sentinel."""
    if isinstance(value, dict):
        return {k: _as_sent(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_sent(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def pulumi_document(t: StackTarget) -> PlanDocument:
    """The plan document of a first Pulumi preview of ``t`` (the same settings a Terraform tenant's plan was made from)."""
    return from_pulumi_preview(pulumi_steps(t), dataclasses.replace(t, tool="pulumi", tool_version=None))
