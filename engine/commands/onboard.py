"""``engine onboard`` and ``engine offboard``: a customer in (record, network, repository properties) or out.

Onboarding decides everything first (``engine/onboarding.py``), then sets the repository's custom
properties and writes the record — with ``--dry-run``, neither.  What only a person can do (commit the
record, secrets, the App, the customer's own files) is printed as a numbered list.
"""

from __future__ import annotations

from pathlib import Path

import click

from engine import onboarding, properties, provenance
from engine.catalog import check_customer_id
from engine.commands import Outcome
from engine.commands.options import CUSTOMER, DRY_RUN, JSON, QUIET, YES, Verb, opt
from engine.clouds import TARGETS
from engine.documents import load_text
from engine.errors import ConfigError, InputError
from engine.onboarding import Step
from engine.reporters.console import ConsoleProgress
from engine.reporters.properties import render_offboard, render_onboard
from engine.results import Operation
from engine.validation import validate_customer_file
from engine.wiring import Wiring
from engine.commands.operate import progress_wanted

TOOLS = ("pulumi", "terraform", "ansible")


def _tools(values: tuple[str, ...]) -> list[str]:
    tools = [t.strip() for value in values for t in value.split(",") if t.strip()] or ["pulumi"]
    unknown = [t for t in tools if t not in TOOLS]
    if unknown:
        raise InputError(f"unknown tool {unknown[0][:40]!r}", hint=f"--tools takes {', '.join(TOOLS)} (comma-separated or repeated)")
    if "pulumi" in tools and "terraform" in tools:
        raise InputError("--tools names pulumi and terraform: a customer's infrastructure is deployed by one of them")
    return list(dict.fromkeys(tools))


def _check_against_definitions(w: Wiring, wanted: dict) -> None:
    """The values must be allowed by the organization's definitions, or GitHub would refuse them."""
    path = w.catalog_root / properties.DEFINITIONS_FILE
    if not path.is_file():
        return
    allowed = properties.load(path).allowed
    for name, value in wanted.items():
        values = value if isinstance(value, list) else [value]
        bad = [v for v in values if name in allowed and v not in allowed[name]]
        if bad:
            raise InputError(f"{name} {bad[0]!r} is not allowed by {properties.DEFINITIONS_FILE}",
                             hint=f"allowed: {', '.join(allowed[name])}")


def _customer_file(w: Wiring, plan: onboarding.OnboardPlan, environments: list[str], api) -> list[Step]:
    """Is the customer file there (local --source, else the default branch on GitHub), valid, with these environments?"""
    record = plan.record
    what = f"customer file {record.config_path}"
    if record.source:
        path = w.catalog_root / record.source / record.config_path
        raw, shown = (path.read_bytes() if path.is_file() else None), str(Path(record.source) / record.config_path)
    elif api is None:
        return [Step(what, None, "not checked: no GitHub credentials")]
    else:
        raw, shown = api.file_at(record.repository, record.config_path, None), f"{record.repository}/{record.config_path}"
    if raw is None:
        return [Step(what, False, f"{shown} does not exist (yet)")]
    try:
        config = validate_customer_file(load_text(raw, shown), record.target)  # and deployable on the tenant's target
    except ConfigError as exc:
        return [Step(what, False, "; ".join(p.summary() for p in exc.problems[:5]))]
    steps = [Step(what, True, f"{shown} is valid ({', '.join(config.environments)})")]
    missing = [e for e in environments if e not in config.environments]
    if environments:
        steps.append(Step(f"environments {', '.join(environments)}", not missing,
                          f"missing from {shown}: {', '.join(missing)}" if missing else "all declared"))
    return steps


def _shown(values: dict) -> str:
    return ", ".join(f"{k}={','.join(v) if isinstance(v, list) else v}" for k, v in values.items())


def _left_to_do(plan: onboarding.OnboardPlan, checks: list[Step], properties_set: bool | None, dry_run: bool) -> list[str]:
    record, customer = plan.record, plan.customer
    todo = [f"commit {plan.record_path.parent.name}/{plan.record_path.name} to the manager repository (a pull request: "
            f"`engine validate` and `engine preview {customer}` check it)"]
    if dry_run:
        todo[0] = "run this again without --dry-run, then " + todo[0]
    if not properties_set:
        todo.append(f"set {record.repository}'s custom properties: "
                    + _shown(plan.properties)
                    + " (Settings → Custom properties, or `engine compliance --remediate` with a source of truth)")
    for step in checks:
        if step.what == "GitHub App installed" and step.done is not True:
            todo.append(f"install the engine's GitHub App on {record.repository} (Contents read, Issues, Pull requests, "
                        "Commit statuses, Deployments write; Custom properties write) — docs/SETUP.md 1.2")
        if step.what.startswith("customer file") and step.done is not True:
            todo.append(f"the customer commits a valid {record.config_path} (start from templates/customer/infra/variables.yml; "
                        f"`engine validate` checks it)")
        if step.what.startswith("environments") and step.done is False:
            todo.append(f"the customer adds the missing environments to {record.config_path}")
    # every tenant: Pulumi's secrets and the encrypted state backups (engine/backups.py) use the customer's passphrase
    todo.append(f"add a passphrase for {customer} to ENGINE_PASSPHRASES (never change it later) — docs/SETUP.md 1.4")
    if record.dispatch_auth == "signature":
        todo.append(f"create {customer}'s dispatch secret (`openssl rand -hex 32`), add it to ENGINE_DISPATCH_SECRETS under "
                    f"\"{customer}\", and give it to the customer for their secret INFRA_DISPATCH_SECRET — docs/SETUP.md 1.7")
    todo.append(f"the customer copies templates/customer/ (trigger-infra.yml) and sets INFRA_CUSTOMER_ID={customer}, "
                "MANAGER_REPO and MANAGER_REPO_TOKEN — docs/SETUP.md Part 2"
                + (f"; trigger-infra.yml's `paths` must name {record.config_path} (it watches infra/** as shipped)"
                   if not record.config_path.startswith("infra/") else ""))
    return todo


def onboard(w: Wiring, customer: str, repository: str, tools: tuple[str, ...], terraform_version: str | None,
            environments: tuple[str, ...], target: str, region: str | None, config_path: str | None, source: str | None,
            display_name: str | None, dry_run: bool) -> Outcome:
    check_customer_id(customer)
    chosen = _tools(tools)
    if terraform_version and "terraform" not in chosen:
        raise InputError("--terraform-version applies to terraform customers", hint="add --tools terraform")
    envs = [e for value in environments for e in value.split(",") if e]
    catalog = w.engine().catalog
    has_github = w.github_settings().has_credentials
    with onboarding.catalog_lock(catalog, writes=not dry_run):
        plan = onboarding.plan(catalog, customer, repository, tools=chosen, terraform_version=terraform_version, target=target,
                               region=region, config_path=config_path, source=source, display_name=display_name,
                               actor=provenance.actor())
        _check_against_definitions(w, plan.properties)
        api = w.github(dry_run=dry_run) if has_github else None
        checks: list[Step] = []
        if api is None:
            checks.append(Step("GitHub App installed", None, "not checked: no GitHub credentials (ENGINE_GITHUB_TOKEN or the App's)"))
        else:
            try:
                installed = api.app_installation(repository)
                checks.append(Step("GitHub App installed", installed is not None,
                                   f"installation {installed['id']} on {installed['account']['login']}" if installed else "not installed"))
            except InputError as exc:
                checks.append(Step("GitHub App installed", None, f"not checked: {exc.message}"))
        app_missing = checks[-1].done is False  # the App's credentials can't read or write a repository it isn't installed on
        if app_missing:
            checks.append(Step(f"customer file {plan.record.config_path}", None, "not checked: the GitHub App is not installed"))
        else:
            checks += _customer_file(w, plan, envs, api)
        properties_set: bool | None = None
        if api is not None and not app_missing:
            api.set_custom_properties(repository, plan.properties)  # dry-run: printed, not made
            properties_set = not dry_run
        checks.insert(0, Step("repository custom properties", properties_set,
                              ("set" if properties_set else "would be set" if api is not None and not app_missing
                               else "not set: no GitHub credentials" if api is None else "not set: the GitHub App is not installed")
                              + ": " + _shown(plan.properties)))
        if not dry_run:
            onboarding.write_record(plan)
    data = {"dry_run": dry_run, "plan": plan.to_dict(), "record_text": plan.record_text, "checks": [c.to_dict() for c in checks],
            "left_to_do": _left_to_do(plan, checks, properties_set, dry_run),
            "would_write": [p.describe() for p in api.planned] if api is not None and dry_run else []}
    return Outcome(data, lambda: render_onboard(data))


def offboard(w: Wiring, customer: str, yes: bool, dry_run: bool, quiet: bool) -> Outcome:
    """Destroy every stack of ``customer``, then remove its record; report what is left behind."""
    check_customer_id(customer)
    engine = w.engine()
    record = engine.catalog.record(customer)
    consumers = [r.customer for r in engine.catalog.all_records() if any(u.customer == customer for u in r.consumes)]
    if consumers:
        raise InputError(f"{customer}'s outputs are used by {', '.join(consumers)}", hint="offboard those customers first, or remove their `consumes`")
    if not yes and not dry_run:
        raise InputError(f"`engine offboard` destroys every resource of {customer}'s stacks and removes stacks/{customer}.yml",
                         hint="add --yes to confirm (or --dry-run to see what it would do)")
    targets = engine.plan(customer)
    path = engine.catalog.stacks_dir / f"{customer}.yml"
    left = [f"state location {targets[0].backend_url if targets else '(none)'} (the tools' state files; "
            "empty stacks are removed, backups and the directory/prefix are not)",
            "run history rows of this customer (engine history)",
            f"{record.repository}'s custom properties and the GitHub App's access to it",
            f"{customer}'s entries in ENGINE_DISPATCH_SECRETS and ENGINE_PASSPHRASES"]
    if dry_run:
        data = {"customer": customer, "dry_run": True, "removed": False, "record_removed": False, "record_path": str(path),
                "stacks": [{"environment": t.environment, "status": f"would destroy ({t.tool})"} for t in targets], "left": left}
        return Outcome(data, lambda: render_offboard(data))
    w.stream.subscribe(ConsoleProgress(enabled=progress_wanted(quiet)))
    result = engine.run(customer, Operation.DESTROY, None)
    stacks = [{"environment": s.environment, "status": str(s.status), "error": s.error} for s in result.stacks]
    removed = result.exit_code == 0
    if removed:
        path.unlink()
    else:
        left.insert(0, f"stacks/{customer}.yml: kept, because a stack was not destroyed — fix it and run `engine offboard {customer} --yes` again")
    data = {"customer": customer, "dry_run": False, "removed": removed, "record_removed": removed, "record_path": str(path),
            "stacks": stacks, "left": left, "run": result.to_dict()}
    return Outcome(data, lambda: render_offboard(data), result.exit_code)


VERBS = (
    Verb("onboard", onboard, (
        CUSTOMER,
        opt("--repository", required=True, metavar="OWNER/NAME", help="The customer's repository (holds infra/variables.yml)."),
        opt("--tools", multiple=True, metavar="TOOLS", help="infrastructure_tools: pulumi or terraform, plus ansible (comma-separated). Default: pulumi."),
        opt("--terraform-version", metavar="X.Y", help="terraform_version for a terraform customer, e.g. 1.6."),
        opt("--environments", multiple=True, metavar="ENVS", help="Environments the customer file must declare (comma-separated), checked."),
        opt("--target", type=click.Choice(TARGETS), default="local", show_default=True, help="Where the stacks deploy."),
        opt("--region", metavar="REGION", help="Cloud region. Default: eu-west-1 (aws), westeurope (azure), europe-west4 (gcp)."),
        opt("--config-path", metavar="PATH", help="The customer file in the repository. Default: infra/variables.yml."),
        opt("--source", metavar="DIR", help="A local checkout of the customer's repository, relative to the catalog (demos, tests)."),
        opt("--display-name", metavar="NAME", help="The customer's name as people read it."),
        DRY_RUN, JSON),
        "Onboard a customer: its tenant record with the next free network, its repository's custom properties, and what is left to do."),
    Verb("offboard", offboard, (CUSTOMER, YES, DRY_RUN, JSON, QUIET),
         "Destroy every stack of a customer (needs --yes), remove its tenant record, and list what is left behind."),
)
