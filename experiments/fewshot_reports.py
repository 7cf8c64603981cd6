"""The spoken-words and zero-shot results tables, from their run folders.

    python experiments/fewshot_reports.py

``experiments/results/spoken_words.md``: every ``metric_fewshot.py --dataset spoken_words``
run under ``--spoken-words`` (its N-way K-shot test grid on the held-out words, 95%
intervals), the nearest-neighbour reference among them. ``experiments/results/zero_shot.md``:
every ``zero_shot.py`` run under ``--zero-shot`` (accuracy on the unseen attribute
combinations, chance beside it, and on held-back images of the seen ones). Each folder's
``README.md``, if there is one, is appended as notes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from metarl.utils.cli import parse_settings
from metarl.utils.run import collect_results, readme_notes

NAMES = {
    "protonet": "ProtoNet", "siamese": "Siamese network",
    "nearest-neighbour": "nearest neighbour on the log-mel features (no training)",
    "relation": "relation network", "attributes": "direct attribute prediction (reference)",
}  # fmt: skip


@dataclass
class Settings:
    """Write the spoken-words and zero-shot tables."""

    spoken_words: str = "experiments/results/spoken_words"  # metric_fewshot.py runs
    zero_shot: str = "experiments/results/zero_shot"  # zero_shot.py runs
    out: str = "experiments/results"  # where spoken_words.md and zero_shot.md go


def spoken_words_lines(folder: Path) -> list[str]:
    """The spoken-words table."""
    runs = collect_results(folder)
    cells = sorted({c for r in runs for c in r["test"]}, key=lambda c: (int(c.split("w")[0]), c))
    lines = [
        "# Spoken words: few-shot recognition of held-out words",
        "",
        "Accuracy (%) on the 15 test words (20 synthetic speakers each; log-mel features), "
        "mean over test episodes with the half-width of its 95% interval. Synthetic speech "
        "is cleaner and more regular than recorded speech.",
        "",
        "| learner | run | " + " | ".join(cells) + " | command |",
        "|---|---|" + "---|" * len(cells) + "---|",
    ]
    for r in runs:
        values = [f"{100 * r['test'][c]['accuracy']:.2f} ± {100 * r['test'][c]['ci95']:.2f}"
                  if c in r["test"] else "-" for c in cells]  # fmt: skip
        lines.append(f"| {NAMES.get(r['learner'], r['learner'])} | `{r['run']}` | "
                     + " | ".join(values) + f" | `{r['command']}` |")  # fmt: skip
    return lines + readme_notes(folder)


def zero_shot_lines(folder: Path) -> list[str]:
    """The zero-shot table."""
    lines = [
        "# Zero-shot recognition of unseen attribute combinations",
        "",
        "Accuracy (%) with 95% intervals over images: on the unseen combinations, each image "
        "classified among the unseen classes from their attribute vectors alone; on held-back "
        "images of the seen classes, among the seen ones.",
        "",
        "| learner | run | pixel noise | unseen classes | chance | seen classes | command |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in collect_results(folder):
        noise = r["settings"].get("noise", 0.0)
        lines.append(
            f"| {NAMES.get(r['learner'], r['learner'])} | `{r['run']}` | {noise:g} | "
            f"{100 * r['unseen_accuracy']:.1f} ± {100 * r['unseen_ci95']:.1f} | "
            f"{100 * r['chance']:.1f} | {100 * r['seen_accuracy']:.1f} ± "
            f"{100 * r['seen_ci95']:.1f} | `{r['command']}` |"
        )
    return lines + readme_notes(folder)


def main(argv: list[str] | None = None) -> list[Path]:
    s = parse_settings(Settings, argv)
    written = []
    for name, build, folder in (("spoken_words.md", spoken_words_lines, s.spoken_words),
                                ("zero_shot.md", zero_shot_lines, s.zero_shot)):  # fmt: skip
        if Path(folder).is_dir():
            path = Path(s.out) / name
            path.write_text("\n".join(build(Path(folder))) + "\n")
            written.append(path)
            print(f"wrote {path}")
    return written


if __name__ == "__main__":
    main()
