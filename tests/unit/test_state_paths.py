"""State locations: a tenant's state stays under ``<base>/<customer>`` however its URL is written.

Pulumi percent-decodes a state URL's path (``%2e%2e`` is ``..``, ``%2f`` is ``/``), so the checks run on the
decoded path, and the engine reads and creates the same directory Pulumi writes (``engine.home.state_path``).
The real pulumi writing a decoded path is in tests/integration/test_isolation.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config import TenantRecord
from engine.errors import InputError
from engine.home import EngineHome, state_path
from engine.planning import Settings, StackTarget, backend_url
from tests.conftest import EngineCLI, make_catalog, tenant_record

HOSTILE_STATE_URLS = [
    "file:///srv/state/%2e%2e/%2e%2e/escape",  # the reported one
    "file:///srv/state/%2E%2E/escape",
    "file:///srv/state/.%2e/escape",
    "file:///srv/state/%2e./escape",
    "file:///srv/state%2f..%2f..%2fescape",  # an encoded '/' makes new segments
    "file:///srv/state/%252e%252e/escape",  # encoded twice
    "file:///srv/state/%2e/x",
    "file:///srv/state/./x",
    "file:///srv//state",
    "file:///srv/state%2f%2fx",
    "file://~/state",  # pulumi expands ~ to the home directory
    "file://srv/state",  # relative to the tool's working directory
    "file://",
    "file:///srv/state/%zz",  # not an escape: pulumi refuses to start
    "file:///srv/state/%00x",
    "file:///srv/state/%0a%3a%3aerror%3a%3ax",
    "s3://fleet-state/tenants/%2e%2e/other",
    "s3://fleet-state/tenants/..%2fother",
    "s3://fleet-state/a//b",
    "s3://fleet-state/a%2f%2fb",
    "s3://fleet-state/%2e/x",
    "s3://Fleet_State/x",
    "s3://../x",
]


@pytest.mark.parametrize("url", HOSTILE_STATE_URLS)
def test_percent_encoded_traversal_in_a_state_url_is_refused(url):
    with pytest.raises(ValueError):
        TenantRecord.model_validate({"customer": "shop", "repository": "a/b", "network_index": 3, "state": {"url": url}})


@pytest.mark.parametrize("url", ["file:///srv/state", "file:///srv/state/", "file:///srv/my%20state", "file:///srv/state?no_tmp_dir=false",
                                 "s3://fleet-state", "s3://fleet-state/pulumi?region=us-east-1&endpoint=http://127.0.0.1:9000&use_path_style=true",
                                 "s3://fleet.state-2/a/b/"])
def test_ordinary_state_urls_are_accepted(url):
    record = TenantRecord.model_validate({"customer": "shop", "repository": "a/b", "network_index": 3, "state": {"url": url}})
    assert backend_url(record, Settings("/unused", "/unused")).split("?")[0].endswith("/shop")


def test_percent_encoded_state_url_exits_2_naming_the_tenant_record_before_anything_runs(tmp_path):
    escape = tmp_path / "escape"
    record = tenant_record("shop", 3) + f"state:\n  url: file://{tmp_path}/state/%2e%2e/escape\n"
    root = make_catalog(tmp_path / "catalog", {"shop": (record, "project_name: shop\nenvironments:\n  staging:\n    instance_type: t3.micro\n")})
    cli = EngineCLI(tmp_path / "home", root)
    for args in (["preview", "shop"], ["up", "shop"], ["plan-targets", "shop"]):
        run = cli(*args)
        assert run.code == 2, (args, run.stdout, run.stderr)
        assert "stacks/shop.yml:7: state.url:" in run.stderr and "%2e%2e" in run.stderr and "Traceback" not in run.stderr
    assert not escape.exists() and not (tmp_path / "state").exists() and not (cli.home / "work").exists()


def test_default_state_url_is_encoded_so_pulumi_decodes_it_to_the_state_root():
    record = TenantRecord.model_validate({"customer": "acme", "repository": "a/b", "network_index": 1})
    for root in ("/srv/engine/state", "/srv/my state/#1?x%41", "/srv/engine/state/"):
        url = backend_url(record, Settings(root, "/unused"))
        assert url.startswith("file:///srv/") and "?" not in url and "#" not in url and " " not in url
        assert state_path(url) == Path(root.rstrip("/"), "acme").resolve()


def test_state_path_reads_what_pulumi_writes(tmp_path):
    assert state_path(f"file://{tmp_path}/my%20state/acme") == tmp_path / "my state" / "acme"
    assert state_path(f"file://{tmp_path}/state/acme?no_tmp_dir=true") == tmp_path / "state" / "acme"
    assert state_path("s3://fleet-state/acme?region=eu-west-1") is None
    with pytest.raises(InputError, match="'..'"):
        state_path(f"file://{tmp_path}/state/%2e%2e/acme")

    EngineHome(tmp_path / "home").ensure_state_dir(f"file://{tmp_path}/my%20state/acme")
    assert (tmp_path / "my state" / "acme").is_dir() and not (tmp_path / "my%20state").exists()


def test_tool_switch_guard_reads_the_decoded_state_path(tmp_path):
    """Pulumi writes to the decoded path: a guard reading 'my%20state' literally would find nothing and allow the switch."""
    deployed = tmp_path / "my state" / "acme" / ".pulumi" / "stacks" / "acme"
    deployed.mkdir(parents=True)
    (deployed / "staging.json").write_text('{"checkpoint": {"latest": {"resources": [{"urn": "urn:pulumi:staging::acme::x::y"}]}}}')
    target = StackTarget(customer="acme", environment="staging", tool="terraform", program="local", project="acme", stack="staging",
                         backend_url=f"file://{tmp_path}/my%20state/acme", config={})
    from engine.runners.pulumi import PulumiRunner

    assert PulumiRunner(EngineHome(tmp_path / "home")).deployed_with(target)  # the guard (Engine._refuse_tool_switch) asks the runner


def test_a_state_root_that_decodes_outside_itself_is_refused_at_planning():
    record = TenantRecord.model_validate({"customer": "acme", "repository": "a/b", "network_index": 1})
    with pytest.raises(InputError, match="state location of 'acme' is refused"):
        backend_url(record, Settings("relative/state", "/unused"))  # file://relative/... names a host, not a path


def test_terraform_state_goes_to_the_same_decoded_path(tmp_path):
    from engine.runners.terraform import backend_config

    url = f"file://{tmp_path}/my%20state/acme"
    target = StackTarget(customer="acme", environment="staging", tool="terraform", program="local", project="acme", stack="staging",
                         backend_url=url, config={})
    assert backend_config(target)["local"]["path"] == str(state_path(url) / "terraform" / "staging.tfstate")
    s3 = StackTarget(customer="acme", environment="staging", tool="terraform", program="aws", project="acme", stack="staging",
                     backend_url="s3://fleet-state/my%20fleet/acme?region=eu-west-1", config={})
    assert backend_config(s3)["s3"]["key"] == "my fleet/acme/terraform/staging.tfstate"  # the prefix Pulumi uses, decoded
