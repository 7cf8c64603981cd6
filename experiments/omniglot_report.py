"""Build the Omniglot results table (.md + .csv) from omniglot.py runs' results.json files.

    python experiments/omniglot_report.py --runs experiments/results/omniglot \\
        --out experiments/results/omniglot.md --notes experiments/results/omniglot_notes.md \\
        --full-runs experiments/results/omniglot_full

Every ``<runs>/*/results.json`` becomes one row: test accuracy on Sanskrit with its 95%
interval, the published full-Omniglot figure beside it, the iteration the kept initialisation
came from, the training wall time and the command; a learner scored in another setting than
it was trained in (``experiments/omniglot_retest.py``) says which. A grid of learner x
setting comes first (the five main learners always, others once they have a run), with "-"
where no run has finished yet; where several runs share a cell
(ablations, longer training) it shows the one with the best meta-validation accuracy, never
the best test one. A run started from a reference classifier's blocks (``--init-from``) says
so; one that kept its starting point (no meta-training) is listed but left out of the grid.
A ``results.json`` of ``experiments/omniglot_baseline.py`` (a classifier without
meta-learning) goes to a reference table of its own after the grid.
``--notes`` appends a hand-written section. A figure beside the table (``<out>.png``) draws
the grid: our accuracy with its interval, the published figure and the full reference.

Published figures (accuracy %, 5-way 1-shot / 5-way 5-shot / 20-way 1-shot / 20-way 5-shot on
the standard random-alphabet Omniglot test): MAML, Finn et al. 2017, Table 1; Meta-SGD, Li et
al. 2017, Table 1; Reptile, Nichol et al. 2018, Table 2 (transductive).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from matplotlib.figure import Figure  # no pyplot: no global backend, nothing left open
from omniglot_full_table import full_section

from metarl.utils.cli import NonEmpty, parse_settings

SETTINGS = ((5, 1), (5, 5), (20, 1), (20, 5))
PUBLISHED = {
    "maml": (98.7, 99.9, 95.8, 98.9),
    "metasgd": (99.53, 99.93, 95.93, 98.97),
    "reptile": (95.39, 98.90, 88.14, 96.65),
}
GRID_ALWAYS = ("maml", "fomaml", "metasgd", "reptile", "lstm")  # in the grid even before a run
VARIANTS = ("adml", "caml", "gradagree", "taml", "taml-theil")  # compared with plain MAML
# settings that must agree for a variant and a MAML run to count as equal compute
PAIRED = tuple(
    "ways shots iterations meta_batch inner_steps seed augment mix_classes mirror_classes "
    "elastic downsample channels norm within_alphabet init_from".split()
)
# values of settings added after some runs were made (their results.json lacks them)
LATER_DEFAULTS = {
    "mix_classes": 0.0,
    "mirror_classes": False,
    "elastic": 0.0,
    "downsample": "stride",
    "within_alphabet": False,
    "init_from": None,
}
NAMES = {
    "maml": "MAML",
    "fomaml": "FOMAML",
    "metasgd": "Meta-SGD",
    "reptile": "Reptile",
    "lstm": "LSTM meta-learner",
    "adml": "ADML",
    "caml": "CAML",
    "gradagree": "MAML + gradient agreement",
    "taml": "TAML (entropy)",
    "taml-theil": "TAML (Theil)",
}


@dataclass
class Settings:
    """Build the Omniglot results table (.md + .csv + .png) from omniglot.py runs."""

    runs: Annotated[tuple[str, ...], NonEmpty]  # folders whose */results.json are the runs
    out: str  # the table's .md; the .csv and .png beside it take its name
    notes: str | None = None  # a hand-written .md section appended to the table
    full_runs: str | None = None
    """folder of the full-Omniglot runs: their table comes first, its rows in
    omniglot_full.csv beside --out (omniglot_full_table.py)"""


def published(learner: str, ways: int, shots: int) -> float | None:
    """The published full-Omniglot accuracy (%) for a learner and setting, if there is one."""
    figures = PUBLISHED.get(learner)
    if figures is None or (ways, shots) not in SETTINGS:
        return None
    return figures[SETTINGS.index((ways, shots))]


def main(argv: list[str] | None = None) -> None:
    args = parse_settings(Settings, argv)
    paths = [p for folder in args.runs for p in sorted(Path(folder).glob("*/results.json"))]
    loaded = [{**json.loads(p.read_text()), "run": p.parent.name} for p in paths]
    runs = [r for r in loaded if "learner" in r]
    references = [r for r in loaded if "learner" not in r]
    if not runs:
        raise SystemExit(f"no results.json of an omniglot.py run under {args.runs}")
    order = list(NAMES)
    runs.sort(key=lambda r: (r["ways"], r["shots"], order.index(r["learner"])))

    rows = []
    for r in runs:
        pub = published(r["learner"], r["ways"], r["shots"])
        rows.append(
            {
                "learner": NAMES.get(r["learner"], r["learner"]),
                "run": r["run"],
                "setting": f"{r['ways']}-way {r['shots']}-shot" + _trained_as(r) + _origin(r),
                "accuracy": round(100 * r["test_accuracy"], 2),
                "ci95": round(100 * r["ci95"], 2),
                "adversarial_accuracy": _percent(r.get("adversarial_accuracy")),
                "published": "" if pub is None else pub,
                "test_episodes": r["test_episodes"],
                "iterations": r["settings"]["iterations"],
                "best_iteration": r["best_iteration"],
                "val_accuracy": round(100 * r["val_accuracy"], 2),
                "train_wall_min": round(r["train_wall_s"] / 60, 1),
                "command": r["command"],
            }
        )
    out = Path(args.out)
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    lines = ["# Omniglot few-shot classification", ""]
    if args.full_runs:
        full, full_rows = full_section(Path(args.full_runs))
        lines += full
        if full_rows:
            with open(out.with_name("omniglot_full.csv"), "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(full_rows[0]))
                writer.writeheader()
                writer.writerows(full_rows)
    lines += [
        "## The two small background subsets (earlier results): the Sanskrit meta-test alphabet",
        "",
        "Built by `python experiments/omniglot_report.py` from the `results.json` of each run "
        "under " + ", ".join(f"`{f}`" for f in args.runs) + ". Accuracy is the mean over "
        "meta-test episodes (15 queries per class) with the half-width of its 95% interval; "
        "published figures are on the standard full-Omniglot test (random alphabets, 1200 "
        "meta-training characters), not on our split.",
        "",
        "### Grid",
        "",
        "| learner | " + " | ".join(f"{w}-way {k}-shot" for w, k in SETTINGS) + " |",
        "|---|" + "---|" * len(SETTINGS),
    ]
    by_cell = {}  # per cell, the run with the best validation accuracy
    for r in sorted(runs, key=lambda r: r["val_accuracy"]):
        if r["best_iteration"] > 0:  # a starting point kept is not a meta-learned result
            by_cell[r["learner"], r["ways"], r["shots"]] = r
    shown = [k for k in NAMES if k in GRID_ALWAYS or any(r["learner"] == k for r in runs)]
    for learner in shown:
        cells = []
        for w, k in SETTINGS:
            r = by_cell.get((learner, w, k))
            pub = published(learner, w, k)
            cell = "-" if r is None else _interval(r)
            cell += "" if r is None else _trained_as(r) + _origin(r)
            cells.append(cell + ("" if pub is None else f" (published {pub})"))
        lines.append(f"| {NAMES[learner]} | " + " | ".join(cells) + " |")
    full = [r for r in references if r.get("settings", {}).get("characters") is None]
    figure = out.with_suffix(".png")
    plot_grid(by_cell, shown, full[0] if full else None, figure)
    lines += ["", f"![The grid against the published figures]({figure.name})"]
    lines += _references(references)
    lines += [
        "",
        "### Runs",
        "",
        "| learner | run | setting | accuracy % | adversarial % | published % | episodes | "
        "kept iteration / trained | val % | train wall time | command |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['learner']} | `{row['run']}` | {row['setting']} "
            f"| {row['accuracy']:.2f} ± {row['ci95']:.2f} "
            f"| {row['adversarial_accuracy'] or '-'} | {row['published'] or '-'} "
            f"| {row['test_episodes']} | {row['best_iteration']} / {row['iterations']} "
            f"| {row['val_accuracy']} | {row['train_wall_min']} min | `{row['command']}` |"
        )
    lines += _comparisons(runs)
    machines = sorted({r["machine"] for r in runs})
    lines += ["", "Machine: " + "; ".join(machines) + "."]
    if args.notes:
        lines += ["", Path(args.notes).read_text().rstrip()]
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out} and {out.with_suffix('.csv')} ({len(rows)} runs)")


def plot_grid(by_cell: dict, learners: list[str], reference: dict | None, path: Path) -> None:
    """One panel per setting: each learner's grid accuracy (bar, 95% interval), its published
    figure (diamond) and the reference classifier's accuracy (dashed line), if there are."""
    fig = Figure(figsize=(4 * len(SETTINGS), 0.45 * len(learners) + 1.6))
    axes = fig.subplots(1, len(SETTINGS), sharey=True)
    rows = range(len(learners))
    for ax, (ways, shots) in zip(axes, SETTINGS):
        setting = f"{ways}-way {shots}-shot"
        runs = [by_cell.get((learner, ways, shots)) for learner in learners]
        ours = [0.0 if r is None else 100 * r["test_accuracy"] for r in runs]
        ci = [0.0 if r is None else 100 * r["ci95"] for r in runs]
        ax.barh(rows, ours, xerr=ci, color="tab:blue", label="ours (Sanskrit)")
        marks = [(published(k, ways, shots), i) for i, k in enumerate(learners)]
        marks = [(x, i) for x, i in marks if x is not None]
        ax.plot([x for x, _ in marks], [i for _, i in marks], "kD", label="published")
        score = None if reference is None else reference["test"].get(setting)
        if score is not None:
            ax.axvline(
                100 * score["accuracy"], color="grey", linestyle="--", label="reference classifier"
            )
        ax.set(title=setting, xlim=(0, 100), xlabel="accuracy %")
    axes[0].set_yticks(list(rows), [NAMES[k] for k in learners])
    axes[0].invert_yaxis()
    axes[-1].legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _comparisons(runs: list[dict]) -> list[str]:
    """The variants of MAML against the MAML run trained with the same episodes and budget."""

    def key(r: dict) -> tuple:
        return tuple(r["settings"].get(k, LATER_DEFAULTS.get(k)) for k in PAIRED)

    maml = {key(r): r for r in runs if r["learner"] == "maml" and "trained_as" not in r}
    pairs = [(r, maml.get(key(r))) for r in runs if r["learner"] in VARIANTS]
    if not pairs:
        return []
    lines = [
        "",
        "### Against MAML at equal iterations",
        "",
        "Each variant beside the MAML run with the same episodes, augmentation, network, seed "
        "and number of meta-iterations; adversarial accuracy under the same FGSM attack where "
        "the variant was tested with one.",
        "",
        "| learner | run | accuracy % | adversarial % | train wall time | MAML run | MAML "
        "accuracy % | MAML adversarial % | MAML train wall time |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r, m in pairs:
        ours = (
            f"| {NAMES[r['learner']]} | `{r['run']}` | {_interval(r)} "
            f"| {_percent(r.get('adversarial_accuracy')) or '-'} "
            f"| {r['train_wall_s'] / 60:.1f} min "
        )
        if m is None:
            lines.append(ours + "| no MAML run with these settings yet | - | - | - |")
            continue
        lines.append(
            ours + f"| `{m['run']}` | {_interval(m)} "
            f"| {_percent(m.get('adversarial_accuracy')) or '-'} "
            f"| {m['train_wall_s'] / 60:.1f} min |"
        )
    return lines


def _references(references: list[dict]) -> list[str]:
    """The non-episodic reference runs (``omniglot_baseline.py``), one row each."""
    if not references:
        return []
    lines = [
        "",
        "### Reference without meta-learning",
        "",
        "A Conv-4 trained as a plain classifier of the meta-training classes (all 183 "
        "characters x 4 rotations, unless a row names fewer characters); a test episode is "
        "classified by the cosine of each query's features to the support class means "
        "(`experiments/omniglot_baseline.py`). Same Sanskrit episodes as the grid.",
        "",
        "| run | "
        + " | ".join(f"{w}-way {k}-shot" for w, k in SETTINGS)
        + " | val % (kept epoch) | train wall time | command |",
        "|---|" + "---|" * (len(SETTINGS) + 3),
    ]
    for r in references:
        cells = []
        for w, k in SETTINGS:
            score = r["test"].get(f"{w}-way {k}-shot")
            cells.append("-" if score is None else _plus_minus(score["accuracy"], score["ci95"]))
        characters = r.get("settings", {}).get("characters")
        subset = "" if characters is None else f" ({characters} characters)"
        lines.append(
            f"| `{r['run']}`{subset} | "
            + " | ".join(cells)
            + f" | {100 * r['val_accuracy']:.2f} ({r['best_epoch']}) "
            f"| {r['train_wall_s'] / 60:.1f} min | `{r['command']}` |"
        )
    return lines


def _interval(run: dict) -> str:
    return _plus_minus(run["test_accuracy"], run["ci95"])


def _plus_minus(accuracy: float, ci95: float) -> str:
    """``"89.20 ± 0.60"`` from fractions."""
    return f"{100 * accuracy:.2f} ± {100 * ci95:.2f}"


def _trained_as(run: dict) -> str:
    """`` (trained 5-way 1-shot)`` for a run tested in another setting than it was trained in."""
    trained = run.get("trained_as")
    return "" if trained is None else f" (trained {trained['ways']}-way {trained['shots']}-shot)"


def _origin(run: dict) -> str:
    """`` (from pretrained blocks)`` for a run started from a reference classifier's blocks,
    `` (pretrained blocks, no meta-training)`` if it kept that start; ``""`` otherwise."""
    if not run["settings"].get("init_from"):
        return ""
    if run["best_iteration"] == 0:
        return " (pretrained blocks, no meta-training)"
    return " (from pretrained blocks)"


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}"


if __name__ == "__main__":
    main()
