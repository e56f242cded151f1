#!/usr/bin/env python3
"""Benchmark: what policy and cost add to one stack's preview (target: at most 0.3 s, median).

Usage: .venv/bin/python bench/policy_cost.py [--runs 15] [--write docs/PERFORMANCE.md]

Two measurements:

1. The added steps, in one process, on real plans: building the plan document (from the stored OpenTofu plans of
   the AWS and local modules, and from a real Pulumi preview's steps), pricing it, and one `opa eval` of the shipped
   policies (a fresh OPA process per evaluation, as the engine runs it).  The price catalog is parsed once per
   process (cached); its first load is reported separately.
2. End to end, for context: a fresh `engine preview --env production` against `engine policy eval --env production`
   (the same preview, then document, cost and policy), alternately; the difference of the medians.  Previews vary by
   several tenths of a second, so this difference is noisy — (1) is the measurement the target is judged on.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import engine, machine, timed, write_section  # noqa: E402

CUSTOMER = """project_name: bench
environments:
  production:
    instance_type: t3.small
    instance_count: 2
    database:
      engine: postgres
      instance_class: db.t3.small
      multi_az: true
monitoring:
  alert_email: ops@example.com
tags:
  cost-center: "4711"
"""


def _median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.0f} ms"


def in_process(runs: int) -> tuple[list[tuple[str, int, list[float], list[float], list[float]]], float]:
    from engine import cost, opa, policy
    from engine.plan_document import from_terraform_plan
    from tests.plans import fixture_target, pulumi_steps, terraform_plan
    from engine.plan_document import from_pulumi_preview

    opa.ensure()
    t0 = time.perf_counter()
    cost._load_catalog.cache_clear()
    cost.load_catalog()
    catalog_first = time.perf_counter() - t0
    cases = [
        ("OpenTofu plan, AWS module (update)", lambda: from_terraform_plan(terraform_plan("aws", "update"), fixture_target("aws", "update"))),
        ("OpenTofu plan, local module (update)", lambda: from_terraform_plan(terraform_plan("local", "update"), fixture_target("local", "update"))),
    ]
    steps = pulumi_steps(fixture_target("aws"))
    cases.append(("Pulumi preview steps, AWS program", lambda: from_pulumi_preview(steps, fixture_target("aws"))))
    rows = []
    for name, build in cases:
        documents, costs, policies = [], [], []
        for _ in range(runs):
            t = time.perf_counter()
            doc = build()
            documents.append(time.perf_counter() - t)
            t = time.perf_counter()
            estimate = cost.estimate(doc)
            costs.append(time.perf_counter() - t)
            t = time.perf_counter()
            policy.evaluate(doc, estimate, policy.Budget(provider_max=500.0))
            policies.append(time.perf_counter() - t)
        rows.append((name, len(doc.resources), documents, costs, policies))
    return rows, catalog_first


def end_to_end(runs: int) -> tuple[list[float], list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        catalog = root / "catalog"
        (catalog / "stacks").mkdir(parents=True)
        (catalog / "stacks" / "bench.yml").write_text("customer: bench\nrepository: bench/app\nsource: customers/bench\ntarget: local\nnetwork_index: 1\n")
        (catalog / "customers" / "bench" / "infra").mkdir(parents=True)
        (catalog / "customers" / "bench" / "infra" / "variables.yml").write_text(CUSTOMER)
        home = root / "home"
        engine(home, catalog, "preview", "bench", "-q")  # warm: stack created, plugins loaded once
        previews, evals = [], []
        for _ in range(runs):
            previews.append(timed(lambda: engine(home, catalog, "preview", "bench", "--env", "production", "-q")))
            evals.append(timed(lambda: engine(home, catalog, "policy", "eval", "bench", "--env", "production", "-q", "--json")))
        out = json.loads(engine(home, catalog, "policy", "eval", "bench", "--env", "production", "-q", "--json").stdout)
        assert not out["environments"]["production"]["policy"]["denied"], out
        return previews, evals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--e2e-runs", type=int, default=7)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    rows, catalog_first = in_process(args.runs)
    previews, evals = end_to_end(args.e2e_runs)
    lines = ["| Plan | Resources | Plan document | Cost | Policy (`opa eval`) | **Added, total** |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, count, documents, costs, policies in rows:
        total = [d + c + p for d, c, p in zip(documents, costs, policies)]
        lines.append(f"| {name} | {count} | {_median_ms(documents)} | {_median_ms(costs)} | {_median_ms(policies)} | **{_median_ms(total)}** |")
    diff = statistics.median(evals) - statistics.median(previews)
    body = f"""
Policy and cost after a stack's preview: building the plan document, pricing it with `policy/pricing.yml` and one
`opa eval` (a fresh OPA v1.22 process) of the shipped policies (`policy/*.rego`); medians of {args.runs} runs on real
plans, measured on {machine()}. Target: at most 0.3 s per stack.

Reproduce: `.venv/bin/python bench/policy_cost.py --runs {args.runs} --write docs/PERFORMANCE.md`

{chr(10).join(lines)}

The price catalog is parsed once per process ({catalog_first * 1000:.0f} ms the first time; included in no row above).
End to end, `engine preview --env production` (median {statistics.median(previews):.2f} s of {args.e2e_runs}) against
`engine policy eval --env production` (median {statistics.median(evals):.2f} s): {diff:+.2f} s — previews vary by
several tenths of a second between runs, so this difference is indicative only.
"""
    write_section(args.write, "Policy and cost per stack", body)


if __name__ == "__main__":
    main()
