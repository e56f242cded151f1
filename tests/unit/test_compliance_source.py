"""The source of truth (a CMDB export) as `engine compliance` reads it, and values it must never write back."""

from __future__ import annotations

import pytest

from engine.compliance import Policy, check, load_source
from engine.errors import InputError
from engine.properties import load
from tests.conftest import REPO


def test_a_json_number_keeps_its_text_so_release_line_1_10_stays_1_10(tmp_path):
    path = tmp_path / "cmdb.json"
    path.write_text('[{"repository": "a-org/app", "terraform_version": 1.10, "infrastructure_tools": ["terraform"]}]')
    assert load_source(str(path)) == {"a-org/app": {"terraform_version": "1.10", "infrastructure_tools": ["terraform"]}}


def test_a_source_that_is_not_utf8_or_not_json_is_bad_input_naming_it(tmp_path):
    (tmp_path / "cmdb.csv").write_bytes(b"repository,terraform_version\na-org/app,\xff\n")
    with pytest.raises(InputError, match="cmdb.csv: not UTF-8 text"):
        load_source(str(tmp_path / "cmdb.csv"))
    (tmp_path / "cmdb.json").write_text("[{")
    with pytest.raises(InputError, match="cmdb.json: not valid JSON"):
        load_source(str(tmp_path / "cmdb.json"))


def test_rows_are_numbered_as_a_person_counts_them(tmp_path):
    (tmp_path / "cmdb.json").write_text('[{"repository": "a-org/app"}, {"repository": "not a repo"}]')
    with pytest.raises(InputError, match="row 2: 'not a repo'"):
        load_source(str(tmp_path / "cmdb.json"))
    (tmp_path / "cmdb.csv").write_text("repository\na-org/app\nnot a repo\n")
    with pytest.raises(InputError, match="row 3: 'not a repo'"):  # line 3 of the file: the header is line 1
        load_source(str(tmp_path / "cmdb.csv"))


def test_a_source_value_the_definitions_do_not_allow_is_reported_and_never_remediated():
    definitions = load(REPO / "policy" / "properties.yml")
    policy = Policy(definitions.required, definitions.allowed)
    findings = check("a-org/app", {"infrastructure_tools": ["pulumi"]}, policy, {"infrastructure_tools": ["chef"], "terraform_version": "1.8"})
    by_name = {f.property: f for f in findings}
    assert by_name["infrastructure_tools"].expected is None  # nothing to write back
    assert "source of truth's value chef is not allowed" in by_name["infrastructure_tools"].reason
    assert by_name["terraform_version"].expected == "1.8"  # an allowed difference is still remediated
