"""The learned-optimiser and memory-network results tables, from their run folders.

    python experiments/learning_to_learn_reports.py

``experiments/results/learned_optimizer.md``: every ``learned_optimizer.py`` run under
``--learned-optimizer`` (final and mean loss of the LSTM optimiser and the tuned
hand-designed ones on held-out problems, per test setting, with the loss-curve PNGs).
``experiments/results/memory.md``: every ``ntm_copy.py`` run under ``--memory`` (copy cost and
wrong bits per test length) and every ``mann_omniglot.py`` run there (accuracy per
instance). ``experiments/results/cactus.md``: every ``cactus.py`` run under ``--cactus``
(test accuracy per cell beside the published CACTUs figures). Each folder's ``README.md``,
if there is one, is appended as notes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from metarl.utils.cli import parse_settings
from metarl.utils.run import collect_results, readme_notes

OPTIMIZERS = {"lstm": "LSTM optimiser (learned)", "sgd": "SGD", "nag": "Nesterov momentum",
              "rmsprop": "RMSprop", "adam": "Adam"}  # fmt: skip
PAPER_SETTINGS = {
    "quadratic": "10-dimensional quadratics (the paper's Figure 2, left)",
    "mlp": "the training architecture (one hidden layer, 20 sigmoid units)",
    "mlp-40-units": "40 hidden units (the paper: the LSTM still wins)",
    "mlp-2-layers": "two hidden layers (the paper: the LSTM still wins)",
    "mlp-relu": "ReLU units (the paper: the LSTM fails)",
}


INSTANCES = (1, 2, 3, 4, 5, 10)
SUFFIX = {1: "st", 2: "nd", 3: "rd", 4: "th", 5: "th", 10: "th"}
MANN_PUBLISHED = {  # Santoro et al. 2016, Table 1 (Omniglot, 5 classes, one-hot labels)
    "MANN": (36.4, 82.8, 91.0, 92.6, 94.9, 98.1),
    "LSTM": (24.4, 49.5, 55.3, 61.0, 63.6, 62.5),
}


CACTUS_PUBLISHED = {  # Hsu et al. 2019, Omniglot, ACAI embeddings: 5w1s, 5w5s, 20w1s, 20w5s
    "maml": (68.84, 87.78, 48.09, 73.36),
    "protonet": (68.12, 83.58, 47.75, 66.27),
}
CACTUS_CELLS = ("5w1s", "5w5s", "20w1s", "20w5s")


@dataclass
class Settings:
    """Write the learned-optimiser, memory and CACTUs tables."""

    learned_optimizer: str = "experiments/results/learned_optimizer"  # learned_optimizer.py runs
    memory: str = "experiments/results/memory"  # ntm_copy.py and mann_omniglot.py runs
    cactus: str = "experiments/results/cactus"  # cactus.py runs
    out: str = "experiments/results"  # where learned_optimizer.md, memory.md, cactus.md go


def _provenance(run: dict) -> str:
    return (f"`{run['command']}` (seed {run['seed']}; {run['train_wall_s'] / 60:.0f} min of "
            f"training on {run['machine']}; {run['date'][:10]})")  # fmt: skip


def learned_optimizer_lines(folder: Path, out: Path) -> list[str]:
    """The learned-optimiser tables, one per run and test setting."""
    lines = [
        "# Learning to learn by gradient descent by gradient descent",
        "",
        "The coordinate-wise LSTM optimiser (`metarl.core.learned_optimizer`, Andrychowicz et "
        "al. 2016) against SGD, Nesterov momentum, RMSprop and Adam, each at the learning rate "
        "(from the run's grid) with the lowest mean loss on validation problems of the same "
        "setting. Loss after the last step and mean loss over the trajectory, mean over the "
        "held-out problems with its standard error. The paper reports curves, not numbers: "
        "its claims are given beside each setting.",
    ]
    for run in collect_results(folder, link_from=out):
        lines += ["", f"## {run['problem']} (`{run['run']}`)", "",
                  f"{run['test_problems']} held-out problems, {run['horizon']} steps; LSTM "
                  f"chosen at meta-iteration {run['chosen_iteration']} by validation loss. "
                  f"Command: {_provenance(run)}.",
                  "", f"![meta-training]({run['link']}/meta_training.png)"]  # fmt: skip
        for setting, r in run["settings"].items():
            lines += ["", f"### {setting}: {PAPER_SETTINGS.get(setting, setting)}", "",
                      "| optimiser | learning rate | final loss | mean loss over the steps |",
                      "|---|---|---|---|"]  # fmt: skip
            best = min(r["final_loss"], key=r["final_loss"].get)
            for name, final in r["final_loss"].items():
                cell = f"{final:.4g} ± {r['final_stderr'][name]:.2g}"
                cell = f"**{cell}**" if name == best else cell
                lr = r["tuned_lr"].get(name, "learned")
                lines.append(f"| {OPTIMIZERS.get(name, name)} | {lr} | {cell} | "
                             f"{r['mean_loss'][name]:.4g} |")  # fmt: skip
            if r.get("tuned_at_grid_edge"):
                lines += [
                    "",
                    f"Tuned at the end of the grid: {', '.join(r['tuned_at_grid_edge'])}.",
                ]
            lines += ["", f"![{setting}]({run['link']}/curves-{setting}.png)"]
    return lines + readme_notes(folder)


def memory_lines(folder: Path, out: Path) -> list[str]:
    """The copy-task table (cost and wrong bits per test length) and the delayed-label
    Omniglot table (accuracy per instance), one row per run."""
    return copy_lines(folder, out) + mann_lines(folder, out) + readme_notes(folder)


def mann_lines(folder: Path, out: Path) -> list[str]:
    """Accuracy on the k-th drawing of a character, per run (every ``results*.json``, so a
    run's earlier evaluations kept beside its last show too), beside the published rows."""
    found = [
        r for r in collect_results(folder, "*/results*.json", link_from=out) if "episodes_seen" in r
    ]
    runs = list({(r["run"], r["episodes_seen"]): r for r in found}.values())  # one per stage
    lines = [
        "", "## One-shot learning with delayed labels (Santoro et al. 2016)", "",
        "Accuracy (%) on the 1st, 2nd, 3rd, 4th, 5th and 10th drawing of a character in "
        "episodes of 5 held-out characters with 10 drawings each, labels shuffled per episode "
        "and given one step late, over the run's test episodes.", "",
        "| model | episodes seen | " + " | ".join(f"{k}{SUFFIX[k]}" for k in INSTANCES)
        + " | run |",
        "|---|---|" + "---|" * len(INSTANCES) + "---|",
    ]  # fmt: skip
    for name, row in MANN_PUBLISHED.items():
        lines.append(
            f"| {name} (published) | 100,000 | " + " | ".join(f"{v}" for v in row) + " | |"
        )
    for run in sorted(runs, key=lambda r: (r["model"], r["episodes_seen"])):
        cells = " | ".join(f"{100 * run['test'][f'instance_{k}']:.1f}" for k in INSTANCES)
        lines.append(f"| {run['model'].upper()} | {run['episodes_seen']:,} | {cells} | "
                     f"`{run['run']}` |")  # fmt: skip
    lines.append("")
    for run in {r["run"]: r for r in runs}.values():
        lines.append(f"- `{run['run']}`: {_provenance(run)}; validation curve "
                     f"[{run['link']}/accuracy.png]({run['link']}/accuracy.png)")  # fmt: skip
    return lines


def copy_lines(folder: Path, out: Path) -> list[str]:
    """The copy-task table."""
    runs = [r for r in collect_results(folder, link_from=out) if "sequences_seen" in r]
    lengths = sorted({int(n) for r in runs for n in r["test"]})
    lines = [
        "# Memory-augmented networks",
        "",
        "## Copy task (Graves et al. 2014)",
        "",
        "Cost in bits per sequence (cross-entropy of the answer, summed over its bits) and "
        "the share of wrong bits (thresholded at 1/2), on 100 held-out sequences per length, "
        "after training on lengths 1-20. Graves et al. report the NTM's cost near 0 bits at "
        "length 20 and good copies up to length 120, where the LSTM fails.",
        "",
        "| model | sequences seen | " + " | ".join(f"length {n}" for n in lengths) + " |",
        "|---|---|" + "---|" * len(lengths),
    ]
    for run in runs:
        name = "NTM, " + run["controller"] + " controller" if run["model"] == "ntm" else "LSTM"
        cells = []
        for n in lengths:
            r = run["test"].get(str(n))
            cells.append(f"{r['bits_per_sequence']:.3g} bits, {r['wrong_bits_percent']:.2g}% "
                         "wrong" if r else "")  # fmt: skip
        lines.append(f"| {name} (`{run['run']}`) | {run['sequences_seen']:,} | "
                     + " | ".join(cells) + " |")  # fmt: skip
    lines.append("")
    for run in runs:
        copies = ", ".join(f"[length {n}]({run['link']}/copy-{n}.png)" for n in lengths)
        lines += [f"- `{run['run']}`: {_provenance(run)}; cost curve "
                  f"[{run['link']}/cost.png]({run['link']}/cost.png), copies {copies}"]  # fmt: skip
    return lines


def cactus_lines(folder: Path, out: Path) -> list[str]:
    """The CACTUs table: accuracy per cell of every run, beside the published figures."""
    lines = [
        "# Unsupervised meta-learning: CACTUs on full Omniglot",
        "",
        "Accuracy (%) on labelled test episodes of the 423 test characters, with the "
        "half-width of the 95% interval. CACTUs rows never saw a label in meta-training; "
        "oracle rows are the same learner and episodes with the true labels. The published "
        "rows use ACAI embeddings (Hsu et al. 2019); ours a plain convolutional autoencoder.",
        "",
        "| learner | run | " + " | ".join(CACTUS_CELLS) + " |",
        "|---|---|" + "---|" * len(CACTUS_CELLS),
    ]
    for name, row in CACTUS_PUBLISHED.items():
        lines.append(f"| CACTUs-{name} (published) | | " + " | ".join(map(str, row)) + " |")
    runs = collect_results(folder, link_from=out)
    for run in runs:
        kind = f"{run['learner']} oracle" if run["oracle"] else f"CACTUs-{run['learner']}"
        cells = []
        for cell in CACTUS_CELLS:
            r = run["test"].get(cell)
            cells.append(f"{100 * r['accuracy']:.2f} ± {100 * r['ci95']:.2f}" if r else "")
        lines.append(f"| {kind} (trained {run['trained_ways']}-way {run['trained_shots']}-shot) "
                     f"| `{run['run']}` | " + " | ".join(cells) + " |")  # fmt: skip
    lines.append("")
    for run in runs:
        curve = f"{run['link']}/learning_curve.png"
        lines.append(f"- `{run['run']}`: {_provenance(run)}; validation curve [{curve}]({curve})")
    return lines + readme_notes(folder)


def main(argv: list[str] | None = None) -> None:
    s = parse_settings(Settings, argv)
    out = Path(s.out)
    reports = (("learned_optimizer.md", s.learned_optimizer, learned_optimizer_lines),
               ("memory.md", s.memory, memory_lines),
               ("cactus.md", s.cactus, cactus_lines))  # fmt: skip
    for name, folder, make in reports:
        if Path(folder).is_dir():
            (out / name).write_text("\n".join(make(Path(folder), out)) + "\n")
            print(f"wrote {out / name}")


if __name__ == "__main__":
    main()
