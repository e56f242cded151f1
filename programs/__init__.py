"""The provider's Pulumi programs, one package per target (``local``, ``aws``, ``azure``, ``gcp``).

Each exposes ``program(settings: dict) -> None``: an inline Pulumi program that reads
nothing but the planner's settings for one customer × environment.
"""

from __future__ import annotations

from importlib import import_module
from typing import Callable

TARGETS = ("local", "aws", "azure", "gcp")


def load(target: str) -> Callable[[dict], None]:
    """The ``program`` function of ``target``; raises KeyError for an unknown target."""
    if target not in TARGETS:
        raise KeyError(target)
    return import_module(f"programs.{target}").program
