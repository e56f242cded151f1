"""``engine`` — the command line: parses arguments, calls a command module, renders its outcome.

Each verb lives in ``engine/commands/`` with its arguments and options (``VERBS``; all of them in
``engine/commands/registry.py``).  This file is the single error boundary: an ``EngineError``
becomes a message and an exit code — 0 ok, 1 an operation failed, 2 bad input (nothing was
deployed), 3 drift found — and nothing else ever shows a traceback.
"""

from __future__ import annotations

import os
import traceback

import click

from engine import process
from engine.commands import Outcome, to_json
from engine.commands.options import Verb
from engine.commands.registry import GROUPS, VERBS
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


def _command(verb: Verb) -> click.Command:
    def callback(**options):
        return verb.run(click.get_current_context().obj, **options) if verb.wired else verb.run(**options)

    return click.Command(verb.name, params=[p() for p in verb.params], callback=callback, help=verb.help)


@click.group(cls=EngineCLI, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--catalog", metavar="PATH", help="Provider repository holding stacks/ (default: $ENGINE_CATALOG or the current directory).")
@click.option("--home", metavar="PATH", help="Where state, work dirs and local resources live (default: $ENGINE_HOME or ~/.local/share/managed-infra-engine).")
@click.version_option(package_name="managed-infra-engine", prog_name="engine")
@click.pass_context
def main(ctx: click.Context, catalog: str | None, home: str | None) -> None:
    """Managed Infrastructure Engine: one stack per customer and environment (Pulumi, or Terraform/OpenTofu for terraform customers)."""
    process.install_signal_handlers()
    ctx.obj = Wiring.from_options(catalog, home)


for _name, _help in GROUPS.items():
    main.add_command(click.Group(_name, help=_help))
for _verb in VERBS:
    (main.commands[_verb.group] if _verb.group else main).add_command(_command(_verb))

if __name__ == "__main__":
    main()
