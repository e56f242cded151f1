"""The provider's Spacelift settings: ``spacelift.yml`` in the catalog root, secrets only from the environment.

``spacelift.yml`` says where the stacks live (space, worker pool), which repository and branch
they track (the manager repository: the provider's modules and programs), and which tenants
Spacelift executes.  The API key never appears in a file: it comes from spacectl's environment
variables (``SPACELIFT_API_KEY_ENDPOINT``, ``SPACELIFT_API_KEY_ID``, ``SPACELIFT_API_KEY_SECRET``).

A tenant is executed by Spacelift when ``spacelift`` is in its ``infrastructure_tools``, when it is
listed under ``execute.tenants``, or when ``execute.default`` is true (and it is not in
``execute.exclude``).  Everyone else keeps the engine's own runners.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, StringConstraints, field_validator

from engine.config import CUSTOMER_ID_PATTERN, ENVIRONMENT_PATTERN, REPOSITORY_PATTERN, Properties, Strict, TenantRecord
from engine.documents import load_file
from engine.errors import InputError
from engine.validation import validate_document

SETTINGS_FILE = "spacelift.yml"
ENV_ENDPOINT, ENV_KEY_ID, ENV_KEY_SECRET = "SPACELIFT_API_KEY_ENDPOINT", "SPACELIFT_API_KEY_ID", "SPACELIFT_API_KEY_SECRET"
# The engine's own mark on what it manages in Spacelift (a label and the description of its environment variables).
MANAGED_LABEL = "managed-by:engine"

Slug = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
ProjectRoot = Annotated[str, StringConstraints(pattern=r"^([A-Za-z0-9_][A-Za-z0-9_.-]*)(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$", max_length=200)]


class Execute(Strict):
    """Which tenants Spacelift executes (besides those with ``spacelift`` in ``infrastructure_tools``)."""

    default: bool = False  # every tenant
    tenants: list[Annotated[str, StringConstraints(pattern=CUSTOMER_ID_PATTERN)]] = Field(default_factory=list)
    exclude: list[Annotated[str, StringConstraints(pattern=CUSTOMER_ID_PATTERN)]] = Field(default_factory=list)  # never, even with default


class ProjectRoots(Strict):
    """Where the provider's code for each tool and target lives in the manager repository.

    Pulumi's is a project directory (``Pulumi.yaml``): ``programs/spacelift`` runs ``programs.local``,
    ``programs.aws``, ``programs.azure`` or ``programs.gcp`` — the engine's own programs — with the settings on the stack (``ENGINE_PROGRAM``,
    ``ENGINE_SETTINGS``).  Another project root needs the same ``prepare.py`` (the stack's first hook runs it).
    """

    terraform_aws: ProjectRoot = "terraform"
    terraform_azure: ProjectRoot = "terraform/azure"
    terraform_gcp: ProjectRoot = "terraform/gcp"
    terraform_local: ProjectRoot = "terraform/local"
    pulumi_aws: ProjectRoot = "programs/spacelift"
    pulumi_azure: ProjectRoot = "programs/spacelift"
    pulumi_gcp: ProjectRoot = "programs/spacelift"
    pulumi_local: ProjectRoot = "programs/spacelift"


class SpaceliftSettings(Strict):
    """``spacelift.yml``."""

    # The account's API endpoint, e.g. https://example.app.spacelift.io; $SPACELIFT_API_KEY_ENDPOINT wins.
    endpoint: Annotated[str, StringConstraints(pattern=r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?$", max_length=200)] | None = None
    space: Slug = "root"
    worker_pool: Slug | None = None  # the ID of a private worker pool; none: Spacelift's public workers
    repository: Annotated[str, StringConstraints(pattern=REPOSITORY_PATTERN)]  # the manager repository, OWNER/NAME
    branch: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")] = "main"
    execute: Execute = Field(default_factory=Execute)
    # Environments whose stacks never deploy on their own: the engine confirms their runs only when it
    # is asked to apply them, which the deploy workflow does after the environment's reviewers approved.
    protected_environments: list[Annotated[str, StringConstraints(pattern=ENVIRONMENT_PATTERN)]] = Field(
        default_factory=lambda: ["production"])
    project_roots: ProjectRoots = Field(default_factory=ProjectRoots)
    run_timeout_s: Annotated[float, Field(gt=0, le=86400)] = 3600
    poll_interval_s: Annotated[float, Field(gt=0, le=300)] = 5

    @field_validator("endpoint")
    @classmethod
    def _no_credentials_in_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).username:
            raise ValueError("the endpoint must not carry credentials (they come from SPACELIFT_API_KEY_ID/SECRET)")
        return value

    def executes(self, record: TenantRecord) -> bool:
        return executes(self, record)

    def project_root(self, tool: str, program: str) -> str:
        return getattr(self.project_roots, f"{tool}_{program}")

    @property
    def namespace(self) -> str:
        return self.repository.split("/", 1)[0]

    @property
    def repository_name(self) -> str:
        return self.repository.split("/", 1)[1]


def executes(settings: SpaceliftSettings | None, record: TenantRecord) -> bool:
    """Whether Spacelift runs ``record``'s stacks (see the module docstring)."""
    return execution(settings, record.customer, record.properties) is not None


def execution(settings: SpaceliftSettings | None, customer: str | None, properties: Properties) -> str | None:
    """Why Spacelift runs this tenant's stacks, or ``None`` when the engine's own runners do: the one rule
    (``executes``, and so the engine's choice of runner, and ``engine properties show`` read it).
    ``customer`` is ``None`` for a repository not onboarded yet."""
    if "spacelift" in properties.infrastructure_tools:
        return "infrastructure_tools includes spacelift"
    if settings is None or customer in settings.execute.exclude:
        return None
    if customer is not None and customer in settings.execute.tenants:
        return f"{SETTINGS_FILE}: execute.tenants"
    return f"{SETTINGS_FILE}: execute.default" if settings.execute.default else None


def settings_path(catalog_root: Path) -> Path:
    return catalog_root / SETTINGS_FILE


def load_settings(catalog_root: Path) -> SpaceliftSettings | None:
    """The catalog's ``spacelift.yml``, validated; ``None`` when the provider has none.

    A problem is a ``ConfigError`` naming the file, line and key (exit 2).
    """
    path = settings_path(catalog_root)
    if not path.is_file():
        return None
    return validate_document(load_file(path), SpaceliftSettings)


def require_settings(catalog_root: Path) -> SpaceliftSettings:
    settings = load_settings(catalog_root)
    if settings is None:
        raise InputError(f"no Spacelift settings: {settings_path(catalog_root)} does not exist",
                         hint="create spacelift.yml in the catalog (docs/SPACELIFT.md: repository, branch, space, which tenants)")
    return settings


@dataclass(frozen=True)
class Credentials:
    """Where the API is and the key to it.  ``secret`` is never printed (``repr`` leaves it out)."""

    endpoint: str
    key_id: str
    secret: str

    def __repr__(self) -> str:
        return f"Credentials(endpoint={self.endpoint!r}, key_id={self.key_id!r}, secret=<hidden>)"

    @property
    def graphql_url(self) -> str:
        return self.endpoint.rstrip("/") + "/graphql"


def credentials(settings: SpaceliftSettings, environ: dict[str, str] | None = None) -> Credentials:
    """The API key from spacectl's environment variables; missing ones are bad input (exit 2), named."""
    env = os.environ if environ is None else environ
    endpoint = env.get(ENV_ENDPOINT) or settings.endpoint
    missing = [name for name, value in ((ENV_ENDPOINT, endpoint), (ENV_KEY_ID, env.get(ENV_KEY_ID)),
                                        (ENV_KEY_SECRET, env.get(ENV_KEY_SECRET))) if not value]
    if missing:
        raise InputError(f"Spacelift credentials missing: {', '.join(missing)} not set",
                         hint="create an API key in Spacelift (Organization settings → API keys) and export SPACELIFT_API_KEY_ID and "
                              "SPACELIFT_API_KEY_SECRET; the endpoint is spacelift.yml's `endpoint` or SPACELIFT_API_KEY_ENDPOINT")
    if not urlsplit(endpoint).scheme in ("http", "https"):
        raise InputError(f"{ENV_ENDPOINT} is not an http(s) URL", hint="e.g. https://example.app.spacelift.io")
    return Credentials(endpoint=endpoint.rstrip("/"), key_id=env[ENV_KEY_ID], secret=env[ENV_KEY_SECRET])
