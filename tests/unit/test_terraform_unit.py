"""Terraform path pieces that need no binary: binary selection, backend config."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import InputError
from engine.planning import StackTarget
from engine.runners.terraform import backend_config, select_binary
from engine.toolchain import Tool

TOFU = Tool("tofu", "1.10.6", Path("/cache/tofu/1.10.6/bin"), "cache")


@pytest.mark.parametrize("requested", [None, "1.6", "1.8", "1.10", "1.10.2"])
def test_opentofu_serves_versions_in_its_range(requested):
    assert select_binary(requested, TOFU, None).label == "OpenTofu v1.10.6"


def test_terraform_on_path_at_the_requested_version_wins():
    chosen = select_binary("1.6", TOFU, ("/usr/bin/terraform", "1.6.6"))
    assert (chosen.path, chosen.label) == ("/usr/bin/terraform", "Terraform v1.6.6")
    # a terraform at another version is not used; tofu still covers 1.6
    assert select_binary("1.6", TOFU, ("/usr/bin/terraform", "1.9.0")).label == "OpenTofu v1.10.6"


@pytest.mark.parametrize("requested", ["1.5", "0.14", "1.12", "2.0"])
def test_unsatisfiable_versions_are_bad_input_with_the_reason(requested):
    with pytest.raises(InputError) as err:
        select_binary(requested, TOFU, None)
    assert f"terraform_version {requested} cannot be satisfied" in err.value.message
    assert "covers 1.6–1.10" in err.value.message and "no terraform on PATH" in err.value.message


def _target(url: str) -> StackTarget:
    return StackTarget("acme", "staging", "terraform", "local", "acme", "staging", url, {})


def test_backend_is_inside_the_customers_state_location():
    assert backend_config(_target("file:///srv/state/acme")) == {"local": {"path": "/srv/state/acme/terraform/staging.tfstate"}}
    s3 = backend_config(_target("s3://bucket/fleet/acme?region=eu-west-1&endpoint=http://127.0.0.1:9000&use_path_style=true"))["s3"]
    assert s3["bucket"] == "bucket" and s3["key"] == "fleet/acme/terraform/staging.tfstate"
    assert s3["use_lockfile"] is True and s3["endpoints"] == {"s3": "http://127.0.0.1:9000"} and s3["use_path_style"] is True
