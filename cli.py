"""``engine`` — the command line.  Parses arguments, calls the engine, renders the result.

This is the single place that turns an ``EngineError`` into a message and an exit
code: 0 ok, 1 an operation failed, 2 bad input (nothing was deployed).
"""

from __future__ import annotations

import functools
import json
import os
import sys
import traceback
from pathlib import Path

import click

from engine import toolchain
from engine.catalog import Catalog, check_customer_id
from engine.config import CustomerConfig, TenantRecord, json_schema, validate_document
from engine.documents import load_file
from engine.errors import ConfigError, EngineError, InputError, Problem
from engine.home import EngineHome, default_home
from engine.operations import Engine, unsupported_tool
from engine.reporters.console import LiveProgress, render_run
from engine.results import RunResult


def _emit_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def _fail(exc: EngineError, as_json: bool) -> None:
    if as_json:
        _emit_json({"ok": False, **exc.to_dict()})
    else:
        click.echo(f"error: {exc.message}", err=True)
        if exc.hint:
            click.echo(f"hint: {exc.hint}", err=True)
    sys.exit(exc.exit_code)


def handles_errors(func):
    """Turn engine errors into a message and exit code; never show a traceback for them."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        as_json = bool(kwargs.get("as_json"))
        try:
            return func(*args, **kwargs)
        except EngineError as exc:
            _fail(exc, as_json)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as exc:  # noqa: BLE001 - last resort: a bug, not a user error
            if os.environ.get("ENGINE_DEBUG"):
                traceback.print_exc()
            _fail(EngineError(f"internal error: {type(exc).__name__}: {exc}", hint="set ENGINE_DEBUG=1 for a traceback and report it"), as_json)

    return wrapper


class Context:
    def __init__(self, catalog: str | None, home: str | None):
        self.catalog_root = Path(catalog or os.environ.get("ENGINE_CATALOG") or ".")
        self.home = EngineHome(Path(home).resolve() if home else default_home())
        self.lock_timeout = 0.0
        self._history = None

    @property
    def history(self):
        """Records every finished stack (best effort); see engine/history.py."""
        if self._history is None:
            from engine.history import recorder_from_env

            self._history = recorder_from_env(self.home.root)
        return self._history

    def engine(self, progress: LiveProgress | None = None) -> Engine:
        catalog = Catalog(self.catalog_root)
        if not catalog.stacks_dir.is_dir():
            raise InputError(f"no tenant catalog at {catalog.stacks_dir}", hint="run from the provider repository or pass --catalog PATH")
        home = self.home

        def runners(tool: str):
            if tool == "pulumi":
                from engine.runners.pulumi import PulumiRunner  # imported lazily: loading pulumi takes ~0.5s

                return PulumiRunner(home, toolchain.ensure("pulumi"), progress or (lambda _t, _m: None), lock_timeout=self.lock_timeout)
            if tool == "terraform":
                from engine.runners.terraform import TerraformRunner

                return TerraformRunner(home, toolchain.ensure("tofu"), toolchain.ensure_provider_mirror(),
                                       progress or (lambda _t, _m: None), lock_timeout=self.lock_timeout,
                                       tf_lock_timeout=f"{int(self.lock_timeout)}s")
            return unsupported_tool(tool)

        def steps(name: str):
            from engine.runners.ansible import AnsibleStep

            return AnsibleStep(home, progress or (lambda _t, _m: None))

        remote_source = None
        if any(os.environ.get(k) for k in ("ENGINE_GITHUB_TOKEN", "GITHUB_TOKEN", "ENGINE_GITHUB_APP_ID")):
            from engine.github import GitHubAPI, Settings as GitHubSettings
            from engine.triggers import remote_tenant

            api = GitHubAPI(GitHubSettings.from_env())
            remote_source = lambda record: remote_tenant(api, record)  # noqa: E731 - tenants without a local checkout

        return Engine(catalog=catalog, home=home, runners=runners, steps=steps, remote_source=remote_source,
                      listeners=[self.history.stack_done])


json_option = click.option("--json", "as_json", is_flag=True, help="Print a machine-readable JSON result on stdout.")
env_option = click.option("--env", "environments", multiple=True, metavar="ENV", help="Only this environment (repeatable). Default: all.")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--catalog", metavar="PATH", help="Provider repository holding stacks/ (default: $ENGINE_CATALOG or the current directory).")
@click.option("--home", metavar="PATH", help="Where state, work dirs and local resources live (default: $ENGINE_HOME or ~/.local/share/managed-infra-engine).")
@click.version_option(package_name="managed-infra-engine", prog_name="engine")
@click.pass_context
def main(ctx: click.Context, catalog: str | None, home: str | None) -> None:
    """Managed Infrastructure Engine: one Pulumi stack per customer and environment."""
    ctx.obj = Context(catalog, home)


def _operation(name: str, help_text: str, needs_yes: bool = False, fleet: bool = False):
    @main.command(name=name, help=help_text)
    @click.argument("customer", required=not fleet)
    @env_option
    @json_option
    @click.option("--quiet", "-q", is_flag=True, help="No live progress on stderr.")
    @click.option("--lock-timeout", type=click.FloatRange(0, 3600), default=0, show_default=True, metavar="SECONDS",
                  help="Wait this long for another operation on the same stack to finish before failing.")
    @(click.option("--yes", is_flag=True, help="Confirm: this deletes every resource of the selected stacks.") if needs_yes else (lambda f: f))
    @(click.option("--all", "all_customers", is_flag=True, help="Every customer in the catalog.") if fleet else (lambda f: f))
    @(click.option("--changed-from", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
                   help="Customers affected by the changed files listed in FILE (e.g. `git diff --name-only`).") if fleet else (lambda f: f))
    @(click.option("--parallel", type=click.IntRange(1, 64), default=min(4, os.cpu_count() or 1), show_default=True,
                   help="With --all/--changed-from: customers run at once (each in its own process).") if fleet else (lambda f: f))
    @click.pass_obj
    @handles_errors
    def command(obj: Context, customer: str | None, environments: tuple[str, ...], as_json: bool, quiet: bool, lock_timeout: float,
                yes: bool = False, all_customers: bool = False, changed_from: Path | None = None, parallel: int = 1) -> None:
        if fleet and (all_customers or changed_from):
            if customer:
                raise InputError("name one customer, or use --all / --changed-from")
            return _fleet(obj, name, all_customers, changed_from, environments, parallel, lock_timeout, quiet, as_json)
        if customer is None:
            raise InputError("name a customer, or use --all / --changed-from")
        check_customer_id(customer)
        obj.lock_timeout = lock_timeout
        if needs_yes and not yes:
            raise InputError(f"`engine {name}` deletes every resource of {customer}'s selected stacks", hint="add --yes to confirm")
        progress = LiveProgress(enabled=not quiet and (sys.stderr.isatty() or bool(os.environ.get("ENGINE_PROGRESS"))))
        engine = obj.engine(progress)
        result: RunResult = engine.run(customer, name, list(environments) or None)
        if as_json:
            _emit_json(result.to_dict())
        else:
            click.echo(render_run(result))
        sys.exit(result.exit_code)

    return command


def _select_customers(engine: Engine, customers: tuple[str, ...], all_customers: bool, changed_from: Path | None) -> list[str]:
    """Named customers, every customer (--all), or those affected by a list of changed files."""
    from engine import fanout

    if all_customers:
        return [r.customer for r in engine.catalog.all_records()]
    if changed_from is not None:
        try:
            paths = changed_from.read_text().splitlines()
        except OSError as exc:
            raise InputError(f"cannot read {changed_from}: {exc.strerror}") from None
        return fanout.changed_customers(engine.catalog, paths)
    return [check_customer_id(c) for c in customers]


def _fleet(obj: Context, operation: str, all_customers: bool, changed_from: Path | None, environments: tuple[str, ...],
           parallel: int, lock_timeout: float, quiet: bool, as_json: bool) -> None:
    """The same operation over many customers, each in its own process, ``parallel`` at a time."""
    from engine import fanout

    engine = obj.engine()
    customers = _select_customers(engine, (), all_customers, changed_from)
    # everything is loaded, validated and planned before the first process starts
    tools = {t.tool for t in engine.plan_many(customers, list(environments) or None)}
    if "pulumi" in tools:
        toolchain.ensure("pulumi")  # resolve once, before fanning out: children never race on installs
    if "terraform" in tools:
        toolchain.ensure("tofu")
        toolchain.ensure_provider_mirror()
    extra = [a for e in environments for a in ("--env", e)] + ["--lock-timeout", str(lock_timeout)]
    env = {**os.environ, "ENGINE_CATALOG": str(engine.catalog.root), "ENGINE_HOME": str(obj.home.root)}
    env.pop("ENGINE_PROGRESS", None)
    echo = (lambda m: click.echo(m, err=True)) if not quiet else (lambda _m: None)
    result = fanout.run_fleet(customers, operation, parallel=parallel, extra_args=extra, env=env, cwd=engine.catalog.root, progress=echo)
    if as_json:
        _emit_json(result.to_dict())
    else:
        click.echo(fanout.render_table(result) if customers else "no customers selected")
    sys.exit(result.exit_code)


_operation("up", "Create or update the customer's stacks (one per environment), or every customer's with --all.", fleet=True)
_operation("preview", "Show what `up` would change, without changing anything.", fleet=True)
_operation("refresh", "Read the real resources and update the state to match (shows out-of-band changes).", fleet=True)
_operation("destroy", "Delete every resource of the customer's stacks, then the stacks themselves.", needs_yes=True)
_operation("outputs", "Print the outputs of the customer's stacks (secret values masked).")


@main.command(name="list")
@click.argument("customer", required=False)
@json_option
@click.pass_obj
@handles_errors
def list_command(obj: Context, customer: str | None, as_json: bool) -> None:
    """List onboarded customers, or one customer's stacks with their last update."""
    engine = obj.engine()
    if customer is None:
        rows = []
        for record in engine.catalog.all_records():
            rows.append({"customer": record.customer, "repository": record.repository, "target": record.target,
                         "tools": record.properties.infrastructure_tools, "state": "s3" if record.state else "file"})
        if as_json:
            _emit_json({"customers": rows})
        else:
            if not rows:
                click.echo("no customers onboarded (add stacks/<customer>.yml)")
            for r in rows:
                click.echo(f"{r['customer']:<20} {r['repository']:<40} target={r['target']:<6} tools={','.join(r['tools'])}")
        return
    result = engine.run(check_customer_id(customer), "list")
    if as_json:
        _emit_json(result.to_dict())
    else:
        for s in result.stacks:
            if s.status == "not-deployed":
                click.echo(f"{s.customer}/{s.environment:<14} not deployed")
            elif s.status == "failed":
                click.echo(f"{s.customer}/{s.environment:<14} error: {s.error}")
            else:
                d = s.details
                click.echo(f"{s.customer}/{s.environment:<14} {s.stack:<28} resources={d.get('resource_count')}  last update={d.get('last_update')} ({d.get('last_result')})")
    sys.exit(result.exit_code)


@main.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--kind", type=click.Choice(["auto", "customer", "tenant"]), default="auto", show_default=True,
              help="customer = infra/variables.yml, tenant = stacks/<customer>.yml; auto decides by content.")
@json_option
@handles_errors
def validate(path: Path, kind: str, as_json: bool) -> None:
    """Check a customer file or tenant record; exit 2 with file, line and key on problems."""
    doc = load_file(path)
    if kind == "auto":
        kind = "tenant" if isinstance(doc.data, dict) and "customer" in doc.data and "repository" in doc.data else "customer"
    model = CustomerConfig if kind == "customer" else TenantRecord
    obj = validate_document(doc, model)
    if kind == "tenant" and path.stem != obj.customer:
        raise ConfigError([Problem(str(path), doc.line_of(("customer",)), "customer", f"customer id {obj.customer!r} does not match the file name {path.name!r}")])
    if as_json:
        _emit_json({"ok": True, "file": str(path), "kind": kind, "value": obj.model_dump(mode="json")})
    else:
        extra = f" ({len(obj.environments)} environments: {', '.join(obj.environments)})" if kind == "customer" else f" (customer {obj.customer})"
        click.echo(f"{path}: valid {kind} file{extra}")


@main.command()
@click.argument("kind", type=click.Choice(["customer", "tenant"]), default="customer")
def schema(kind: str) -> None:
    """Print the JSON Schema of a customer file or tenant record (for editors)."""
    _emit_json(json_schema(kind))


@main.command(name="plan-targets")
@click.argument("customer")
@env_option
@click.pass_obj
@handles_errors
def plan_targets_command(obj: Context, customer: str, environments: tuple[str, ...]) -> None:
    """Print the resolved stack targets (tool, program, backend, config) as JSON; runs nothing."""
    engine = obj.engine()
    targets = engine.plan(check_customer_id(customer), list(environments) or None)
    _emit_json([t.to_dict() for t in targets])


@main.command()
@click.argument("customer")
@click.option("--env", "environment", required=True, help="The environment whose stack lock to clear.")
@click.option("--lock-id", help="Terraform path: the lock ID shown in the lock error.")
@click.option("--yes", is_flag=True, help="Confirm that no operation is running on this stack.")
@click.pass_obj
@handles_errors
def unlock(obj: Context, customer: str, environment: str, lock_id: str | None, yes: bool) -> None:
    """Clear a lock left by a crashed operation (`pulumi cancel` / `tofu force-unlock`)."""
    if not yes:
        raise InputError("clearing a lock while an operation runs can corrupt state", hint="check no operation is running, then add --yes")
    engine = obj.engine()
    (target,) = engine.plan(check_customer_id(customer), [environment])
    runner = engine.runners(target.tool)
    click.echo(runner.unlock(target, lock_id) if target.tool == "terraform" else runner.unlock(target))


@main.command()
@click.argument("event_name")
@click.argument("payload_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--customer", help="For pull_request/push events of the manager repository: the customer to run.")
@click.option("--mode", type=click.Choice(["plan", "apply"]), help="Override the mode the event asks for (plan = preview, apply = up).")
@env_option
@click.option("--dry-run", is_flag=True, help="Read from GitHub but print every write instead of making it.")
@click.option("--lock-timeout", type=click.FloatRange(0, 3600), default=0, show_default=True, metavar="SECONDS")
@json_option
@click.pass_obj
@handles_errors
def event(obj: Context, event_name: str, payload_path: Path, customer: str | None, mode: str | None,
          environments: tuple[str, ...], dry_run: bool, lock_timeout: float, as_json: bool) -> None:
    """Handle a GitHub event (e.g. "$GITHUB_EVENT_NAME" "$GITHUB_EVENT_PATH"): plan or apply, and report to the customer's repository."""
    from engine import triggers
    from engine.events import load_event
    from engine.github import GitHubAPI, Settings

    if customer is not None:
        check_customer_id(customer)
    request = load_event(event_name, payload_path, customer=customer, mode=mode, environments=environments)
    triggers.check_request(request)
    obj.lock_timeout = lock_timeout
    obj.history.sha = request.sha
    settings = Settings.from_env()
    api = GitHubAPI(settings, dry_run=dry_run)
    progress = LiveProgress(enabled=sys.stderr.isatty() or bool(os.environ.get("ENGINE_PROGRESS")))
    outcome = triggers.handle(request, obj.engine(progress), api, settings.run_url)
    if as_json:
        _emit_json(outcome.to_dict())
    else:
        click.echo(render_run(outcome.result))
        for line in outcome.feedback.log:
            click.echo(f"warning: GitHub feedback call failed (the run's result is unaffected): {line}", err=True)
    sys.exit(outcome.result.exit_code)


@main.command()
@click.argument("customers", nargs=-1)
@click.option("--all", "all_customers", is_flag=True, help="Every customer in the catalog.")
@env_option
@click.option("--shard", default="1/1", show_default=True, metavar="I/N", help="Check only the I-th of N equal shares (for parallel CI jobs).")
@click.option("--parallel", type=click.IntRange(1, 64), default=min(4, os.cpu_count() or 1), show_default=True, help="Stacks checked at once.")
@click.option("--remediate", is_flag=True, help="Re-apply the desired state of drifted stacks whose tenant allows it (drift_auto_remediate).")
@click.option("--markdown", is_flag=True, help="Print a Markdown table (for job summaries).")
@click.option("--report", "report_to", type=click.Choice(["none", "github"]), default="none", show_default=True,
              help="github: open/update/close one drift issue per stack (repository per tenant record's drift_issues).")
@click.option("--dry-run", is_flag=True, help="With --report github: print every GitHub write instead of making it.")
@json_option
@click.pass_obj
@handles_errors
def drift(obj: Context, customers: tuple[str, ...], all_customers: bool, environments: tuple[str, ...], shard: str, parallel: int,
          remediate: bool, markdown: bool, report_to: str, dry_run: bool, as_json: bool) -> None:
    """Check stacks for changes made outside the engine, without writing state. Exit 0 in sync, 3 drift found, 1 errors."""
    from engine import drift as drift_mod

    if all_customers == bool(customers):
        raise InputError("name customers or pass --all (not both)")
    progress = LiveProgress(enabled=sys.stderr.isatty() or bool(os.environ.get("ENGINE_PROGRESS")))
    engine = obj.engine(progress)
    names = _select_customers(engine, customers, all_customers, None)
    index, total = drift_mod.parse_shard(shard)
    load_errors: list = []
    targets = drift_mod.select_targets(engine, names, list(environments) or None, (index, total), load_errors)
    report = drift_mod.scan(engine, targets, parallel=parallel, remediate=remediate,
                            may_remediate=lambda t: engine.catalog.record(t.customer).properties.drift_auto_remediate)
    report.stacks += [drift_mod.StackDrift(None, r) for r in load_errors]
    report.shard = f"{index}/{total}"
    for stack in report.stacks:
        obj.history.drift_done(stack)
    github_log: dict = {}
    if report_to == "github":
        from engine.github import GitHubAPI, Settings
        from engine.reporters.github import DriftIssues

        settings = Settings.from_env()
        issues = DriftIssues(GitHubAPI(settings, dry_run=dry_run), settings.run_url)
        manager = os.environ.get("GITHUB_REPOSITORY")
        for stack in report.stacks:
            if stack.target is None:
                continue
            record = engine.catalog.record(stack.target.customer)
            repository = manager if record.drift_issues == "manager" else record.repository
            if repository is None:
                issues.log.append(f"{stack.target.fqn}: drift_issues is 'manager' but GITHUB_REPOSITORY is not set")
            elif stack.state == "drifted":
                issues.sync(repository, stack.result, drifted=True)
            elif stack.state in ("in-sync", "remediated"):
                issues.sync(repository, stack.result, drifted=False)
        github_log = {"issues": issues.actions, "failed_calls": issues.log,
                      "dry_run_writes": [w.describe() for w in issues.api.planned]}
        for line in issues.log:
            click.echo(f"warning: GitHub call failed (the scan's result is unaffected): {line}", err=True)
    if as_json:
        _emit_json({**report.to_dict(), **({"github": github_log} if github_log else {})})
    elif markdown:
        click.echo(drift_mod.render_markdown(report))
    else:
        click.echo(drift_mod.render_console(report))
    sys.exit(report.exit_code)


@main.command()
@click.option("--policy", "policy_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Property policy (default: policy/properties.yml in the catalog).")
@click.option("--source", help="Source of truth: a CMDB export (CSV, JSON or YAML), a file path or an http(s) URL.")
@click.option("--remediate", is_flag=True, help="Write the source of truth's values back to repositories that differ.")
@click.option("--dry-run", is_flag=True, help="Read everything, print every write instead of making it.")
@json_option
@click.pass_obj
@handles_errors
def compliance(obj: Context, policy_path: Path | None, source: str | None, remediate: bool, dry_run: bool, as_json: bool) -> None:
    """Check every customer repository's custom properties. Exit 0 compliant, 3 property drift, 1 errors."""
    from engine import compliance as comp
    from engine.github import GitHubAPI, Settings

    engine = obj.engine()
    policy = comp.Policy.load(policy_path or engine.catalog.root / "policy" / "properties.yml")
    truth = comp.load_source(source) if source else None
    tenants = [(r.customer, r.repository) for r in engine.catalog.all_records()]
    api = GitHubAPI(Settings.from_env(), dry_run=dry_run)
    report = comp.scan(api, tenants, policy, truth, remediate, obj.home.root / "audit" / "compliance.jsonl")
    if as_json:
        _emit_json(report.to_dict())
    else:
        click.echo(comp.render_console(report))
    sys.exit(report.exit_code)


@main.command(name="matrix")
@click.argument("customers", nargs=-1)
@click.option("--all", "all_customers", is_flag=True, help="Every customer in the catalog.")
@click.option("--changed-from", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE", help="Customers affected by these changed files.")
@env_option
@click.pass_obj
@handles_errors
def matrix_command(obj: Context, customers: tuple[str, ...], all_customers: bool, changed_from: Path | None, environments: tuple[str, ...]) -> None:
    """Print a GitHub Actions job matrix (customer × environment) to fan out across runners."""
    from engine import fanout

    engine = obj.engine()
    names = _select_customers(engine, customers, all_customers, changed_from)
    targets = [(t.customer, t.environment, t.tool) for t in engine.plan_many(names, list(environments) or None)]
    click.echo(json.dumps(fanout.matrix(targets), separators=(",", ":")))


@main.command()
@click.argument("customer", required=False)
@click.option("--env", "environment", metavar="ENV", help="Only this environment.")
@click.option("--limit", type=click.IntRange(1, 10000), default=20, show_default=True, help="At most this many runs.")
@json_option
@click.pass_obj
@handles_errors
def history(obj: Context, customer: str | None, environment: str | None, limit: int, as_json: bool) -> None:
    """Recorded operations, newest first ($ENGINE_HOME/history.sqlite3, or ENGINE_HISTORY_URL)."""
    from engine import history as hist

    if customer is not None:
        check_customer_id(customer)
    where, rows = hist.query(obj.home.root, customer, environment, limit)
    if as_json:
        _emit_json({"history": where, "runs": rows})
    elif not rows:
        click.echo(f"no runs recorded{' for ' + customer if customer else ''}{' in ' + environment if environment else ''} ({where})")
    else:
        click.echo(hist.render_table(rows))


@main.group()
def tools() -> None:
    """The pinned binaries the engine needs (pulumi, tofu; actionlint for the workflow tests)."""


@tools.command(name="install")
@click.option("--tool", "names", multiple=True, type=click.Choice(["pulumi", "tofu", "actionlint"]), help="Only this tool (repeatable). Default: all.")
@json_option
@handles_errors
def tools_install(names: tuple[str, ...], as_json: bool) -> None:
    """Make sure each tool is available: PATH, cache, download, or a build from the Go module proxy."""
    installed = [toolchain.ensure(n).to_dict() for n in (names or ("pulumi", "tofu", "actionlint"))]
    if not names or "tofu" in names:
        installed.append({"name": "enginelocal", "version": toolchain.PROVIDER_VERSION, "bin_dir": str(toolchain.ensure_provider_mirror()), "source": "go-build"})
    if as_json:
        _emit_json({"tools": installed})
    else:
        for t in installed:
            click.echo(f"{t['name']:<11} v{t['version']:<10} {t['bin_dir']}  ({t['source']})")


@tools.command(name="status")
@json_option
def tools_status(as_json: bool) -> None:
    """Show which tools are available, without installing anything."""
    rows = toolchain.status()
    if as_json:
        _emit_json({"tools": rows})
    else:
        for r in rows:
            click.echo(f"{r['name']:<11} v{r['version']:<10} " + (f"{r['bin_dir']} ({r['source']})" if r["installed"] else "not installed"))


if __name__ == "__main__":
    main()
