"""A local Spacelift GraphQL server for tests (see server.py)."""

from .server import KEY_ID, KEY_SECRET, FakeSpacelift, RunPlan

__all__ = ["FakeSpacelift", "RunPlan", "KEY_ID", "KEY_SECRET"]
