"""``python -m mast.envs``: scripted runs and one-line errors."""

from __future__ import annotations

from mast.envs.__main__ import main
from mast.errors import run_cli


def test_cli_prints_win_rates(capsys):
    assert main(["--maps", "3m", "--episodes", "4", "--policies", "random"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["map", "policy", "episodes", "win", "rate", "return", "length"]
    assert out[1].split()[:3] == ["3m", "random", "4"]


def test_cli_bad_names_are_one_line_errors(capsys):
    assert run_cli("mast-envs", main, ["--maps", "4m"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mast-envs: error: unknown map '4m'; known maps: 2c_vs_64zg")
    assert run_cli("mast-envs", main, ["--policies", "greedy"]) == 2
    err = capsys.readouterr().err
    assert err == "mast-envs: error: unknown policy 'greedy'; known policies: focus_fire, random\n"
    assert run_cli("mast-envs", main, ["--episodes", "0"]) == 2
    assert "--episodes must be >= 1, got 0" in capsys.readouterr().err
