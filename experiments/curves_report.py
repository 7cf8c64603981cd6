"""Plot learning curves of several runs on one figure: one metrics.csv column against step.

    python experiments/curves_report.py \\
        --runs experiments/results/navigation2d/maml-trpo-seed0 \\
               experiments/results/navigation2d-fisher4/maml-trpo-seed0 \\
        --labels "exact Fisher" "Fisher on every 4th task" --column return_after \\
        --out experiments/results/navigation2d_fisher.png

Each run folder's ``metrics.csv`` gives one curve, smoothed by a centred moving average of
``--window`` steps (1: raw); the raw points are drawn faintly behind it. Writes the PNG and
prints, per run, the mean of the column over consecutive blocks of ``--block`` steps.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
from matplotlib.figure import Figure

from metarl.utils.cli import NonEmpty, Positive, parse_settings


@dataclass
class Settings:
    """Learning curves of several runs, side by side."""

    runs: Annotated[tuple[str, ...], NonEmpty]  # run folders holding a metrics.csv each
    out: str  # the PNG to write
    labels: tuple[str, ...] = ()  # one legend label per run (default: the folder names)
    column: str = "return_after"  # the metrics.csv column to plot
    window: Annotated[int, Positive] = 5  # moving-average width in steps (1: raw)
    block: Annotated[int, Positive] = 10  # steps per block in the printed summary
    title: str = ""  # figure title

    def validate(self) -> None:
        if self.labels and len(self.labels) != len(self.runs):
            raise ValueError(f"--labels: {len(self.labels)} labels for {len(self.runs)} --runs")


def read_curve(run: Path, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Steps and values of ``column`` in ``run/metrics.csv`` (rows without a value skipped)."""
    path = run / "metrics.csv"
    if not path.is_file():
        raise SystemExit(f"--runs {run}: no metrics.csv there")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if column not in (reader.fieldnames or []):
            raise SystemExit(f"{path} has no column {column!r}; it has {reader.fieldnames}")
        rows = [(float(r["step"]), float(r[column])) for r in reader if r[column] != ""]
    steps, values = np.array(rows).T if rows else (np.zeros(0), np.zeros(0))
    return steps, values


def main(argv: list[str] | None = None) -> None:
    s = parse_settings(Settings, argv)
    labels = s.labels or tuple(Path(r).name for r in s.runs)
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    for run, label in zip(s.runs, labels):
        steps, values = read_curve(Path(run), s.column)
        line = ax.plot(steps, values, alpha=0.25, linewidth=0.8)[0]
        if s.window > 1 and len(values) >= s.window:
            smooth = np.convolve(values, np.ones(s.window) / s.window, mode="valid")
            start = (s.window - 1) // 2
            ax.plot(steps[start : start + len(smooth)], smooth, color=line.get_color(), label=label)
        else:
            line.set_alpha(1.0)
            line.set_label(label)
        blocks = [values[i : i + s.block].mean() for i in range(0, len(values), s.block)]
        print(
            f"{label}: mean {s.column} per {s.block} steps: "
            + ", ".join(f"{b:.2f}" for b in blocks)
        )
    ax.set(xlabel="meta-iteration", ylabel=s.column, title=s.title)
    ax.legend()
    fig.tight_layout()
    out = Path(s.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
