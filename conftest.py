"""Suite-wide collection order: the long tiers first, so that two test workers end together.

``pytest -n 2 --dist loadgroup`` hands out work units (a test, or an ``xdist_group``) in
collection order (``--no-loadscope-reorder`` in ``pyproject.toml``'s ``addopts``), one at a
time to whichever worker is free. Collected in file order, the ``rtl_full`` tier (minutes
per test) came last and one worker ran it alone while the other idled. Here the
``rtl_full`` tests come first, then the rest of the ``slow`` tier, then everything else;
within a tier the cocotb tests of ``rtl/`` (a Verilator build each, the longest of the
fast tier too) come before ``tests/``, otherwise file order is kept. This changes the order
only: every collected test still runs.
"""

from __future__ import annotations

import pytest


def _tier(item: pytest.Item) -> tuple[int, bool]:
    if item.get_closest_marker("rtl_full"):
        tier = 0
    else:
        tier = 1 if item.get_closest_marker("slow") else 2
    return tier, item.path.parent.name != "rtl"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_tier)  # stable: file order within a tier
