"""The test tree itself: pytest imports test modules by their base name (no packages), so two files with the same
name in tests/unit and tests/integration stop the whole suite at collection — it happened once in CI."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent


def test_every_test_module_has_a_name_of_its_own():
    names = Counter(p.name for p in TESTS.rglob("test_*.py") if "__pycache__" not in p.parts)
    assert [n for n, count in names.items() if count > 1] == []
