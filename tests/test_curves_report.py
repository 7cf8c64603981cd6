"""experiments/curves_report.py: several runs' learning curves on one figure."""

from __future__ import annotations

import pytest

from helpers import load_experiment


def _run(folder, values):
    folder.mkdir()
    rows = "\n".join(f"{i + 1},{v}" for i, v in enumerate(values))
    (folder / "metrics.csv").write_text("step,return_after\n" + rows + "\n")


def test_it_plots_every_run_and_prints_block_means(tmp_path, capsys):
    _run(tmp_path / "a", [1, 2, 3, 4])
    _run(tmp_path / "b", [-1, -1, -3, -3])
    out = tmp_path / "curves.png"
    load_experiment("curves_report").main(
        ["--runs", str(tmp_path / "a"), str(tmp_path / "b"), "--labels", "A", "B",
         "--window", "2", "--block", "2", "--out", str(out)]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert "A: mean return_after per 2 steps: 1.50, 3.50" in printed
    assert "B: mean return_after per 2 steps: -1.00, -3.00" in printed
    assert out.stat().st_size > 1000


def test_a_missing_column_or_folder_is_named(tmp_path):
    _run(tmp_path / "a", [1, 2])
    exp = load_experiment("curves_report")
    with pytest.raises(SystemExit, match="no column 'loss'"):
        exp.main(
            ["--runs", str(tmp_path / "a"), "--column", "loss", "--out", str(tmp_path / "x.png")]
        )
    with pytest.raises(SystemExit, match="no metrics.csv"):
        exp.main(["--runs", str(tmp_path / "nope"), "--out", str(tmp_path / "x.png")])
