"""The portal: ``engine serve`` — the fleet, each customer's stacks and the SLA report, over the engine's own data.

A FastAPI application (server-rendered Jinja2 pages, every asset served by the app, charts drawn as SVG in
Python) over the run history (``engine/history.py``), the tenant catalog, the stacks' outputs (read through
the runners, masked there, never stored) and the fleet's cost from desired state (``engine/governance.py``).

Layout (FastAPI's "bigger applications"): ``settings`` (what the provider configures, the local sign-in
guard), ``auth`` (who is asking: GitHub sign-in, local sign-in, API tokens; scope checks as dependencies),
``tokens`` (API tokens, stored hashed), ``queries`` (every read: the page and its ``/api`` route call the
same function), ``sla`` (the DORA measures, pure), ``charts`` (SVG), ``app`` (the routes).
"""

from engine.portal.app import create_app
from engine.portal.settings import PortalSettings

__all__ = ["PortalSettings", "create_app"]
