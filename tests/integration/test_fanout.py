"""Fleet fan-out with the real tools: many stacks at once, no races, readable output, one JSON result."""

from __future__ import annotations

import json
import shutil

from tests.conftest import SMALL_CONFIG, EngineCLI, make_catalog, tenant_record

TF = 'properties:\n  infrastructure_tools: [terraform]\n  terraform_version: "1.6"\n'


def fleet(tmp_path, n: int = 10) -> EngineCLI:
    tenants = {f"f{i}": (tenant_record(f"f{i}", 20 + i) + (TF if i % 3 == 2 else ""), SMALL_CONFIG.format(name=f"fleet-{i}")) for i in range(n)}
    return EngineCLI(tmp_path / "home", make_catalog(tmp_path / "c", tenants))


def test_twenty_stacks_in_parallel_repeatedly_without_races(tmp_path):
    cli = fleet(tmp_path, 10)
    for attempt in range(2):
        run = cli("up", "--all", "--parallel", "4", "--json")
        assert run.code == 0, run.stdout[-3000:] + run.stderr[-3000:]
        data = run.json()
        assert data["summary"] == {"customers": 10, "stacks": 20, "succeeded": 20, "failed": 0, "skipped": 0, "blocked": 0}
        creates = sum(s["changes"]["create"] for c in data["customers"].values() for s in c["environments"].values())
        assert creates == (0 if attempt else 233), creates  # 7 pulumi × (11+12) + 3 terraform × (11+13) on the first run
        text = run.stdout + run.stderr
        for race in ("workspace.json", "concurrent update", "plugin", "locked by", "Traceback"):
            assert race not in text, race
        # one progress line per stack on stderr, in completion order
        assert len([ln for ln in run.stderr.splitlines() if ln.startswith("[")]) == 20


def test_changed_files_select_customers_and_matrix(tmp_path):
    cli = fleet(tmp_path, 4)
    changed = tmp_path / "changed.txt"
    changed.write_text("stacks/f0.yml\ncustomers/f1/infra/variables.yml\nREADME.md\n")
    run = cli("preview", "--changed-from", str(changed), "--json", check=0)
    assert sorted(run.json()["customers"]) == ["f0", "f1"]
    changed.write_text("terraform/local/main.tf\n")  # the local OpenTofu module: every terraform tenant on the local target
    assert sorted(cli("preview", "--changed-from", str(changed), "--json", check=0).json()["customers"]) == ["f2"]
    matrix = json.loads(cli("matrix", "--all", "--env", "production", check=0).stdout)
    assert matrix == {"include": [{"customer": f"f{i}", "environment": "production", "tool": "terraform" if i == 2 else "pulumi"} for i in range(4)]}


def test_a_failing_customer_does_not_stop_the_others(tmp_path):
    cli = fleet(tmp_path, 3)
    blocker = cli.home / "local-cloud/f1/staging/network"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("in the way")
    run = cli("up", "--all", "--parallel", "3", "--json")
    assert run.code == 1
    data = run.json()
    assert data["summary"]["failed"] == 1 and data["summary"]["skipped"] == 1 and data["summary"]["succeeded"] == 4
    assert data["customers"]["f1"]["environments"]["staging"]["error"].startswith("vpc: FileExistsError")


def test_twenty_terraform_tenants_with_fresh_work_dirs_init_concurrently_without_failures(tmp_path):
    """Concurrent `tofu init`s share one plugin cache (issue 9, item 12): 20 at once, five times, from fresh work dirs.

    Without a dependency lock file every init re-installed the provider into the shared cache while
    others read it (tofu crashed in LinkFromOtherCache, plans found "Required plugins are not installed").
    """
    tenants = {f"t{i:02d}": (tenant_record(f"t{i:02d}", 100 + i) + TF, SMALL_CONFIG.format(name=f"tf-{i}")) for i in range(20)}
    cli = EngineCLI(tmp_path / "home", make_catalog(tmp_path / "c", tenants))
    for attempt in range(5):
        for work in (cli.home / "work").glob("*/*/terraform") if (cli.home / "work").exists() else []:
            shutil.rmtree(work)  # fresh work dirs every round: every stack runs `tofu init`
        if attempt == 0:
            shutil.rmtree(cli.home / "tofu", ignore_errors=True)  # …and the first round starts with an empty plugin cache
        run = cli("preview", "--all", "--parallel", "20", "--json")
        assert run.code == 0, f"round {attempt + 1}: " + run.stdout[-3000:] + run.stderr[-3000:]
        data = run.json()
        assert data["summary"] == {"customers": 20, "stacks": 40, "succeeded": 40, "failed": 0, "skipped": 0, "blocked": 0}, f"round {attempt + 1}"
        for broken in ("Required plugins are not installed", "LinkFromOtherCache", "plugin-cache", "panic"):
            assert broken not in run.stdout + run.stderr, (attempt, broken)
