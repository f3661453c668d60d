"""Suite-wide collection order: the long tiers first, so that two test workers end together.

``pytest -n 2 --dist loadgroup`` hands out work units (a test, or an ``xdist_group``) in
collection order (``--no-loadscope-reorder`` in ``pyproject.toml``'s ``addopts``), one at a
time to whichever worker is free. Collected in file order, the ``rtl_full`` tier (minutes
per test) came last and one worker ran it alone while the other idled. Here the
``rtl_full`` tests come first, then the rest of the ``slow`` tier, then everything else in
file order. This changes the order only: every collected test still runs.
"""

from __future__ import annotations

import pytest


def _tier(item: pytest.Item) -> int:
    if item.get_closest_marker("rtl_full"):
        return 0
    return 1 if item.get_closest_marker("slow") else 2


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_tier)  # stable: file order within a tier
