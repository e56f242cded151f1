"""``engine`` — the command line: parses arguments, calls a command module, renders its outcome.

Each verb lives in ``engine/commands/``.  This file is the single error boundary: an
``EngineError`` becomes a message and an exit code — 0 ok, 1 an operation failed, 2 bad
input (nothing was deployed), 3 drift found — and nothing else ever shows a traceback.
"""

from __future__ import annotations

import os
import traceback
from pathlib import Path

import click

from engine import process
from engine.commands import Outcome, compliance, drift, event, history, listing, matrix, operate, plan_targets, to_json, tools, unlock, validate
from engine.errors import EngineError
from engine.untrusted import escape_lines
from engine.wiring import Wiring

MAX_PARALLEL = min(4, os.cpu_count() or 1)


def _emit(text: str, err: bool = False) -> None:
    click.echo(text, err=err)


class EngineCLI(click.Group):
    """Runs a command and renders its ``Outcome``; the one place errors become text and exit codes."""

    def invoke(self, ctx: click.Context):
        try:
            outcome = super().invoke(ctx)
        except EngineError as exc:
            if ctx.meta.get("as_json"):
                _emit(to_json({"ok": False, **exc.to_dict()}))
            else:
                _emit(f"error: {exc.message}", err=True)
                if exc.hint:
                    _emit(f"hint: {exc.hint}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            _emit("interrupted", err=True)
            ctx.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 - last resort: a bug, not a user error
            if os.environ.get("ENGINE_DEBUG"):
                traceback.print_exc()
            bug = EngineError(f"internal error: {type(exc).__name__}: {exc}", hint="set ENGINE_DEBUG=1 for a traceback and report it")
            _emit(to_json({"ok": False, **bug.to_dict()}) if ctx.meta.get("as_json") else f"error: {bug.message}\nhint: {bug.hint}",
                  err=not ctx.meta.get("as_json"))
            ctx.exit(1)
        finally:
            if isinstance(ctx.obj, Wiring):
                ctx.obj.close()
        if isinstance(outcome, Outcome):
            _emit(to_json(outcome.data) if ctx.meta.get("as_json") and not outcome.json_only else outcome.render_text())
            for line in outcome.warnings:
                _emit(f"warning: {escape_lines(line)}", err=True)
            ctx.exit(outcome.exit_code)
        return outcome


def _as_json(ctx: click.Context, _param, value: bool) -> bool:
    ctx.meta["as_json"] = ctx.meta.get("as_json") or value
    return value


json_option = click.option("--json", "as_json", is_flag=True, expose_value=False, callback=_as_json, is_eager=True,
                           help="Print a machine-readable JSON result on stdout.")
env_option = click.option("--env", "environments", multiple=True, metavar="ENV", help="Only this environment (repeatable). Default: all.")
all_option = click.option("--all", "all_customers", is_flag=True, help="Every customer in the catalog.")
changed_option = click.option("--changed-from", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
                              help="Customers affected by the changed files listed in FILE (e.g. `git diff --name-only`).")
parallel_option = click.option("--parallel", type=click.IntRange(1, 64), default=MAX_PARALLEL, show_default=True, help="How many at once.")
dry_run_option = click.option("--dry-run", is_flag=True, help="Read everything, print every GitHub write instead of making it.")
lock_timeout_option = click.option("--lock-timeout", type=click.FloatRange(0, 3600), default=0, show_default=True, metavar="SECONDS",
                                   help="Wait this long for another operation on the same stack to finish before failing.")


@click.group(cls=EngineCLI, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--catalog", metavar="PATH", help="Provider repository holding stacks/ (default: $ENGINE_CATALOG or the current directory).")
@click.option("--home", metavar="PATH", help="Where state, work dirs and local resources live (default: $ENGINE_HOME or ~/.local/share/managed-infra-engine).")
@click.version_option(package_name="managed-infra-engine", prog_name="engine")
@click.pass_context
def main(ctx: click.Context, catalog: str | None, home: str | None) -> None:
    """Managed Infrastructure Engine: one Pulumi stack per customer and environment."""
    process.install_signal_handlers()
    ctx.obj = Wiring.from_options(catalog, home)


def _operation(name: str, help_text: str, confirm: bool = False, fleet: bool = False) -> None:
    options = [click.argument("customer", required=not fleet), env_option, json_option, lock_timeout_option,
               click.option("--quiet", "-q", is_flag=True, help="No live progress on stderr.")]
    if confirm:
        options.append(click.option("--yes", is_flag=True, help="Confirm: this deletes every resource of the selected stacks."))
    if fleet:
        options += [all_option, changed_option, parallel_option]

    def command(w: Wiring, customer, environments, lock_timeout, quiet, **fleet_args) -> Outcome:
        w.lock_timeout = lock_timeout
        return operate.run(w, name, customer, environments, quiet=quiet, **fleet_args)

    for option in reversed(options):
        command = option(command)
    main.command(name=name, help=help_text)(click.pass_obj(command))


_operation("up", "Create or update the customer's stacks (one per environment), or every customer's with --all.", fleet=True)
_operation("preview", "Show what `up` would change, without changing anything.", fleet=True)
_operation("refresh", "Read the real resources and update the state to match (shows out-of-band changes).", fleet=True)
_operation("destroy", "Delete every resource of the customer's stacks, then the stacks themselves.", confirm=True)
_operation("outputs", "Print the outputs of the customer's stacks (secret values masked).")


@main.command(name="list")
@click.argument("customer", required=False)
@json_option
@click.pass_obj
def list_command(w: Wiring, customer: str | None) -> Outcome:
    """List onboarded customers, or one customer's stacks with their last update."""
    return listing.run(w, customer)


@main.command(name="validate")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--kind", type=click.Choice(["auto", "customer", "tenant"]), default="auto", show_default=True,
              help="customer = infra/variables.yml, tenant = stacks/<customer>.yml; auto decides by content.")
@json_option
def validate_command(path: Path, kind: str) -> Outcome:
    """Check a customer file or tenant record; exit 2 with file, line and key on problems."""
    return validate.run(path, kind)


@main.command()
@click.argument("kind", type=click.Choice(["customer", "tenant"]), default="customer")
def schema(kind: str) -> Outcome:
    """Print the JSON Schema of a customer file or tenant record (for editors)."""
    return validate.schema(kind)


@main.command(name="plan-targets")
@click.argument("customer")
@env_option
@click.pass_obj
def plan_targets_command(w: Wiring, customer: str, environments: tuple[str, ...]) -> Outcome:
    """Print the resolved stack targets (tool, program, backend, config) as JSON; runs nothing."""
    return plan_targets.run(w, customer, environments)


@main.command(name="unlock")
@click.argument("customer")
@click.option("--env", "environment", required=True, help="The environment whose stack lock to clear.")
@click.option("--lock-id", help="Terraform path: the lock ID shown in the lock error.")
@click.option("--yes", is_flag=True, help="Confirm that no operation is running on this stack.")
@json_option
@click.pass_obj
def unlock_command(w: Wiring, customer: str, environment: str, lock_id: str | None, yes: bool) -> Outcome:
    """Clear a lock left by a crashed operation (`pulumi cancel` / `tofu force-unlock`); refused while a run holds it."""
    return unlock.run(w, customer, environment, lock_id, yes)


@main.command(name="event")
@click.argument("event_name")
@click.argument("payload_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--customer", help="For pull_request/push events of the manager repository: the customer to run.")
@click.option("--mode", type=click.Choice(["plan", "apply"]), help="Override the mode the event asks for (plan = preview, apply = up).")
@env_option
@dry_run_option
@lock_timeout_option
@json_option
@click.pass_obj
def event_command(w: Wiring, event_name, payload_path, customer, mode, environments, dry_run, lock_timeout) -> Outcome:
    """Handle a GitHub event (e.g. "$GITHUB_EVENT_NAME" "$GITHUB_EVENT_PATH"): plan or apply, and report to the customer's repository."""
    w.lock_timeout = lock_timeout
    return event.run(w, event_name, payload_path, customer, mode, environments, dry_run)


@main.command(name="drift")
@click.argument("customers", nargs=-1)
@all_option
@env_option
@click.option("--shard", default="1/1", show_default=True, metavar="I/N", help="Check only the I-th of N equal shares (for parallel CI jobs).")
@parallel_option
@click.option("--remediate", is_flag=True, help="Re-apply the desired state of drifted stacks whose tenant allows it (drift_auto_remediate).")
@click.option("--markdown", is_flag=True, help="Print a Markdown table (for job summaries).")
@click.option("--report", "report_to", type=click.Choice(["none", "github"]), default="none", show_default=True,
              help="github: open/update/close one drift issue per stack (repository per tenant record's drift_issues).")
@dry_run_option
@json_option
@click.pass_obj
def drift_command(w: Wiring, **args) -> Outcome:
    """Check stacks for changes made outside the engine, without writing state. Exit 0 in sync, 3 drift found, 1 errors."""
    return drift.run(w, **args)


@main.command(name="compliance")
@click.option("--policy", "policy_path", type=click.Path(dir_okay=False, path_type=Path), help="Property policy (default: policy/properties.yml in the catalog).")
@click.option("--source", help="Source of truth: a CMDB export (CSV, JSON or YAML), a file path or an http(s) URL.")
@click.option("--remediate", is_flag=True, help="Write the source of truth's values back to repositories that differ.")
@dry_run_option
@json_option
@click.pass_obj
def compliance_command(w: Wiring, **args) -> Outcome:
    """Check every customer repository's custom properties. Exit 0 compliant, 3 property drift, 1 errors."""
    return compliance.run(w, **args)


@main.command(name="matrix")
@click.argument("customers", nargs=-1)
@all_option
@changed_option
@env_option
@click.pass_obj
def matrix_command(w: Wiring, **args) -> Outcome:
    """Print a GitHub Actions job matrix (customer × environment) to fan out across runners."""
    return matrix.run(w, **args)


@main.command(name="history")
@click.argument("customer", required=False)
@click.option("--env", "environment", metavar="ENV", help="Only this environment.")
@click.option("--limit", type=click.IntRange(1, 10000), default=20, show_default=True, help="At most this many runs.")
@json_option
@click.pass_obj
def history_command(w: Wiring, **args) -> Outcome:
    """Recorded operations, newest first ($ENGINE_HOME/history.sqlite3, or ENGINE_HISTORY_URL)."""
    return history.run(w, **args)


@main.group(name="tools")
def tools_group() -> None:
    """The pinned binaries the engine needs (pulumi, tofu; actionlint for the workflow tests)."""


@tools_group.command(name="install")
@click.option("--tool", "names", multiple=True, type=click.Choice(tools.ALL), help="Only this tool (repeatable). Default: all.")
@json_option
def tools_install(names: tuple[str, ...]) -> Outcome:
    """Make sure each tool is available: PATH, cache, download, or a build from the Go module proxy."""
    return tools.install(names)


@tools_group.command(name="status")
@json_option
def tools_status() -> Outcome:
    """Show which tools are available, without installing anything."""
    return tools.status()


if __name__ == "__main__":
    main()
