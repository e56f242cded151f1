"""``engine policy test`` (the policies' own unit tests) and ``engine policy eval CUSTOMER`` (preview, then decide).

``eval`` changes nothing: it previews the customer's stacks, builds each plan document, prices it and shows the
policies' input and decisions.  Exit 0 allowed (warnings may be shown), 1 a policy denies or a preview failed.
"""

from __future__ import annotations

import click

from engine import policy
from engine.catalog import check_customer_id
from engine.commands import Outcome
from engine.commands.operate import progress_wanted
from engine.commands.options import CUSTOMER, ENV, JSON, QUIET, Verb, opt
from engine.errors import EXIT_FAILED, EXIT_OK
from engine.governance import Sources, govern
from engine.reporters.console import ConsoleProgress
from engine.reporters.governance import render_governance, render_tests
from engine.wiring import Wiring


def install() -> Outcome:
    """The pinned ``opa``: PATH, the shared tool cache, the official binary, or a build from the Go module proxy (once)."""
    from engine import opa

    tool = opa.ensure()
    return Outcome({"tools": [tool.to_dict()]}, f"opa         v{tool.version:<10} {tool.bin_dir}  ({tool.source})")


def test(w: Wiring) -> Outcome:
    sources = Sources.for_catalog(w.catalog_root)
    report = policy.run_tests(sources.policy_dir)
    return Outcome({**report.to_dict(), "policy_dir": str(sources.policy_dir)}, lambda: render_tests(report),
                   EXIT_OK if report.ok else EXIT_FAILED)


def evaluate(w: Wiring, customer: str, environments: tuple[str, ...] = (), quiet: bool = False, show_input: bool = False) -> Outcome:
    engine = w.engine()
    w.stream.subscribe(ConsoleProgress(enabled=progress_wanted(quiet)))
    sources = Sources.for_catalog(w.catalog_root)
    stacks = govern(engine, check_customer_id(customer), list(environments) or None, sources)
    blocked = any(s.problem or (s.decisions is not None and s.decisions.denied) for s in stacks)
    data = {"customer": customer, "ok": not blocked, "policy_dir": str(sources.policy_dir),
            "environments": {s.environment: s.to_dict(with_input=True) for s in stacks}}

    def text() -> str:
        body = render_governance(customer, stacks)
        if show_input:
            from engine.commands import to_json

            body += "\n" + "\n".join(to_json(s.to_dict(with_input=True).get("input")) for s in stacks)
        return body

    return Outcome(data, text, EXIT_FAILED if blocked else EXIT_OK)


VERBS = (
    Verb("install", install, (JSON,), "Provide the pinned opa (cached; built from the Go module proxy when its download site is unreachable).",
         wired=False, group="policy"),
    Verb("test", test, (JSON,), "Run the policies' unit tests (opa test over policy/*.rego).", group="policy"),
    Verb("eval", evaluate, (CUSTOMER, ENV, JSON, QUIET, opt("--input", "show_input", is_flag=True, help="Also print the policy input (always in --json).")),
         "Preview the customer's stacks and show each plan's cost and policy decisions (exit 1 on a deny); changes nothing.", group="policy"),
)
