"""``engine tools install|status``: the pinned binaries the engine needs, and the Terraform releases it serves."""

from __future__ import annotations

import click
from engine import toolchain
from engine.commands import Outcome
from engine.commands.options import JSON, Verb, opt
from engine.errors import InputError

ALL = ("pulumi", "tofu", "actionlint")


def install(names: tuple[str, ...], terraform: tuple[str, ...]) -> Outcome:
    """Make sure each tool is available: PATH, cache, download, or a build from the Go module proxy.

    Without ``--tool``/``--terraform``: the pinned tools and the provider mirror.  HashiCorp Terraform
    releases are built on demand when a customer's ``terraform_version`` needs one; ``--terraform LINE``
    builds one ahead (``1.6`` builds the line's release the engine serves, e.g. v1.6.6).
    """
    versions = [_terraform_release(line) for line in terraform]  # every line checked before anything builds
    installed = [toolchain.ensure(n).to_dict() for n in (names or (() if terraform else ALL))]
    if (not names and not terraform) or "tofu" in names or terraform:
        installed.append({"name": "enginelocal", "version": toolchain.PROVIDER_VERSION, "bin_dir": str(toolchain.ensure_provider_mirror()), "source": "go-build"})
    installed += [toolchain.ensure("terraform", version=v).to_dict() for v in versions]
    text = "\n".join(f"{t['name']:<11} v{t['version']:<10} {t['bin_dir']}  ({t['source']})" for t in installed)
    return Outcome({"tools": installed}, text)


def _terraform_release(line: str) -> str:
    """The release the engine serves for ``line`` ("1.6" or exactly "1.6.6"); ``InputError`` naming the lines otherwise."""
    key = ".".join(line.split(".")[:2])
    version = toolchain.TERRAFORM_BUILDS.get(key)
    if version and line in (key, version):
        return version
    lines = ", ".join(f"{k} (v{v})" for k, v in sorted(toolchain.TERRAFORM_BUILDS.items(), key=lambda kv: toolchain._line_key(kv[0])))
    why = toolchain.TERRAFORM_NOT_BUILDABLE.get(key)
    raise InputError(f"--terraform {line}: the engine does not build that release" + (f" ({why})" if why else ""),
                     hint=f"the releases it builds: {lines}")


def status() -> Outcome:
    """Which tools are available, and who serves each Terraform line a customer may pin, without installing anything."""
    rows = toolchain.status()
    distribution = toolchain.terraform_distribution()
    tofu = next(r for r in rows if r["name"] == "tofu")
    high = ".".join(tofu["version"].split(".")[:2])
    lines = [f"{r['name']:<11} v{r['version']:<10} " + (f"{r['bin_dir']} ({r['source']})" if r["installed"] else "not installed")
             for r in rows if r["name"] != "terraform"]
    lines += ["", "terraform_version pins:"]
    for r in (r for r in rows if r["name"] == "terraform"):
        covered = toolchain._line_key(r["line"]) <= toolchain._line_key(high)
        if r["buildable"] and distribution == "terraform":
            where = f"{r['bin_dir']} ({r['source']})" if r["installed"] else "not built yet (built on first use)"
            lines.append(f"  {r['line']:<5} HashiCorp Terraform v{r['version']:<8} {where}")
        elif covered:
            why = "ENGINE_TERRAFORM_DISTRIBUTION=opentofu" if distribution == "opentofu" else f"Terraform {r['line']}: {r.get('reason')}"
            lines.append(f"  {r['line']:<5} OpenTofu v{tofu['version']:<17} ({why})")
        else:
            why = "ENGINE_TERRAFORM_DISTRIBUTION=opentofu" if distribution == "opentofu" else r.get("reason")
            lines.append(f"  {r['line']:<5} refused (exit 2)             ({why})")
    lines.append(f"  other lines 1.6–{high}: OpenTofu v{tofu['version']}; anything else is refused (exit 2)")
    return Outcome({"tools": rows, "terraform_distribution": distribution, "opentofu_serves": f"1.6-{high}"}, "\n".join(lines))


VERBS = (
    Verb("install", install, (JSON, opt("--tool", "names", multiple=True, type=click.Choice(ALL), help="Only this tool (repeatable)."),
                              opt("--terraform", "terraform", multiple=True, metavar="LINE",
                                  help="Also build HashiCorp Terraform for this release line, e.g. 1.6 (repeatable).")),
         "Make sure each tool is available: PATH, cache, download, or a build from the Go module proxy.", wired=False, group="tools"),
    Verb("status", status, (JSON,), "Show which tools and Terraform releases are available, without installing anything.", wired=False, group="tools"),
)
