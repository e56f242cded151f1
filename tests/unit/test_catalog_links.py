"""A tenant's customer file is read from its own source directory: a symbolic link out of it (to another
tenant's checkout) is refused with exit 2, naming the tenant record, line and key; links inside it still work."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.catalog import Catalog
from engine.errors import ConfigError
from tests.conftest import SMALL_CONFIG, EngineCLI, make_catalog, tenant_record

ACME = "project_name: acme-shop\nenvironments:\n  production:\n    instance_type: m5.xlarge\n    instance_count: 9\n"
SHOP = "project_name: small-shop\nenvironments:\n  staging:\n    instance_type: t3.nano\n"


def catalog(tmp_path: Path, shop_record: str | None = None) -> Path:
    return make_catalog(tmp_path / "catalog", {"acme": (tenant_record("acme", 1), ACME),
                                                "shop": (shop_record or tenant_record("shop", 2), SHOP)})


def link_file(root: Path) -> None:
    target = root / "customers/shop/infra/variables.yml"
    target.unlink()
    target.symlink_to("../../acme/infra/variables.yml")


def link_infra_dir(root: Path) -> None:
    infra = root / "customers/shop/infra"
    (infra / "variables.yml").unlink()
    infra.rmdir()
    infra.symlink_to("../acme/infra")


def link_source_dir(root: Path) -> None:
    source = root / "customers/shop"
    (source / "infra/variables.yml").unlink()
    (source / "infra").rmdir()
    source.rmdir()
    source.symlink_to("acme")


def link_two_hops(root: Path) -> None:  # a link to a link inside the checkout, which leads out
    infra = root / "customers/shop/infra"
    (infra / "variables.yml").unlink()
    (infra / "variables.yml").symlink_to("hop.yml")
    (infra / "hop.yml").symlink_to(root / "customers/acme/infra/variables.yml")


LINKS = [  # (how, blamed key and line in stacks/shop.yml, the link named in the reason)
    (link_file, "3: source", "customers/shop/infra/variables.yml is a symbolic link to customers/acme/infra/variables.yml"),
    (link_infra_dir, "3: source", "customers/shop/infra is a symbolic link to customers/acme/infra"),
    (link_source_dir, "3: source", "customers/shop is a symbolic link (to customers/acme)"),
    (link_two_hops, "3: source", "customers/shop/infra/variables.yml is a symbolic link to customers/acme/infra/variables.yml"),
]


@pytest.mark.parametrize("make_link,where,reason", LINKS, ids=[case[0].__name__ for case in LINKS])
def test_local_source_symlink_to_another_tenants_customer_file_is_refused(tmp_path, make_link, where, reason):
    root = catalog(tmp_path)
    make_link(root)
    run = EngineCLI(tmp_path / "home", root)("plan-targets", "shop")
    assert run.code == 2, (run.stdout, run.stderr)
    assert f"stacks/shop.yml:{where}: {reason}" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr and "acme-shop" not in run.stdout and run.stdout == ""


def test_a_link_out_of_an_explicit_config_path_names_that_key(tmp_path):
    root = catalog(tmp_path, tenant_record("shop", 2, config_path="deploy/infra.yml"))
    (root / "customers/shop/deploy").mkdir()
    (root / "customers/shop/deploy/infra.yml").symlink_to(root / "customers/acme/infra/variables.yml")
    with pytest.raises(ConfigError) as err:
        Catalog(root).load("shop")
    (problem,) = err.value.problems
    assert (problem.line, problem.key_path) == (6, "config_path") and problem.file.endswith("stacks/shop.yml")
    assert "outside the tenant's source directory customers/shop" in problem.reason


def test_links_inside_the_tenants_own_checkout_still_work(tmp_path):
    root = catalog(tmp_path)
    infra = root / "customers/shop/infra"
    os.replace(infra / "variables.yml", infra / "variables.production.yml")
    (infra / "variables.yml").symlink_to("variables.production.yml")
    tenant = Catalog(root).load("shop")
    assert tenant.config.project_name == "small-shop" and tenant.config_path == (infra / "variables.production.yml").resolve()


def test_a_loop_of_links_in_a_local_source_is_bad_input_not_a_crash(tmp_path):
    root = make_catalog(tmp_path / "c", {"shop": (tenant_record("shop", 5), None)})
    infra = root / "customers" / "shop" / "infra"
    infra.mkdir(parents=True)
    (infra / "variables.yml").symlink_to("again.yml")
    (infra / "again.yml").symlink_to("variables.yml")
    run = EngineCLI(tmp_path / "home", root)("plan-targets", "shop")
    assert run.code == 2 and "internal error" not in run.stderr
    assert "stacks/shop.yml:3: source: the customer file's path is a loop of symbolic links" in run.stderr


def test_a_source_inside_another_tenants_source_is_refused(tmp_path):
    """Without a link: customers/shop/acme inside customers/shop would let shop's checkout hold acme's file."""
    root = make_catalog(tmp_path / "c", {"shop": (tenant_record("shop", 5), SMALL_CONFIG.format(name="shop"))})
    (root / "stacks" / "acme.yml").write_text(tenant_record("acme", 6).replace("source: customers/acme", "source: customers/shop/acme"))
    run = EngineCLI(tmp_path / "home", root)("plan-targets", "shop")
    assert run.code == 2
    assert "stacks/acme.yml: source: source 'customers/shop/acme' lies inside customer 'shop''s source 'customers/shop'" in run.stderr
