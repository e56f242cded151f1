"""Every verb of the ``engine`` command line, in the order ``engine --help`` lists them.

A new command is one module in ``engine/commands/`` with a ``run`` and its ``VERBS``, added here.
"""

from __future__ import annotations

from engine.commands import cost, gc, policy, serve
from engine.commands import (compliance, drift, environments, event, history, listing, matrix, not_applied, onboard, operate, plan_targets,
                             properties, rollout, spacelift, tools, unlock, validate)
from engine.commands import infra_tests, rollback, state
from engine.commands.options import Verb

MODULES = (operate, listing, validate, plan_targets, unlock, event, drift, compliance, onboard, properties, matrix, environments, not_applied,
           history, rollout, tools, spacelift, policy, cost, serve, gc,
           infra_tests, rollback, state)
VERBS: tuple[Verb, ...] = tuple(verb for module in MODULES for verb in module.VERBS)
GROUPS = {
    "policy": "Policy as code: the provider's Rego policies (policy/*.rego), tested and evaluated with OPA.",
    "rollout": "A provider change rolled out to every customer it affects, with one summary comment.",
    "state": "State backups of a stack (kept before and after every deploy, encrypted with the customer's passphrase): list, restore.",
    "properties": "The organization's custom property definitions (policy/properties.yml) and one repository's values.",
    "spacelift": "Spacelift stacks for the tenants Spacelift executes (spacelift.yml): sync them, check them.",
    "token": "API tokens for the portal's /api routes (engine serve), scoped to one customer or the provider.",
    "tools": "The pinned binaries the engine needs (pulumi, tofu; actionlint for the workflow tests).",
}
