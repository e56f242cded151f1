"""One Spacelift stack per customer × environment, reconciled from the engine's planned targets.

``desired_stack`` turns a planned ``StackTarget`` into the stack Spacelift should have (pure);
``plan_sync`` compares the desired stacks with what Spacelift has and lists, per stack, what to
create, which fields to update, which environment variables to set or remove, and which stacks
the engine made are left without a tenant (pure, given the stacks read); ``apply`` makes those
mutations.  A second sync finds nothing to do, so it makes no mutation.

What the engine owns on a stack (and puts back when someone changes it in Spacelift): its name,
space, repository/branch/project root, administrative flag, autodeploy, worker pool, vendor
settings, its own labels (``customer:``, ``environment:``, ``managed-by:engine``), its own
environment variables (described ``ENGINE_VARIABLE``) and, on Pulumi stacks, its own ``beforeInit``
hook (``ENGINE_HOOK``: prepares ``programs/spacelift`` for the tenant).  Everything else — description,
other labels, other hooks, runner image, contexts, policies, other variables — the provider may change there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

from engine.planning import StackTarget
from engine.spacelift.client import HOOKS, SpaceliftAPI, SpaceliftError, Stack, checksum
from engine.spacelift.settings import MANAGED_LABEL, SpaceliftSettings

ENGINE_LABEL_PREFIXES = ("customer:", "environment:", "managed-by:")
ENGINE_VARIABLE = "managed by the engine (engine spacelift sync)"
SECRET = "[secret]"
# The engine's mark on the hooks it owns; the hook a Pulumi stack runs first, in its project root (programs/spacelift):
# it writes the tenant's project name into Pulumi.yaml and links the programs package (programs/spacelift/prepare.py).
HOOK_MARK = "# managed by the engine"
ENGINE_HOOK = f"python3 prepare.py  {HOOK_MARK}"
# Compared field by field; the update sends the stack as read with these replaced.
OWNED_FIELDS = ("name", "space", "namespace", "repository", "branch", "projectRoot", "administrative", "autodeploy",
                "workerPool", "vendorConfig")


@dataclass(frozen=True)
class Variable:
    value: str
    write_only: bool = False


@dataclass
class DesiredStack:
    id: str
    customer: str
    environment: str
    fields: dict[str, Any]  # the engine-owned StackInput fields
    labels: list[str]  # the engine's own labels
    variables: dict[str, Variable]
    hooks: dict[str, list[str]] = field(default_factory=dict)  # the engine's own hooks, first in their phase
    warnings: list[str] = field(default_factory=list)


def stack_id(customer: str, environment: str) -> str:
    """The stack's ID (Spacelift's slug) and name: customer ids and environment names are already slug-safe."""
    return f"{customer}-{environment}"


def terraform_version(line: str) -> str:
    """``terraform_version`` as Spacelift's version setting: a release line X.Y is its newest patch (``~> X.Y.0``)."""
    return f"~> {line}.0" if line.count(".") == 1 else line


def desired_stack(settings: SpaceliftSettings, target: StackTarget, *, auto_deploy: bool, passphrase: Callable[[str], str],
                  tofu_version: str) -> DesiredStack:
    """The stack ``target`` needs in Spacelift.  Inputs come from the planned (validated) settings, never raw customer text."""
    protected = target.environment in settings.protected_environments
    if target.tool == "terraform":
        vendor = ({"terraform": {"version": terraform_version(target.tool_version), "workflowTool": "TERRAFORM_FOSS"}}
                  if target.tool_version else {"opentofu": {"version": tofu_version}})
        config = {k: v for k, v in target.config.items() if k != "upstream" and (k != "local_root" or target.program == "local")}
        variables = {f"TF_VAR_{k}": Variable(v if isinstance(v, str) else json.dumps(v, sort_keys=True, separators=(",", ":")))
                     for k, v in sorted(config.items())}
    else:
        vendor = {"pulumi": {"loginURL": target.backend_url, "stackName": f"organization/{target.project}/{target.stack}"}}
        config = {k: v for k, v in target.config.items() if k != "upstream"}
        variables = {"ENGINE_SETTINGS": Variable(json.dumps(config, sort_keys=True, separators=(",", ":"))),
                     "ENGINE_PROGRAM": Variable(target.program),
                     "PULUMI_CONFIG_PASSPHRASE": Variable(passphrase(target.customer), write_only=True)}
    warnings = []
    if target.backend_url.startswith("file:"):
        warnings.append(f"{target.fqn}: state location {target.backend_url} is on this machine; a Spacelift worker cannot reach it "
                        "(set the tenant record's state.url to s3://…)")
    sid = stack_id(target.customer, target.environment)
    return DesiredStack(
        id=sid, customer=target.customer, environment=target.environment,
        fields={"name": sid, "space": settings.space, "namespace": settings.namespace, "repository": settings.repository_name,
                "branch": settings.branch, "projectRoot": settings.project_root(target.tool, target.program),
                "administrative": False, "autodeploy": auto_deploy and not protected, "workerPool": settings.worker_pool,
                "vendorConfig": vendor},
        labels=[f"customer:{target.customer}", f"environment:{target.environment}", MANAGED_LABEL],
        variables=variables, hooks={"beforeInit": [ENGINE_HOOK]} if target.tool == "pulumi" else {}, warnings=warnings)


# -- the plan ----------------------------------------------------------------------------------------

@dataclass
class Mutation:
    operation: str  # stackCreate | stackUpdate | stackDelete | stackConfigAdd | stackConfigDelete
    stack: str
    arguments: dict[str, Any]  # as sent, except write-only values (kept in ``secret``)
    secret: str | None = field(default=None, repr=False)

    def shown(self) -> dict[str, Any]:
        """The mutation as printed: write-only values masked."""
        return {"operation": self.operation, "stack": self.stack, "arguments": self.arguments}


@dataclass
class StackPlan:
    stack: str
    customer: str | None
    environment: str | None
    action: str  # create | update | in-sync | delete | orphan | conflict
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)  # field -> {"from", "to"}
    variables_set: list[str] = field(default_factory=list)
    variables_removed: list[str] = field(default_factory=list)
    mutations: list[Mutation] = field(default_factory=list)
    error: str | None = None

    @property
    def fields(self) -> list[str]:
        return list(self.changes)

    def to_dict(self) -> dict[str, Any]:
        return {"stack": self.stack, "customer": self.customer, "environment": self.environment, "action": self.action,
                "fields": self.fields, "changes": self.changes, "variables_set": self.variables_set,
                "variables_removed": self.variables_removed, "mutations": len(self.mutations), "error": self.error}


def _normal(name: str, value: Any) -> Any:
    if name == "projectRoot":
        return value or None
    if name == "vendorConfig" and isinstance(value, dict):
        return {kind: {k: v for k, v in (settings or {}).items() if v is not None} for kind, settings in value.items() if settings}
    return value


def _engine_labels(labels: list[str]) -> list[str]:
    return sorted(label for label in labels if label.startswith(ENGINE_LABEL_PREFIXES))


def _engine_hooks(hooks: list[str]) -> list[str]:
    return [hook for hook in hooks if hook.endswith(HOOK_MARK)]


def _stack_input(fields: dict[str, Any]) -> dict[str, Any]:
    """A StackInput from a stack's fields (None values left out: Spacelift's defaults)."""
    return {k: v for k, v in fields.items() if v is not None}


def plan_stack(desired: DesiredStack, existing: Stack | None) -> StackPlan:
    """What ``existing`` needs to become ``desired`` (``None``: create it)."""
    plan = StackPlan(desired.id, desired.customer, desired.environment, "in-sync")
    if existing is None:
        plan.action = "create"
        body = {**desired.fields, "labels": list(desired.labels), **desired.hooks,
                "description": f"{desired.customer}/{desired.environment}, managed by the engine (engine spacelift sync; docs/SPACELIFT.md)"}
        plan.mutations.append(Mutation("stackCreate", desired.id, {"slug": desired.id, "input": _stack_input(body)}))
        current_vars: dict = {}
    else:
        if MANAGED_LABEL not in existing.labels:
            plan.action = "conflict"
            plan.error = f"a stack with ID {existing.id} exists but is not the engine's (no {MANAGED_LABEL} label): left alone"
            return plan
        for name in OWNED_FIELDS:
            have, want = _normal(name, existing.fields.get(name)), _normal(name, desired.fields.get(name))
            if have != want:
                plan.changes[name] = {"from": have, "to": want}
        if _engine_labels(existing.labels) != sorted(desired.labels):
            plan.changes["labels"] = {"from": _engine_labels(existing.labels), "to": sorted(desired.labels)}
        hooks = {}
        for phase in HOOKS:
            have = existing.fields.get(phase) or []
            if _engine_hooks(have) != desired.hooks.get(phase, []):
                plan.changes[phase] = {"from": _engine_hooks(have), "to": desired.hooks.get(phase, [])}
            # the engine's hooks first, then the provider's, in their order
            hooks[phase] = desired.hooks.get(phase, []) + [hook for hook in have if not hook.endswith(HOOK_MARK)]
        if plan.changes:
            plan.action = "update"
            others = [label for label in existing.labels if not label.startswith(ENGINE_LABEL_PREFIXES)]
            body = {**existing.fields, **desired.fields, **hooks, "labels": others + list(desired.labels)}
            plan.mutations.append(Mutation("stackUpdate", existing.id, {"id": existing.id, "input": _stack_input(body)}))
        current_vars = existing.config
    for name, variable in desired.variables.items():
        have = current_vars.get(name)
        if have is not None and have.write_only == variable.write_only and (
                have.checksum == checksum(variable.value) if variable.write_only else have.value == variable.value):
            continue
        plan.variables_set.append(name)
        config = {"id": name, "type": "ENVIRONMENT_VARIABLE", "value": SECRET if variable.write_only else variable.value,
                  "writeOnly": variable.write_only, "description": ENGINE_VARIABLE}
        plan.mutations.append(Mutation("stackConfigAdd", desired.id, {"stack": desired.id, "config": config},
                                       secret=variable.value if variable.write_only else None))
    for name, element in current_vars.items():
        if element.description == ENGINE_VARIABLE and name not in desired.variables:
            plan.variables_removed.append(name)
            plan.mutations.append(Mutation("stackConfigDelete", desired.id, {"stack": desired.id, "id": name}))
    if plan.action == "in-sync" and plan.mutations:
        plan.action = "update"
    return plan


def _label(stack: Stack, prefix: str) -> str | None:
    return next((label[len(prefix):] for label in stack.labels if label.startswith(prefix)), None)


@dataclass
class SyncPlan:
    stacks: list[StackPlan]
    warnings: list[str] = field(default_factory=list)

    @property
    def mutations(self) -> list[Mutation]:
        return [m for s in self.stacks for m in s.mutations]


def plan_sync(desired: list[DesiredStack], existing: list[Stack], in_scope: Callable[[str | None], bool], prune: bool) -> SyncPlan:
    """Every desired stack's plan, and the engine's stacks that no desired stack claims (within ``in_scope``,
    a test of their ``customer:`` label): deleted with ``prune``, else reported."""
    by_id = {s.id: s for s in existing}
    plans = [plan_stack(d, by_id.get(d.id)) for d in desired]
    wanted = {d.id for d in desired}
    for stack in existing:
        if stack.id in wanted or MANAGED_LABEL not in stack.labels or stack.deleting:
            continue
        customer = _label(stack, "customer:")
        if not in_scope(customer):
            continue
        plan = StackPlan(stack.id, customer, _label(stack, "environment:"), "delete" if prune else "orphan")
        if prune:
            plan.mutations.append(Mutation("stackDelete", stack.id, {"id": stack.id, "destroyResources": False}))
        plans.append(plan)
    return SyncPlan(plans, [w for d in desired for w in d.warnings])


def apply(api: SpaceliftAPI, plan: SyncPlan) -> int:
    """Make the plan's mutations, stack by stack; a stack whose mutation fails keeps its error and the others go on.
    Returns the number of mutations made."""
    made = 0
    for stack in plan.stacks:
        for mutation in stack.mutations:
            try:
                _send(api, mutation)
                made += 1
            except SpaceliftError as exc:
                stack.error = f"{mutation.operation}: {exc.message}"
                break
    return made


def _send(api: SpaceliftAPI, mutation: Mutation) -> None:
    args = mutation.arguments
    if mutation.operation == "stackCreate":
        api.create_stack(args["slug"], args["input"])
    elif mutation.operation == "stackUpdate":
        api.update_stack(args["id"], args["input"])
    elif mutation.operation == "stackDelete":
        api.delete_stack(args["id"])
    elif mutation.operation == "stackConfigAdd":
        config = args["config"]
        value = mutation.secret if mutation.secret is not None else config["value"]
        api.set_variable(args["stack"], config["id"], value, write_only=config["writeOnly"], description=config["description"])
    elif mutation.operation == "stackConfigDelete":
        api.delete_variable(args["stack"], args["id"])
    else:  # pragma: no cover - the plan only makes the five above
        raise ValueError(mutation.operation)


# -- the whole sync, from the catalog -----------------------------------------------------------------

@dataclass
class SyncResult:
    plan: SyncPlan
    dry_run: bool
    made: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(s.error for s in self.plan.stacks)

    def to_dict(self) -> dict[str, Any]:
        mutations = self.plan.mutations
        return {"ok": self.ok, "dry_run": self.dry_run, "stacks": [s.to_dict() for s in self.plan.stacks],
                "mutations": self.made, "would_mutate": [m.shown() for m in mutations] if self.dry_run else [],
                "warnings": self.plan.warnings, "notes": self.notes}


def desired_for(engine: Any, settings: SpaceliftSettings, customers: list[str], tofu_version: str) -> tuple[list[DesiredStack], list[str]]:
    """The desired stacks of every customer in ``customers`` that Spacelift executes, and notes on the others."""
    from engine.spacelift.settings import executes

    desired, notes = [], []
    for customer in sorted(customers):
        tenant = engine.load(customer)
        if not executes(settings, tenant.record):
            notes.append(f"{customer} is not executed by Spacelift (spacelift.yml `execute`, or `spacelift` in infrastructure_tools)")
            continue
        for target in engine.plan(customer, tenant=tenant):
            stack = desired_stack(settings, target, auto_deploy=tenant.record.properties.spacelift_auto_deploy,
                                  passphrase=engine.home.passphrase, tofu_version=tofu_version)
            if target.upstreams:
                stack.warnings.append(f"{target.fqn}: consumes other tenants' outputs, which Spacelift stacks do not receive yet")
            desired.append(stack)
    return desired, notes


def sync(engine: Any, settings: SpaceliftSettings, api: SpaceliftAPI, customers: list[str] | None, *, prune: bool = False,
         dry_run: bool = False, tofu_version: str) -> SyncResult:
    """Reconcile the stacks of ``customers`` (``None``: every tenant in the catalog; then every stack of the engine's
    whose tenant is gone is in scope too).  ``dry_run`` reads everything and makes no mutation."""
    known = {r.customer for r in engine.catalog.all_records()}
    if customers is None:
        chosen, in_scope = sorted(known), (lambda customer: True)
    else:
        named = set(customers)
        chosen, in_scope = sorted(named & known), (lambda customer: customer in named)
    desired, notes = desired_for(engine, settings, chosen, tofu_version)
    notes += [f"{c} is not in the catalog: its stacks have no tenant" for c in sorted(set(customers or ()) - known)]
    plan = plan_sync(desired, api.stacks(), in_scope, prune)
    result = SyncResult(plan, dry_run, notes=notes)
    if not dry_run:
        result.made = apply(api, plan)
    return result
