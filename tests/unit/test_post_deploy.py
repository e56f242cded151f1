"""Post-deploy tests (engine/post_deploy.py): the provider's pytest tests in their own process, the stack handed over on
stdin, a failing test naming itself, secrets never in what comes back."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from engine.planning import StackTarget
from engine.post_deploy import PostDeployTests, rollback_wanted, scrub, selected, suite_dir, suite_wanted
from engine.results import StackResult

PASSWORD = "s3cret-Pa55word-from-the-stack-0123456789"


def target(tool="pulumi", program="local", **config) -> StackTarget:
    return StackTarget(customer="acme", environment="production", tool=tool, program=program, project="acme", stack="production",
                       backend_url="file:///tmp/x", config={"volume_size_gb": 40, **config})


OUTPUTS = {"vpc_cidr": {"value": "10.0.64.0/22", "secret": False}, "disk_gb": {"value": 20, "secret": False},
           "database_password": {"value": PASSWORD, "secret": True}}


def suite(tmp_path: Path, body: str) -> PostDeployTests:
    directory = tmp_path / "programs" / "local" / "tests"
    directory.mkdir(parents=True)
    (directory / "test_stack.py").write_text(textwrap.dedent(body))
    return PostDeployTests(tmp_path / "programs", tmp_path / "terraform")


def test_one_run_reports_passes_named_failures_and_broken_files_and_never_a_secret(tmp_path, capfd):
    # one child process for every case: a post-deploy run costs a Python and pytest start (about a second)
    tests = suite(tmp_path, """
        def test_outputs(stack, outputs, settings):
            assert stack.customer == "acme" and outputs["vpc_cidr"] == "10.0.64.0/22" and settings["volume_size_gb"] == 40
            assert outputs["database_password"] == "[secret]"  # secrets only through secret()

        def test_secret(secret):
            assert secret("database_password").startswith("s3cret-")

        def test_disk_is_big_enough(stack, outputs):
            assert outputs["disk_gb"] >= stack.settings["volume_size_gb"], f"disk is {outputs['disk_gb']} GB, {stack.settings['volume_size_gb']} GB requested"

        def test_compares_the_secret(secret):
            assert secret("database_password") == "something else"

        def test_prints_the_secret(secret):
            print(secret("database_password"))
            raise RuntimeError("password was " + secret("database_password")[3:])
    """)
    (tmp_path / "programs" / "local" / "tests" / "test_broken.py").write_text("import module_that_does_not_exist\n")
    result = StackResult.for_target(target(), "up")
    tests.run(target(), result, lambda _t: OUTPUTS)
    outcome = result.tests
    assert (result.status, outcome.status, outcome.passed, outcome.failed) == ("failed", "failed", 2, 4)
    assert outcome.directory == "programs/local/tests"
    assert result.error == ("post-deploy test test_stack.py::test_disk_is_big_enough failed: AssertionError: disk is 20 GB, 40 GB requested"
                            " (+3 more)")
    names = [f.name for f in outcome.failures]
    assert names == ["test_stack.py::test_disk_is_big_enough", "test_stack.py::test_compares_the_secret",
                     "test_stack.py::test_prints_the_secret", "test_broken.py"]
    assert "module_that_does_not_exist" in outcome.failures[3].message
    text = repr(outcome) + repr(result.to_dict()) + capfd.readouterr().out
    assert PASSWORD not in text and PASSWORD[3:20] not in text and "[secret]" in outcome.failures[1].message


def test_without_tests_next_to_the_program_nothing_runs(tmp_path):
    result = StackResult.for_target(target(), "up")
    assert PostDeployTests(tmp_path, tmp_path).run(target(), result, lambda _t: pytest.fail("outputs read for no tests")) is result
    assert result.tests is None and result.status == "succeeded"


def test_tests_live_next_to_each_program_and_module():
    root = Path("/p")
    assert suite_dir(target(), root / "programs", root / "terraform") == root / "programs/local/tests"
    assert suite_dir(target(program="aws"), root / "programs", root / "terraform") == root / "programs/aws/tests"
    assert suite_dir(target(tool="terraform"), root / "programs", root / "terraform") == root / "terraform/local/tests"
    assert suite_dir(target(tool="terraform", program="aws"), root / "programs", root / "terraform") == root / "terraform/tests"


def test_tests_run_for_production_by_default_and_rollbacks_only_on_request():
    class Record:
        post_deploy_tests = None
        rollback_on_failure = False

    assert suite_wanted(Record, "production") and suite_wanted(Record, "prod") and not suite_wanted(Record, "staging")
    assert not rollback_wanted(Record, "production")
    assert selected(True, "staging") and not selected(False, "production") and selected(["staging"], "staging")
    assert not selected(["staging"], "production")


def test_scrub_replaces_secrets_and_long_pieces_of_them():
    assert scrub(f"a {PASSWORD} b", [PASSWORD]) == "a [secret] b"
    assert PASSWORD[5:30] not in scrub(f"x{PASSWORD[5:30]}y", [PASSWORD])
    assert scrub("nothing here", [PASSWORD]) == "nothing here"
