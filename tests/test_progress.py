"""The training progress line and end-of-run summary: what they show and that they fit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mast.progress import headline, progress_line, run_summary_lines
from mast.train import RunResult

ROW = {
    "test_win_rate": 0.875,
    "sparsity": 0.9000221,
    "flops_train_ratio": 0.0931,
    "flops_test_ratio": 0.0839,
    "hw_speedup": 9.523,
}


@pytest.mark.parametrize("width", [80, 100, 120, 160])
def test_progress_line_fits_and_shows_every_headline_figure(width):
    line = progress_line(27_040, 60_000, 31.0, headline(ROW), width, desc="qmix-mast")
    assert len(line) <= width
    for text in ("45%", "27,040/60,000", "0.88", "0.90", "0.093/0.084", "9.52x"):
        assert text in line, (text, line)


def test_progress_line_labels_at_80_and_120_columns():
    narrow = progress_line(27_040, 60_000, 31.0, headline(ROW), 80)
    wide = progress_line(27_040, 60_000, 31.0, headline(ROW), 120)
    assert "win 0.88" in narrow and "hw 9.52x" in narrow
    assert "test win 0.88" in wide and "hw_speedup/iter 9.52x" in wide
    assert "|" in wide  # room for the bar at 120 columns


def test_progress_line_past_t_max_keeps_its_percentage():
    line = progress_line(6_059, 6_000, 40.0, headline(ROW), 120)
    assert "100%" in line and "6,059/6,000" in line


def test_headline_without_hardware_or_evaluation():
    figs = headline({"sparsity": 0.9, "flops_train_ratio": 0.1, "flops_test_ratio": 0.08})
    assert [f.long for f in figs] == ["test win", "sparsity", "FLOPs"]
    assert figs[0].value == "-"  # no evaluation yet


def test_run_summary_lines_show_final_figures_and_callback_lines(tmp_path):
    result = RunResult(
        run_dir=tmp_path,
        t_env=6_059,
        episodes=264,
        test_win_rate=0.71875,
        test_return=16.52,
        flops_train=0.0934,
        flops_test=0.0839,
        sparsity=0.9,
        wall_s=47.5,
        last_row={},
        summary=("hardware line", "report: x/report.md"),
    )
    text = "\n".join(run_summary_lines(result))
    assert f"run folder: {tmp_path}" in text
    assert "t_env 6,059" in text and "test win rate 0.719 (last evaluation)" in text
    assert "FLOPs train/test 0.0934/0.0839" in text
    assert text.endswith("hardware line\nreport: x/report.md")


def test_mast_train_help_imports_no_torch_and_states_defaults():
    code = (
        "import sys, contextlib, io\n"
        "from codesign.train import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])\n"
        "print(buf.getvalue())\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True
    ).stdout
    assert out.rstrip().endswith("NO-TORCH")
    flat = " ".join(out.split())
    assert "default 0.9" in flat and "default 60,000" in flat
    assert "2s3z" in flat and "3s5z" in flat and "default 3m" in flat


def test_stage_log_prefixes_program_and_elapsed_seconds():
    import io

    from mast.progress import StageLog

    buf = io.StringIO()
    log = StageLog("mast-hw export", stream=buf)
    log("compiling")
    with log.during("elaborating", every_s=3600):
        pass
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("mast-hw export [") and lines[0].endswith(" s] compiling")
    assert lines[1].endswith(" s] elaborating")


def test_progress_bar_draws_the_line_at_its_width():
    import io

    from mast.progress import ProgressBar

    buf = io.StringIO()
    bar = ProgressBar(total=6_000, ncols=80, file=buf, mininterval=0, desc="qmix-mast")
    bar.update(6_059)
    bar.show(ROW)
    bar.close()
    frames = [f for f in buf.getvalue().replace("\n", "\r").split("\r") if f.strip()]
    last = frames[-1]
    assert len(last) <= 80
    assert "100%" in last and "6,059/6,000" in last and "hw 9.52x" in last
