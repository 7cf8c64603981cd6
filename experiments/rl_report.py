"""Build a results table (.md + .csv + .png) from maml_rl.py runs' eval.json files.

    python experiments/rl_report.py --runs experiments/results/navigation2d \\
        experiments/results/navigation2d-raw-actions --out experiments/results/navigation2d.md \\
        --notes experiments/results/navigation2d_notes.md

Runs in a folder named ``<name>-<variant>`` are labelled with the variant. A run evaluated
with later steps scaled (``later_step_scale`` in its eval.json, chosen on validation tasks)
gets a second row. ``--notes`` appends a hand-written section (what differs from the paper,
what is next).

Published figures for 2D navigation: mean return after 0 / 1 / 2 / 3 gradient steps, Finn,
Abbeel and Levine, "Model-Agnostic Meta-Learning" (ICML 2017), section 5.3.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PUBLISHED = {
    "metarl/Navigation2D-v0": {
        "maml-trpo": [-40.4, -11.7, -3.33, -3.23],
        "oracle": [-2.29],
    },
}
NAMES = {
    "maml-trpo": "MAML-TRPO", "maml-pg": "MAML (vanilla PG)", "fomaml-trpo": "FOMAML-TRPO",
    "metasgd-trpo": "Meta-SGD-TRPO", "reptile": "Reptile", "pretrained": "pretrained",
    "random": "random init", "oracle": "oracle",
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", required=True, nargs="+")
    parser.add_argument("--out", required=True)
    parser.add_argument("--notes", default=None)
    parser.add_argument("--title", default="2D navigation: mean return after k gradient steps")
    args = parser.parse_args()
    runs = []
    for folder in args.runs:
        variant = Path(folder).name.partition("-")[2]
        for path in sorted(Path(folder).glob("*/eval.json")):
            run = json.loads(path.read_text())
            name = NAMES.get(run["learner"], run["learner"])
            run["label"] = f"{name} [{variant}]" if variant else name
            runs.append(run)
    if not runs:
        raise SystemExit(f"no eval.json under {args.runs}")
    for run in list(runs):
        if run.get("later_step_scale", 1.0) != 1.0:
            scale = run["later_step_scale"]
            runs.append({**run, "label": f"{run['label']} [steps 2+ x{scale}]",
                         "mean_return": run["mean_return_later_scaled"],
                         "std_return": run["std_return_later_scaled"]})  # fmt: skip
    order = list(NAMES)
    runs.sort(key=lambda r: (order.index(r["learner"]) if r["learner"] in order else len(order),
                             r["label"]))  # fmt: skip
    out = Path(args.out)

    with out.with_suffix(".csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["learner", "inner_steps", "mean_return", "std_return", "n_tasks"])
        for r in runs:
            for k, mean, std in zip(r["inner_steps"], r["mean_return"], r["std_return"]):
                writer.writerow([r["label"], k, f"{mean:.3f}", f"{std:.3f}", r["n_tasks"]])

    steps = max(len(r["inner_steps"]) for r in runs)
    head = " | ".join(f"{k} step{'s' if k != 1 else ''}" for k in range(steps))
    lines = [f"# {args.title}", "", f"| learner | {head} | train wall time |",
             "|---|" + "---|" * steps + "---|"]  # fmt: skip
    published = PUBLISHED.get(runs[0]["env"], {})
    for r in runs:
        cells = [f"{m:.2f} ± {s:.2f}" for m, s in zip(r["mean_return"], r["std_return"])]
        cells += [""] * (steps - len(cells))
        wall = f"{r['train_wall_s'] / 60:.0f} min" if r["train_wall_s"] else "-"
        lines.append(f"| {r['label']} (ours) | {' | '.join(cells)} | {wall} |")
        if r["learner"] in published and r["label"] == NAMES[r["learner"]]:
            pub = [f"{v}" for v in published[r["learner"]]] + [""] * steps
            lines.append(f"| {NAMES[r['learner']]} (published) | {' | '.join(pub[:steps])} | |")
    lines += ["", "Mean ± standard deviation, over held-out tasks, of each task's mean episode",
              "return.", "", "Commands and machine:", ""]  # fmt: skip
    commands = {r["command"]: f"({r['machine']}, {r['n_tasks']} held-out tasks)" for r in runs}
    lines += [f"- `{command}` {where}" for command, where in commands.items()]
    plot = out.with_suffix(".png")
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in runs:
        ax.plot(r["inner_steps"], r["mean_return"], "o-", label=r["label"])
    for learner, values in published.items():
        ax.plot(range(len(values)), values, "k--" if len(values) > 1 else "k*", alpha=0.5,
                label=f"{NAMES[learner]} (published)")  # fmt: skip
    ax.set(xlabel="gradient steps at test time", ylabel="mean return", title=args.title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(plot, dpi=110)
    plt.close(fig)
    lines += ["", f"![returns against gradient steps]({plot.name})", ""]
    if args.notes:
        lines += [Path(args.notes).read_text()]
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}, {out.with_suffix('.csv')} and {plot}")


if __name__ == "__main__":
    main()
