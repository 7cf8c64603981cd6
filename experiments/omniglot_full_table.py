"""The full-Omniglot table: every learner's 5/20-way 1/5-shot test accuracy beside the
published figures, from ``metric_fewshot.py`` runs (one run scores the whole grid) and
``omniglot.py --protocol vinyals`` runs (one run, one cell), with the issue's bars.

``omniglot_report.py --full-runs <folder>`` puts it at the top of ``omniglot.md`` and its rows
in ``omniglot_full.csv`` (the columns of ``omniglot.csv``); alone:

    python experiments/omniglot_full_table.py --runs experiments/results/omniglot_full

Where a learner has runs trained at both shot counts, each column takes the run trained at
its own shot count; a cell scored by a learner trained at the other count is marked
``[k-shot learner]``. Among several such runs, the one with the best validation accuracy.

Published figures (accuracy %, 5w1s / 5w5s / 20w1s / 20w5s, the standard split of 1,200
training characters): MAML (Finn et al. 2017), Meta-SGD (Li et al. 2017), Reptile
(Nichol et al. 2018, non-transductive), prototypical networks (Snell et al. 2017), relation
networks (Sung et al. 2018), matching networks and Siamese networks (Vinyals et al. 2016's
table); semi-supervised prototypical networks 5w1s (Ren et al. 2018, soft k-means with a
distractor cluster).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from metarl.utils.cli import parse_settings

CELLS = ((5, 1), (5, 5), (20, 1), (20, 5))
PUBLISHED: dict[str, tuple[float | None, ...]] = {
    "maml": (98.7, 99.9, 95.8, 98.9),
    "metasgd": (99.53, 99.93, 95.93, 98.97),
    "reptile": (95.39, 98.90, 88.14, 96.65),
    "protonet": (98.8, 99.7, 96.0, 98.9),
    "relation": (99.6, 99.8, 97.6, 99.1),
    "matching": (98.1, 98.9, 93.8, 98.5),
    "siamese": (96.7, 98.4, 88.0, 96.5),
    "semisupervised-protonet": (97.68, None, None, None),
    "metanet": (98.95, None, 97.0, None),
}
# (5w1s, 20w1s) floors: error rates at most 1.5x the published ones
BARS = {"maml": (98.0, 93.7), "protonet": (98.2, 94.0)}
NAMES = {
    "maml": "MAML", "fomaml": "FOMAML", "metasgd": "Meta-SGD", "reptile": "Reptile",
    "protonet": "ProtoNet", "gaussian-protonet": "Gaussian ProtoNet",
    "semisupervised-protonet": "semi-supervised ProtoNet", "relation": "Relation network",
    "matching": "Matching network", "matching-fce": "Matching network (FCE)",
    "siamese": "Siamese network", "metanet": "Meta Networks",
}  # fmt: skip


@dataclass
class Settings:
    """Print the full-Omniglot table of the runs under a folder."""

    runs: str = "experiments/results/omniglot_full"  # folder whose */results.json are runs


def cells_of(run: dict) -> dict[tuple[int, int], tuple[float, float, int]]:
    """(ways, shots) -> (accuracy %, 95% half-width, the shots it was trained at)."""
    if "test" in run:  # metric_fewshot.py: the whole grid
        trained = run["trained_shots"]
        return {
            (w, k): (100 * c["accuracy"], 100 * c["ci95"], trained)
            for (w, k) in CELLS
            if (c := run["test"].get(f"{w}w{k}s"))
        }
    trained = run["settings"].get("train_shots") or run["settings"]["shots"]
    return {(run["ways"], run["shots"]): (100 * run["test_accuracy"], 100 * run["ci95"], trained)}


def full_section(root: Path) -> tuple[list[str], list[dict]]:
    """The Markdown section and the CSV rows of the runs under ``root``."""
    runs = [{**json.loads(p.read_text()), "run": p.parent.name}
            for p in sorted(root.glob("*/results.json"))]  # fmt: skip
    runs = [
        r for r in runs if r.get("protocol", r.get("settings", {}).get("protocol")) == "vinyals"
    ]
    best: dict[tuple[str, int, int], tuple[bool, float, dict, tuple]] = {}
    rows = []
    for r in runs:
        for (w, k), (acc, ci, trained) in cells_of(r).items():
            key = (r["learner"], w, k)
            rank = (trained == k, r["val_accuracy"])  # own shot count first, then validation
            if key not in best or rank > best[key][:2]:
                best[key] = (*rank, r, (acc, ci, trained))
            pub = PUBLISHED.get(r["learner"], (None,) * 4)[CELLS.index((w, k))]
            other = "" if trained == k else f" [{trained}-shot learner]"
            rows.append({
                "learner": NAMES.get(r["learner"], r["learner"]), "run": r["run"],
                "setting": f"{w}-way {k}-shot{other}",
                "accuracy": round(acc, 2), "ci95": round(ci, 2), "published": pub or "",
                "test_episodes": r["test_episodes"],
                "train_wall_min": round(r.get("train_wall_s", 0) / 60, 1), "command": r["command"],
            })  # fmt: skip
    learners = [n for n in NAMES if any(key[0] == n for key in best)]
    head = " | ".join(f"{w}-way {k}-shot" for w, k in CELLS)
    lines = [
        "## Full Omniglot (1,200 / 423 characters, seeded split; 95% intervals)",
        "",
        "Built from `experiments/results/omniglot_full` (`metric_fewshot.py` and "
        "`omniglot.py --protocol vinyals` runs); published figures in brackets.",
        "",
        f"| learner | {head} |",
        "|---|" + "---|" * len(CELLS),
    ]
    for learner in learners:
        cells = []
        for i, (w, k) in enumerate(CELLS):
            pub = PUBLISHED.get(learner, (None,) * 4)[i]
            entry = best.get((learner, w, k))
            text = "-" if entry is None else f"{entry[3][0]:.2f} ± {entry[3][1]:.2f}"
            if entry is not None and entry[3][2] != k:
                text += f" [{entry[3][2]}-shot learner]"
            cells.append(text + ("" if pub is None else f" ({pub})"))
        lines.append(f"| {NAMES[learner]} | " + " | ".join(cells) + " |")
    if not learners:
        lines += ["| (no run finished yet) |" + " |" * len(CELLS)]
    lines += ["", *bar_lines(best), ""]
    return lines, rows


def bar_lines(best: dict) -> list[str]:
    """The issue's bars for every learner with a 5-way 1-shot result."""
    lines = []
    for learner in sorted({key[0] for key in best}):
        one = best.get((learner, 5, 1))
        if one is None:
            continue
        ours = one[3][0]
        if learner in BARS:
            floors = BARS[learner]
            twenty = best.get((learner, 20, 1))
            met = ours >= floors[0] and twenty is not None and twenty[3][0] >= floors[1]
            got = "-" if twenty is None else f"{twenty[3][0]:.2f}"
            lines.append(f"- {NAMES[learner]}: 5w1s {ours:.2f} (>= {floors[0]}), 20w1s {got} "
                         f"(>= {floors[1]}): {'met' if met else '**not met**'}.")  # fmt: skip
        elif PUBLISHED.get(learner, (None,))[0] is not None:
            pub = PUBLISHED[learner][0]
            met = ours >= pub - 2
            lines.append(f"- {NAMES[learner]}: 5w1s {ours:.2f} against the published {pub} "
                         f"(within 2 points): {'met' if met else '**not met**'}.")  # fmt: skip
    return lines


def main(argv: list[str] | None = None) -> list[str]:
    s = parse_settings(Settings, argv)
    lines, _ = full_section(Path(s.runs))
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
