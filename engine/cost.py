"""Monthly cost of a plan: one price model for both tools and every target.

Reads a plan document (``engine/plan_document.py``) and the provider's price catalog
(``policy/pricing.yml``: on-demand list prices per region, with their source and date) and
prices each resource on both sides of the change — before → after → delta — from its
normalized attributes, so a Pulumi preview and a Terraform plan of the same settings cost the
same.  The local target is priced as the AWS resources it stands in for, in the tenant's region,
so the demo shows what the same customer file would cost on AWS.

Azure and GCP stacks are priced from their own regions in the same catalog (``cloud: azure|gcp``), keyed by
each cloud's size names — the names the sizing table (``engine/sizing.py``) gives the planner; those regions'
numbers are marked estimates (``note``), and every estimate that uses them says so (``prices_note``).

A resource the catalog has no price for (an unknown type, a size AWS does not offer, a region
the catalog does not list, another cloud's region) is **not priced**: listed with the reason, left out of the totals,
and the estimate says it is incomplete — never counted as zero.  Types that cost nothing
(subnets, route tables, …) are priced at zero on purpose (``no_charge`` in the catalog).
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.plan_document import PlanDocument, PlannedResource
from engine.sizing import cloud_of

CATALOG = Path(__file__).resolve().parent.parent / "policy" / "pricing.yml"

Price = Annotated[float, Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class StoragePrices(_Strict):
    single_az: Price
    multi_az: Price


class RegionPrices(_Strict):
    # Whose prices these are: a region of another cloud never prices a stack (the local target is priced as AWS).
    cloud: Literal["aws", "azure", "gcp"] = "aws"
    # Where the numbers come from when not from the catalog's `source`; set for estimates, and shown with every estimate.
    note: Annotated[str, Field(min_length=1)] | None = None
    instance_hourly: dict[str, Price]
    database_hourly: dict[str, dict[str, Price]]  # engine -> class -> $/hour (Single-AZ)
    database_multi_az_factor: Annotated[float, Field(ge=1)]
    database_storage_gb_month: StoragePrices
    volume_gb_month: dict[str, Price]
    nat_gateway_hourly: Price
    public_ipv4_hourly: Price
    alarm_monthly: Price
    dns_zone_monthly: Price | None = None  # a private DNS zone (Azure's database); None: not priced
    private_endpoint_hourly: Price | None = None  # a Private Service Connect endpoint (GCP's database); None: not priced


class PriceCatalog(_Strict):
    """The provider's price list: ``policy/pricing.yml``."""

    currency: str
    as_of: str
    source: Annotated[str, Field(min_length=1)]
    hours_per_month: Annotated[int, Field(ge=672, le=744)]
    no_charge: dict[str, str] = Field(default_factory=dict)
    regions: dict[str, RegionPrices]


def load_catalog(path: Path | str = CATALOG) -> PriceCatalog:
    """The price catalog at ``path``; raises ``ConfigError`` (file, line, key, reason) when it is malformed."""
    return _load_catalog(str(Path(path).resolve()))


@functools.lru_cache(maxsize=4)
def _load_catalog(path: str) -> PriceCatalog:
    import yaml
    from pydantic import ValidationError

    from engine.documents import load_file
    from engine.validation import validate_document

    # The fast path (libyaml when present): the engine's line-tracking loader takes ~80 ms on this file; it runs only
    # to name the file, line and key of a problem.
    try:
        with open(path, "rb") as fh:
            data = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader
        return PriceCatalog.model_validate(data)
    except (OSError, yaml.YAMLError, ValidationError):
        return validate_document(load_file(path), PriceCatalog)


@dataclass(frozen=True)
class Component:
    """One priced part of a resource: an instance's hours, its root volume's GB, …"""

    name: str
    quantity: float
    unit: str
    unit_price: float
    monthly: float


@dataclass
class ResourceCost:
    address: str
    type: str
    action: str
    monthly_before: float | None  # None: not priced (see reason); 0 when the resource does not exist before
    monthly_after: float | None
    reason: str | None = None  # why it is not priced
    components: list[Component] = field(default_factory=list)  # of the "after" side (the "before" side's when deleted)

    @property
    def priced(self) -> bool:
        return self.reason is None

    @property
    def monthly_delta(self) -> float | None:
        if not self.priced:
            return None
        return (self.monthly_after or 0.0) - (self.monthly_before or 0.0)


@dataclass
class CostEstimate:
    tenant: str
    environment: str
    tool: str
    target: str
    region: str
    currency: str
    catalog_as_of: str
    resources: list[ResourceCost]
    prices_note: str | None = None  # the region's own note: these prices are estimates (policy/pricing.yml)

    @property
    def monthly_before(self) -> float:
        return sum(r.monthly_before or 0.0 for r in self.resources if r.priced)

    @property
    def monthly_after(self) -> float:
        return sum(r.monthly_after or 0.0 for r in self.resources if r.priced)

    @property
    def monthly_delta(self) -> float:
        return self.monthly_after - self.monthly_before

    @property
    def not_priced(self) -> list[ResourceCost]:
        return [r for r in self.resources if not r.priced]

    @property
    def complete(self) -> bool:
        return not self.not_priced

    def summary(self) -> dict:
        """Totals only: what the policy input and fleet views carry."""
        return {"currency": self.currency, "catalog_as_of": self.catalog_as_of, "region": self.region,
                "monthly_before": round(self.monthly_before, 2), "monthly_after": round(self.monthly_after, 2),
                "monthly_delta": round(self.monthly_delta, 2), "complete": self.complete,
                "not_priced": [{"address": r.address, "type": r.type, "reason": r.reason} for r in self.not_priced],
                **({"prices_note": self.prices_note} if self.prices_note else {})}

    def to_dict(self) -> dict:
        def resource(r: ResourceCost) -> dict:
            data = asdict(r)
            data["components"] = [{**asdict(c), "monthly": round(c.monthly, 2)} for c in r.components]
            for key in ("monthly_before", "monthly_after"):
                data[key] = None if data[key] is None else round(data[key], 2)
            data["monthly_delta"] = None if r.monthly_delta is None else round(r.monthly_delta, 2)
            data["priced"] = r.priced
            return data

        return {"tenant": self.tenant, "environment": self.environment, "tool": self.tool, "target": self.target,
                **self.summary(), "resources": [resource(r) for r in self.resources]}


class _NotPriced(Exception):
    """A side of a resource the catalog cannot price; the message says why."""


def _components(kind: str, attrs: dict, region: RegionPrices | None, catalog: PriceCatalog, doc: PlanDocument) -> list[Component]:
    hours = catalog.hours_per_month
    if kind in catalog.no_charge and not (kind == "route_table" and doc.target == "local" and "nat_gateway" in (attrs.get("routes_to") or [])):
        return [Component(catalog.no_charge[kind], 1, "resource", 0.0, 0.0)]
    if region is None:
        raise _NotPriced(f"region {doc.region or '(none)'} is not in the price catalog")
    if region.cloud != cloud_of(doc.target):
        raise _NotPriced(f"region {doc.region} of the price catalog has {region.cloud} prices, not {cloud_of(doc.target)}'s")

    def hourly(name: str, price: float, quantity: float = 1) -> Component:
        return Component(name, hours * quantity, "hours", price, price * hours * quantity)

    def volume(name: str, gb: float | None, volume_type: str) -> Component:
        if gb is None:
            raise _NotPriced(f"{name} size is not known")
        if volume_type not in region.volume_gb_month:
            raise _NotPriced(f"volume type {volume_type} has no price in {doc.region}")
        price = region.volume_gb_month[volume_type]
        return Component(f"{name} ({volume_type})", gb, "GB-month", price, price * gb)

    if kind == "instance":
        itype = attrs.get("instance_type")
        if itype not in region.instance_hourly:
            raise _NotPriced(f"instance type {itype} has no price in {doc.region}")
        out = [hourly(f"instance {itype}", region.instance_hourly[itype])]
        if attrs.get("root_volume_gb") is not None:
            out.append(volume("root volume", attrs["root_volume_gb"], attrs.get("root_volume_type") or "gp3"))
        return out
    if kind == "volume":
        return [volume("volume", attrs.get("size_gb"), attrs.get("volume_type") or "gp3")]
    if kind == "database":
        engine, klass = attrs.get("engine"), attrs.get("instance_class")
        prices = region.database_hourly.get(str(engine)) or {}
        if klass not in prices:
            raise _NotPriced(f"database class {klass} ({engine}) has no price in {doc.region}")
        multi = bool(attrs.get("multi_az"))
        factor = region.database_multi_az_factor if multi else 1.0
        storage = region.database_storage_gb_month.multi_az if multi else region.database_storage_gb_month.single_az
        gb = attrs.get("storage_gb")
        if gb is None:
            raise _NotPriced("database storage size is not known")
        return [hourly(f"database {klass} ({engine}, {'Multi-AZ' if multi else 'Single-AZ'})", prices[klass] * factor),
                Component(f"database storage ({'Multi-AZ' if multi else 'Single-AZ'})", gb, "GB-month", storage, storage * gb)]
    if kind == "nat_gateway":
        return [hourly("NAT gateway", region.nat_gateway_hourly)]
    if kind == "route_table":  # the local target's private route table stands in for the AWS programs' NAT gateway
        return [hourly("NAT gateway (the local target's stand-in)", region.nat_gateway_hourly)]
    if kind == "public_ip":
        return [hourly("public IPv4 address", region.public_ipv4_hourly)]
    if kind == "dns_zone":
        if region.dns_zone_monthly is None:
            raise _NotPriced(f"private DNS zones have no price in {doc.region}")
        return [Component("private DNS zone", 1, "zone-month", region.dns_zone_monthly, region.dns_zone_monthly)]
    if kind == "private_endpoint":
        if region.private_endpoint_hourly is None:
            raise _NotPriced(f"private endpoints have no price in {doc.region}")
        return [hourly("private endpoint", region.private_endpoint_hourly)]
    if kind == "alarm":
        count = int(attrs.get("alarm_count") or 0)
        return [Component("metric alarm (standard resolution)", count, "alarms", region.alarm_monthly, region.alarm_monthly * count)]
    raise _NotPriced(f"no price for resource type {kind}")


def price_resource(resource: PlannedResource, doc: PlanDocument, catalog: PriceCatalog) -> ResourceCost:
    """Monthly cost of one resource before and after its change."""
    region = catalog.regions.get(doc.region)
    sides: dict[str, tuple[float, list[Component]]] = {}
    try:
        for side, attrs in (("before", resource.before), ("after", resource.after)):
            if attrs is None:
                sides[side] = (0.0, [])
                continue
            components = _components(resource.type, attrs, region, catalog, doc)
            sides[side] = (sum(c.monthly for c in components), components)
    except _NotPriced as reason:
        return ResourceCost(resource.address, resource.type, resource.action, None, None, reason=str(reason))
    components = sides["after"][1] if resource.after is not None else sides["before"][1]
    return ResourceCost(resource.address, resource.type, resource.action, sides["before"][0], sides["after"][0], components=components)


def estimate(doc: PlanDocument, catalog: PriceCatalog | None = None) -> CostEstimate:
    """The monthly cost of ``doc`` before and after, per resource and in total."""
    catalog = catalog or load_catalog()
    region = catalog.regions.get(doc.region)
    return CostEstimate(tenant=doc.tenant, environment=doc.environment, tool=doc.tool, target=doc.target, region=doc.region,
                        currency=catalog.currency, catalog_as_of=catalog.as_of,
                        resources=[price_resource(r, doc, catalog) for r in doc.resources], prices_note=region.note if region else None)
