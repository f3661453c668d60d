"""``mast-train`` hardware flags: parsing, defaults and one-line errors."""

from __future__ import annotations

import pytest

from codesign.trace import HwTrace
from codesign.train import add_hw_arguments, hw_callbacks, main
from mast.cli import build_parser, config_from_args
from mast.run_folder import mask_snapshots, read_config
from mast.sparsity import load_layers


def _parse(*argv: str):
    parser = build_parser()
    add_hw_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults():
    args = _parse()
    assert args.hw_profile is None and args.hw_baseline is None and not args.hw_verify
    assert config_from_args(args).sparsity.hw_aware_growth is False


@pytest.mark.parametrize("flag, aware", [([], False), (["--hw-aware-growth"], True)])
def test_hw_aware_growth_reaches_the_run(tmp_path, short_trainer, flag, aware):
    """Through ``main()`` (intermixed flags and overrides), as the command line runs it."""
    run_dir = short_trainer(tmp_path, "learner.lr=0.001", *flag, "--t-max", "60")
    cfg = read_config(run_dir)
    assert cfg.sparsity.hw_aware_growth is aware and cfg.learner.lr == 0.001


def test_constant_fan_in_reaches_the_run_and_its_masks(tmp_path, short_trainer):
    """Every agent matrix of every mask snapshot has rows within one of each other."""
    run_dir = short_trainer(tmp_path, "--constant-fan-in", "--t-max", "130")
    assert read_config(run_dir).sparsity.constant_fan_in is True
    snaps = mask_snapshots(run_dir)
    assert len(snaps) >= 3  # the initial masks and at least two topology updates
    for snap in snaps:
        for layer in load_layers(snap):
            rows = layer.mask.reshape(-1, layer.mask.shape[-1]).sum(axis=1)
            assert rows.max() - rows.min() <= 1, (snap.name, layer.name)


def test_callbacks_follow_the_flags():
    assert hw_callbacks(_parse()) == []
    (cb,) = hw_callbacks(_parse("--hw-profile", "sparse_pe_64"))
    assert isinstance(cb, HwTrace) and cb.checker is None
    assert (cb.profile.name, cb.baseline.name) == ("sparse_pe_64", "systolic_8x8")
    (cb,) = hw_callbacks(_parse("--hw-profile", "sparse_pe_16", "--hw-baseline", "systolic_8x8"))
    assert (cb.profile.name, cb.baseline.name) == ("sparse_pe_16", "systolic_8x8")


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
