"""``engine`` — the command line: parses arguments, calls a command module, renders its outcome.

Each verb lives in ``engine/commands/`` and is declared once in ``COMMANDS`` below (its
arguments and options).  This file is the single error boundary: an ``EngineError``
becomes a message and an exit code — 0 ok, 1 an operation failed, 2 bad input (nothing
was deployed), 3 drift found — and nothing else ever shows a traceback.
"""

from __future__ import annotations

import functools
import os
import traceback
from pathlib import Path

import click

from engine import process
from engine.commands import (Outcome, compliance, drift, environments, event, history, listing, matrix, not_applied, operate, plan_targets,
                             rollout, to_json, tools, unlock, validate)
from engine.errors import EngineError
from engine.untrusted import escape_lines
from engine.wiring import Wiring


class EngineCLI(click.Group):
    """Runs a command and renders its ``Outcome``; the one place errors become text and exit codes."""

    def invoke(self, ctx: click.Context):
        as_json = lambda: bool(ctx.meta.get("as_json"))  # noqa: E731 - set while parsing (--json)
        try:
            outcome = super().invoke(ctx)
        except EngineError as exc:
            click.echo(to_json({"ok": False, **exc.to_dict()}) if as_json() else
                       f"error: {exc.message}" + (f"\nhint: {exc.hint}" if exc.hint else ""), err=not as_json())
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 - last resort: a bug, not a user error
            if os.environ.get("ENGINE_DEBUG"):
                traceback.print_exc()
            bug = EngineError(f"internal error: {type(exc).__name__}: {exc}", hint="set ENGINE_DEBUG=1 for a traceback and report it")
            click.echo(to_json({"ok": False, **bug.to_dict()}) if as_json() else f"error: {bug.message}\nhint: {bug.hint}", err=not as_json())
            ctx.exit(1)
        finally:
            if isinstance(ctx.obj, Wiring):
                ctx.obj.close()
        if isinstance(outcome, Outcome):
            click.echo(to_json(outcome.data) if as_json() and not outcome.json_only else outcome.render_text())
            for line in outcome.warnings:
                click.echo(f"warning: {escape_lines(line)}", err=True)
            ctx.exit(outcome.exit_code)
        return outcome


def _as_json(ctx: click.Context, _param, value: bool) -> bool:
    ctx.meta["as_json"] = ctx.meta.get("as_json") or value
    return value


# Parameters, one line each (fresh objects per command).
def opt(*decls, **kw):
    return lambda: click.Option(list(decls), **kw)


def arg(name, **kw):
    return lambda: click.Argument([name], **kw)


JSON = opt("--json", "as_json", is_flag=True, expose_value=False, callback=_as_json, is_eager=True, help="Print a machine-readable JSON result on stdout.")
ENV = opt("--env", "environments", multiple=True, metavar="ENV", help="Only this environment (repeatable). Default: all.")
ALL = opt("--all", "all_customers", is_flag=True, help="Every customer in the catalog.")
CHANGED = opt("--changed-from", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Customers affected by the changed files listed in FILE (e.g. `git diff --name-only`).")
PARALLEL = opt("--parallel", type=click.IntRange(1, 64), default=min(4, os.cpu_count() or 1), show_default=True, help="How many at once.")
DRY_RUN = opt("--dry-run", is_flag=True, help="Read everything, print every GitHub write instead of making it.")
LOCK = opt("--lock-timeout", type=click.FloatRange(0, 3600), default=0, show_default=True, metavar="SECONDS",
           help="Wait this long for another operation on the same stack to finish before failing.")
QUIET = opt("--quiet", "-q", is_flag=True, help="No live progress on stderr.")
YES = opt("--yes", is_flag=True, help="Confirm.")
CUSTOMER, CUSTOMERS, MAYBE_CUSTOMER = arg("customer"), arg("customers", nargs=-1), arg("customer", required=False)
OPERATION = [CUSTOMER, ENV, JSON, LOCK, QUIET]
FLEET = [MAYBE_CUSTOMER, ENV, JSON, LOCK, QUIET, ALL, CHANGED, PARALLEL]

# name -> (handler, takes the wiring, parameters, help).  Handlers are the command modules' functions.
COMMANDS = {
    "up": (functools.partial(operate.run, operation="up"), True,
           [*FLEET, opt("--refresh", is_flag=True, help="Read the real resources first, so changes made outside the tools are put back.")],
           "Create or update the customer's stacks (one per environment), or every customer's with --all."),
    "preview": (functools.partial(operate.run, operation="preview"), True, FLEET, "Show what `up` would change, without changing anything."),
    "refresh": (functools.partial(operate.run, operation="refresh"), True, FLEET,
                "Read the real resources and update the state to match (shows out-of-band changes)."),
    "destroy": (functools.partial(operate.run, operation="destroy"), True, [*OPERATION, YES],
                "Delete every resource of the customer's stacks, then the stacks themselves (needs --yes)."),
    "outputs": (functools.partial(operate.run, operation="outputs"), True, OPERATION, "Print the outputs of the customer's stacks (secret values masked)."),
    "list": (listing.run, True, [MAYBE_CUSTOMER, JSON], "List onboarded customers, or one customer's stacks with their last update."),
    "validate": (validate.run, False, [arg("path", type=click.Path(dir_okay=False, path_type=Path)), JSON,
                                       opt("--kind", type=click.Choice(["auto", "customer", "tenant"]), default="auto", show_default=True,
                                           help="customer = infra/variables.yml, tenant = stacks/<customer>.yml; auto decides by content.")],
                 "Check a customer file or tenant record; exit 2 with file, line and key on problems."),
    "schema": (validate.schema, False, [arg("kind", type=click.Choice(["customer", "tenant"]), default="customer")],
               "Print the JSON Schema of a customer file or tenant record (for editors)."),
    "plan-targets": (plan_targets.run, True, [CUSTOMER, ENV], "Print the resolved stack targets (tool, program, backend, config) as JSON; runs nothing."),
    "unlock": (unlock.run, True, [CUSTOMER, opt("--env", "environment", required=True, help="The environment whose lock to clear."), JSON,
                                  opt("--lock-id", help="Terraform path: the lock ID shown in the lock error."), YES],
               "Clear a lock a crashed operation left (`pulumi cancel` / `tofu force-unlock`); refused while a run holds it."),
    "event": (event.run, True, [arg("event_name"), arg("payload_path", type=click.Path(dir_okay=False, path_type=Path)), ENV, LOCK, JSON,
                                opt("--dry-run", is_flag=True, help="Change nothing: preview instead of apply; print every GitHub write and "
                                                                     "state write a real run would make."),
                                opt("--source", type=click.Path(file_okay=False, path_type=Path), metavar="PATH",
                                    help="With --dry-run: a local checkout of the customer's repository stands in for GitHub (no credentials "
                                         "needed; custom properties from the tenant record)."),
                                opt("--customer", help="For pull_request/push events of the manager repository: the customer to run."),
                                opt("--mode", type=click.Choice(["plan", "apply"]), help="Override the mode the event asks for.")],
              'Handle a GitHub event: plan or apply, and report to the customer\'s repository ("$GITHUB_EVENT_NAME" "$GITHUB_EVENT_PATH").'),
    "drift": (drift.run, True, [CUSTOMERS, ALL, ENV, PARALLEL, JSON,
                                opt("--dry-run", is_flag=True, help="Change nothing: list the remediations and GitHub writes instead of making them."),
                                opt("--shard", default="1/1", show_default=True, metavar="I/N", help="Check only the I-th of N equal shares."),
                                opt("--remediate", is_flag=True, help="Re-apply the desired state where the tenant allows it (drift_auto_remediate)."),
                                opt("--markdown", is_flag=True, help="Print a Markdown table (for job summaries)."),
                                opt("--report", "report_to", type=click.Choice(["none", "github"]), default="none", show_default=True,
                                    help="github: open/update/close one drift issue per stack.")],
              "Check stacks for changes made outside the engine, without writing state. Exit 0 in sync, 3 drift found, 1 errors."),
    "compliance": (compliance.run, True, [DRY_RUN, JSON, opt("--policy", "policy_path", type=click.Path(dir_okay=False, path_type=Path),
                                                              help="Property policy (default: policy/properties.yml in the catalog)."),
                                          opt("--source", help="Source of truth: a CMDB export (CSV, JSON or YAML), a file path or an http(s) URL."),
                                          opt("--remediate", is_flag=True, help="Write the source of truth's values back to repositories that differ.")],
                   "Check every customer repository's custom properties. Exit 0 compliant, 3 property drift, 1 errors."),
    "matrix": (matrix.run, True, [CUSTOMERS, ALL, CHANGED, ENV, opt("--waves", is_flag=True, help="Cut it into waves: wave i = every customer's i-th environment.")],
               "Print a GitHub Actions job matrix (customer × environment)."),
    "environments": (environments.run, True, [CUSTOMER, ENV, opt("--at", metavar="SHA", help="Read the customer file at this commit of the "
                                                                      "customer's repository (GitHub API; empty = its default branch).")],
                     "Print the customer's environments in file order as JSON (the deploy workflow's stages)."),
    "not-applied": (not_applied.run, True, [CUSTOMER, opt("--env", "environments", multiple=True, required=True, metavar="ENV",
                                                          help="An environment that was not applied (repeatable)."), JSON, DRY_RUN,
                                            opt("--at", default="", metavar="SHA", help="The customer's commit (empty = its default branch's head)."),
                                            opt("--reason", required=True, help="Why: shown as the status description \"not run: REASON\".")],
                    "Report environments a deploy did not apply: commit status infra/<env> = error, so nothing waits for them."),
    "history": (history.run, True, [MAYBE_CUSTOMER, JSON, opt("--env", "environment", metavar="ENV", help="Only this environment."),
                                    opt("--limit", type=click.IntRange(1, 10000), default=20, show_default=True, help="At most this many runs.")],
                "Recorded operations, newest first ($ENGINE_HOME/history.sqlite3, or ENGINE_HISTORY_URL)."),
}
TOOLS = {
    "install": (tools.install, False, [JSON, opt("--tool", "names", multiple=True, type=click.Choice(tools.ALL), help="Only this tool (repeatable).")],
                "Make sure each tool is available: PATH, cache, download, or a build from the Go module proxy."),
    "status": (tools.status, False, [JSON], "Show which tools are available, without installing anything."),
}


def _command(name: str, handler, wired: bool, params: list, help_text: str) -> click.Command:
    def callback(**kwargs):
        return handler(click.get_current_context().obj, **kwargs) if wired else handler(**kwargs)

    return click.Command(name, params=[p() for p in params], callback=callback, help=help_text)


@click.group(cls=EngineCLI, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--catalog", metavar="PATH", help="Provider repository holding stacks/ (default: $ENGINE_CATALOG or the current directory).")
@click.option("--home", metavar="PATH", help="Where state, work dirs and local resources live (default: $ENGINE_HOME or ~/.local/share/managed-infra-engine).")
@click.version_option(package_name="managed-infra-engine", prog_name="engine")
@click.pass_context
def main(ctx: click.Context, catalog: str | None, home: str | None) -> None:
    """Managed Infrastructure Engine: one Pulumi stack per customer and environment."""
    process.install_signal_handlers()
    ctx.obj = Wiring.from_options(catalog, home)


for _name, _spec in COMMANDS.items():
    main.add_command(_command(_name, *_spec))
PR = opt("--pr", type=click.IntRange(1, 10**9), metavar="N", help="Write the summary comment on this pull request of $GITHUB_REPOSITORY.")
DETAILS = opt("--details", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help='Append every stack\'s full plan or result (Markdown) to FILE, e.g. "$GITHUB_STEP_SUMMARY".')
REQUIRED_CHANGED = opt("--changed-from", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE", required=True,
                       help="The changed files (e.g. `git diff --name-only`): customers whose stacks they affect.")
RESULTS = opt("--results", type=click.Path(file_okay=False, path_type=Path), metavar="DIR", help="Where the rollout's jobs left their results.")
ROLLOUT = {
    "plan": (rollout.plan, True, [REQUIRED_CHANGED, PR, PARALLEL, DETAILS, DRY_RUN, JSON, QUIET],
             "Preview every customer × environment a provider change affects; ONE summary comment on the pull request."),
    "apply": (rollout.apply, True, [CUSTOMER, ENV, JSON, LOCK, QUIET, RESULTS,
                                    opt("--after", metavar="ENV", help="Apply only if this environment's job succeeded (its result is in --results).")],
              "Apply one stack of a rollout (one matrix job), after the customer's previous environment succeeded."),
    "report": (rollout.report, True, [REQUIRED_CHANGED, opt("--results", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
                                                            required=True, help="Where the rollout's jobs left their results."),
                                      PR, DETAILS, DRY_RUN, JSON],
               "Collect a rollout's results into the summary comment; a stack without a result counts as failed."),
}
tools_group = click.Group("tools", help="The pinned binaries the engine needs (pulumi, tofu; actionlint for the workflow tests).")
for _name, _spec in TOOLS.items():
    tools_group.add_command(_command(_name, *_spec))
main.add_command(tools_group)
rollout_group = click.Group("rollout", help="A provider change rolled out to every customer it affects, with one summary comment.")
for _name, _spec in ROLLOUT.items():
    rollout_group.add_command(_command(_name, *_spec))
main.add_command(rollout_group)

if __name__ == "__main__":
    main()
