"""``cost_models.sweep.default_baseline``: the dense systolic array of equal MAC count."""

from __future__ import annotations

import dataclasses

import pytest

from cost_models import sweep
from cost_models.sweep import default_baseline
from hw.profiles import PROFILES, HwProfile, get_profile
from mast.errors import UserError


@pytest.mark.parametrize(
    "profile, baseline",
    [
        ("sparse_pe_64", "systolic_8x8"),
        ("sparse_pe_16", "systolic_4x4"),
        ("sparse_pe_256", "systolic_16x16"),
        ("sparse_pe_4", "systolic_2x2"),
        ("systolic_8x8", "systolic_8x8"),
    ],
)
def test_same_mac_count(profile, baseline):
    assert default_baseline(get_profile(profile)).name == baseline


def test_a_systolic_profile_is_its_own_baseline():
    odd = HwProfile(name="sys_3x2", kind="systolic", n_pe=6, rows=3, cols=2)
    assert default_baseline(odd) is odd


def test_of_several_the_squarest(monkeypatch):
    wide = HwProfile(name="systolic_16x4", kind="systolic", n_pe=64, rows=16, cols=4)
    monkeypatch.setattr(sweep, "PROFILES", {"systolic_16x4": wide, **PROFILES})
    assert default_baseline(get_profile("sparse_pe_64")).name == "systolic_8x8"


@pytest.mark.parametrize("flag", ["--baseline", "--hw-baseline"])
def test_no_systolic_of_that_size_names_the_flag(flag):
    odd = dataclasses.replace(get_profile("sparse_pe_4"), name="sparse_pe_12", n_pe=12)
    with pytest.raises(UserError) as e:
        default_baseline(odd, flag)
    systolic = ", ".join(p.name for p in PROFILES.values() if p.kind == "systolic")
    assert str(e.value) == (
        f"no built-in systolic profile has n_pe=12 like 'sparse_pe_12'; "
        f"pass {flag} (systolic profiles: {systolic})"
    )
