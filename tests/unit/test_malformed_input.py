"""Malformed customer files: each exits 2 naming file, line and key path; no traceback; nothing deployed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import EngineCLI, make_catalog, tenant_record

GOOD_HEAD = "project_name: shop\nenvironments:\n  staging:\n    instance_type: t3.micro\n"

# (id, document, expected line, expected key path, words the reason must contain)
CASES: list[tuple[str, str | bytes, int | None, str, str]] = [
    ("tab-indent", "project_name: shop\nenvironments:\n\tstaging:\n", 3, "environments", "syntax"),
    ("unclosed-quote", 'project_name: "shop\nenvironments: {}\n', 3, "project_name", "syntax"),
    ("unclosed-flow", "project_name: shop\nenvironments: [staging\n", 3, "environments", "syntax"),
    ("unknown-top-key", GOOD_HEAD + "enviroments: {}\n", 5, "enviroments", "did you mean 'environments'"),
    ("unknown-env-key", "project_name: shop\nenvironments:\n  staging:\n    instance_type: t3.micro\n    instance_typo: x\n", 5, "environments.staging.instance_typo", "did you mean 'instance_type'"),
    ("count-is-string", GOOD_HEAD + "    instance_count: two\n", 5, "environments.staging.instance_count", "expected an integer"),
    ("environments-list", "project_name: shop\nenvironments:\n  - staging\n", 2, "environments", "expected a mapping"),
    ("environments-empty", "project_name: shop\nenvironments: {}\n", 2, "environments", "at least one environment"),
    ("environments-null", "project_name: shop\nenvironments:\n", 2, "environments", "expected a mapping"),
    ("missing-project", "environments:\n  staging:\n    instance_type: t3.micro\n", 1, "project_name", "required"),
    ("env-path-traversal", "project_name: shop\nenvironments:\n  ../../etc:\n    instance_type: t3.micro\n", 3, "environments.../../etc", "environment names"),
    ("env-shell-word", "project_name: shop\nenvironments:\n  'staging;rm -rf /':\n    instance_type: t3.micro\n", 3, "environments.staging;rm -rf /", "environment names"),
    ("env-uppercase", "project_name: shop\nenvironments:\n  Staging:\n    instance_type: t3.micro\n", 3, "environments.Staging", "environment names"),
    ("python-tag", "project_name: !!python/object/apply:os.system ['id']\nenvironments: {}\n", 1, "project_name", "tag"),
    ("custom-tag", GOOD_HEAD + "tags:\n  team: !Ref Team\n", 6, "tags.team", "tag"),
    ("billion-laughs", "a: &a [x, x, x]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n", 1, "a", "anchors"),
    ("merge-key", GOOD_HEAD + "  production:\n    <<: {instance_type: t3.micro}\n", 6, "environments.production", "merge keys"),
    ("duplicate-key", GOOD_HEAD + "project_name: other\n", 5, "project_name", "duplicate"),
    ("deep-nesting", "project_name: shop\nenvironments:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(20)), 18, "environments." + ".".join(f"k{i}" for i in range(15)), "nested deeper"),
    ("huge", "project_name: shop\n# " + "x" * 300_000 + "\n", 1, "<document>", "limit"),
    ("two-documents", GOOD_HEAD + "---\nproject_name: again\n", 5, "<document>", "one YAML document"),
    ("count-zero", GOOD_HEAD + "    instance_count: 0\n", 5, "environments.staging.instance_count", "out of range"),
    ("unknown-instance-type", "project_name: shop\nenvironments:\n  staging:\n    instance_type: t3.mega\n", 4, "environments.staging.instance_type", "unknown instance type"),
    ("db-engine", GOOD_HEAD + "database:\n  engine: oracle\n", 6, "database.engine", "not one of"),
    ("reserved-tag", GOOD_HEAD + "tags:\n  customer: someone-else\n", 6, "tags.customer", "set by the provider"),
    ("41-tags", GOOD_HEAD + "tags:\n" + "".join(f"  t{i}: x\n" for i in range(41)), 5, "tags", "at most 40 tags are allowed, found 41"),
    ("empty-file", "", 1, "<document>", "empty"),
    ("top-level-scalar", "hello\n", 1, "<document>", "mapping"),
    ("bool-project-name", "project_name: true\nenvironments:\n  staging:\n    instance_type: t3.micro\n", 1, "project_name", "expected a string"),
    # YAML 1.1 booleans are text in YAML 1.2, as the editor checking the file against `engine schema` reads them
    ("yaml11-boolean", GOOD_HEAD + "database:\n  multi_az: yes\n", 6, "database.multi_az", "got a string ('yes'): write true or false"),
    ("yaml11-boolean-upper", GOOD_HEAD + "monitoring:\n  enabled: OFF\n", 6, "monitoring.enabled", "write true or false"),
    ("yaml11-integer", GOOD_HEAD + "    instance_count: 1_0\n", 5, "environments.staging.instance_count", "expected an integer, got a string ('1_0')"),
    ("yaml11-sexagesimal", GOOD_HEAD + "    volume_size_gb: 1:30\n", 5, "environments.staging.volume_size_gb", "expected an integer, got a string ('1:30')"),
    ("tagged-yaml11-boolean", GOOD_HEAD + "database:\n  multi_az: !!bool on\n", 6, "database.multi_az", "write true or false"),
    ("not-utf8", b"project_name: \xff\xfe\nenvironments: {}\n", 1, "<document>", "UTF-8"),
    ("complex-key", GOOD_HEAD + "? [a, b]\n: c\n", 5, "<document>", "plain strings"),
    ("date-project-name", "project_name: 2024-01-01\nenvironments:\n  staging:\n    instance_type: t3.micro\n", 1, "project_name", "project names are"),
    # keys are customer text: a '[' in one is still the key, and control characters are shown escaped (tests/unit/test_untrusted_text.py)
    ("env-named-like-a-status", "project_name: shop\nenvironments:\n  apply:\n    instance_type: t3.micro\n", 3, "environments.apply",
     "'apply' is reserved: the engine reports infra/apply for the whole commit"),
    ("key-with-brackets", GOOD_HEAD + '"x[1]": 1\n', 5, "x[1]", "unknown key"),
    # PyYAML's own constructors crash on these (IndexError, KeyError, AttributeError): bad input, not an internal error
    ("tagged-empty-int", GOOD_HEAD + "    instance_count: !!int\n", 5, "environments.staging.instance_count", "cannot be read as int"),
    ("tagged-empty-float", GOOD_HEAD + "    instance_count: !!float\n", 5, "environments.staging.instance_count", "cannot be read as float"),
    ("tagged-empty-bool", GOOD_HEAD + "    instance_count: !!bool ''\n", 5, "environments.staging.instance_count", "cannot be read as bool"),
    ("tagged-empty-timestamp", GOOD_HEAD + "    instance_count: !!timestamp ''\n", 5, "environments.staging.instance_count", "cannot be read as timestamp"),
    ("key-with-workflow-command", GOOD_HEAD + '"a\\n::error::pwned": 1\n', 5, "a\\n::error::pwned", "unknown key"),
    ("env-name-with-escape-sequence", 'project_name: shop\nenvironments:\n  "\\e[2Jstaging":\n    instance_type: t3.micro\n', 3,
     "environments.\\x1b[2Jstaging", "environment names"),
    ("slot-clash", "project_name: shop\nenvironments:\n  staging:\n    instance_type: t3.micro\n  qa:\n    instance_type: t3.micro\n    network_slot: 1\n", 2, "environments", "network slot 1"),
]


@pytest.fixture
def catalog_with(tmp_path: Path):
    def build(document: str | bytes) -> EngineCLI:
        root = make_catalog(tmp_path / "catalog", {"shop": (tenant_record("shop", 7), None)})
        path = root / "customers" / "shop" / "infra" / "variables.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(document if isinstance(document, bytes) else document.encode())
        return EngineCLI(tmp_path / "home", root)

    return build


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_malformed_customer_file_is_rejected_before_anything_runs(case, catalog_with):
    _, document, line, key, reason = case
    cli = catalog_with(document)
    for args in (["validate", "customers/shop/infra/variables.yml"], ["up", "shop"]):
        run = cli(*args)
        assert run.code == 2, f"{args}: exit {run.code}\n{run.stdout}\n{run.stderr}"
        text = run.stderr
        assert "Traceback" not in text + run.stdout
        location = "customers/shop/infra/variables.yml" + (f":{line}:" if line else "")
        assert location in text, text
        if key:
            assert f" {key}:" in text, text
        assert reason.lower() in text.lower(), text
    # nothing was deployed: no state, no work dir, no local resources
    assert not (cli.home / "state").exists()
    assert not (cli.home / "local-cloud").exists()
    assert not (cli.home / "work").exists()


def test_json_error_lists_problems_with_file_line_and_key(catalog_with):
    cli = catalog_with(GOOD_HEAD + "    instance_count: two\nextra: 1\n")
    run = cli("up", "shop", "--json")
    assert run.code == 2
    data = run.json()
    assert data["ok"] is False and data["error"] == "ConfigError"
    found = {(p["line"], p["key"]) for p in data["problems"]}
    assert found == {(5, "environments.staging.instance_count"), (6, "extra")}


HOSTILE_RECORDS = [
    ("customer-mismatch", "customer: other\nrepository: a/b\nnetwork_index: 3\nsource: x\n", 1, "customer", "does not match"),
    ("bad-repository", "customer: shop\nrepository: 'a/b; curl evil'\nnetwork_index: 3\n", 2, "repository", "owner/name"),
    ("source-traversal", "customer: shop\nrepository: a/b\nnetwork_index: 3\nsource: ../../etc\n", 4, "source", "relative path"),
    ("state-traversal", "customer: shop\nrepository: a/b\nnetwork_index: 3\nstate:\n  url: file:///tmp/../etc\n", 5, "state.url", "'..'"),
    ("unknown-tool", "customer: shop\nrepository: a/b\nnetwork_index: 3\nproperties:\n  infrastructure_tools: [chef]\n", 5, "properties.infrastructure_tools[0]", "not one of"),
    ("tf-version-float", "customer: shop\nrepository: a/b\nnetwork_index: 3\nproperties:\n  terraform_version: 1.6\n", 5, "properties.terraform_version", 'quotes: "1.6"'),
]


@pytest.mark.parametrize("case", HOSTILE_RECORDS, ids=[c[0] for c in HOSTILE_RECORDS])
def test_malformed_tenant_record_is_rejected(case, tmp_path):
    _, record, line, key, reason = case
    root = make_catalog(tmp_path / "catalog", {"shop": (record, None)})
    cli = EngineCLI(tmp_path / "home", root)
    run = cli("up", "shop")
    assert run.code == 2, run.stderr
    assert f"stacks/shop.yml:{line}: {key}:" in run.stderr
    assert reason in run.stderr
    assert "Traceback" not in run.stderr
    assert not (cli.home / "state").exists()


@pytest.mark.parametrize("customer", ["../acme", "acme/../../x", "a;rm -rf ~", "$(id)", "ACME", "a", "-acme", "x" * 60, "acme\n"])
def test_hostile_customer_ids_never_reach_the_file_system(customer, cli):
    run = cli("up", "--", customer)
    assert run.code == 2
    assert "is not a valid customer id" in run.stderr
    assert not cli.home.exists()


def test_unknown_customer_lists_the_known_ones(cli):
    run = cli("up", "nobody")
    assert run.code == 2
    assert "unknown customer 'nobody'" in run.stderr and "acme" in run.stderr


def test_unknown_environment_is_bad_input(cli):
    run = cli("up", "acme", "--env", "qa")
    assert run.code == 2
    assert "no environment 'qa'" in run.stderr and "staging, production" in run.stderr


def test_destroy_requires_yes(cli):
    run = cli("destroy", "acme")
    assert run.code == 2 and "--yes" in run.stderr


def test_duplicate_network_index_is_rejected(tmp_path):
    from tests.conftest import SMALL_CONFIG

    root = make_catalog(tmp_path / "c", {"one": (tenant_record("one", 4), SMALL_CONFIG.format(name="one")),
                                         "two": (tenant_record("two", 4), SMALL_CONFIG.format(name="two"))})
    run = EngineCLI(tmp_path / "home", root)("up", "one")
    assert run.code == 2
    assert "network_index 4 is already used by customer 'one'" in run.stderr


def test_a_misspelt_key_is_reported_once_as_the_typo_not_also_as_the_missing_key(tmp_path):
    """`instance_typo` used to give "instance_type: required key is missing" first and the helpful line second."""
    bad = tmp_path / "variables.yml"
    bad.write_text("project_name: shop\nenvironments:\n  staging:\n    instance_typo: t3.micro\n")
    run = EngineCLI(tmp_path / "home", tmp_path)("validate", str(bad), "--kind", "customer")
    assert run.code == 2
    assert run.stderr.splitlines()[0].endswith("variables.yml:4: environments.staging.instance_typo: unknown key "
                                               "(did you mean 'instance_type'?); allowed keys: database, instance_count, "
                                               "instance_type, max_monthly_cost, monitoring, network_slot, volume_size_gb")
    assert "required key is missing" not in run.stderr
