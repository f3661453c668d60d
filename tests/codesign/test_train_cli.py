"""``mast-train`` hardware flags: parsing, defaults and one-line errors."""

from __future__ import annotations

import pytest

from codesign.costing import default_baseline
from codesign.trace import HwTrace
from codesign.train import add_hw_arguments, hw_callbacks, main
from hw.profiles import get_profile
from mast.cli import build_parser, config_from_args


def _parse(*argv: str):
    parser = build_parser()
    add_hw_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults_and_hw_aware_growth_flag():
    args = _parse()
    assert args.hw_profile is None and args.hw_baseline is None and not args.hw_verify
    assert config_from_args(args).sparsity.hw_aware_growth is False
    args = _parse("--hw-aware-growth", "learner.lr=0.001")
    cfg = config_from_args(args)
    assert cfg.sparsity.hw_aware_growth is True and cfg.learner.lr == 0.001


def test_callbacks_follow_the_flags():
    assert hw_callbacks(_parse()) == []
    (cb,) = hw_callbacks(_parse("--hw-profile", "sparse_pe_64"))
    assert isinstance(cb, HwTrace) and cb.checker is None
    assert (cb.profile.name, cb.baseline.name) == ("sparse_pe_64", "systolic_8x8")
    (cb,) = hw_callbacks(_parse("--hw-profile", "sparse_pe_16", "--hw-baseline", "systolic_8x8"))
    assert (cb.profile.name, cb.baseline.name) == ("sparse_pe_16", "systolic_8x8")


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
def test_default_baseline_has_the_same_mac_count(profile, baseline):
    assert default_baseline(get_profile(profile)).name == baseline


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--hw-profile", "sparse_pe_65"],
            "mast-train: error: unknown hardware profile 'sparse_pe_65'; known: ",
        ),
        (
            ["--hw-profile", "sparse_pe_64", "--hw-baseline", "tpu"],
            "mast-train: error: unknown hardware profile 'tpu'; known: ",
        ),
        (
            ["--hw-verify"],
            "mast-train: error: --hw-verify needs --hw-profile (got --hw-profile none)",
        ),
        (
            ["--hw-baseline", "systolic_8x8"],
            "mast-train: error: --hw-baseline needs --hw-profile (got --hw-profile none)",
        ),
        (
            ["--hw-profile", "missing.yaml"],
            "mast-train: error: profile file 'missing.yaml' does not",
        ),
        (
            ["--hw-profile", "systolic_8x8", "--hw-verify"],
            "mast-train: error: --hw-verify needs a sparse profile "
            "(the RTL is the sparse PE array), "
            "got 'systolic_8x8' of kind 'systolic'",
        ),
    ],
)
def test_bad_flags_fail_in_one_line_without_a_run_folder(tmp_path, capsys, argv, message):
    out = tmp_path / "runs"
    assert main([*argv, "--out", str(out), "--t-max", "10"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message)
    assert len(err.strip().splitlines()) == 1
    if "known:" in message:
        assert "sparse_pe_64" in err and "systolic_8x8" in err
    assert not out.exists()
