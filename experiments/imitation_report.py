"""Tables of the imitation runs: ``experiments/results/imitation.md`` from the run folders.

Reads ``<root>/<distribution>/<learner>-seed<seed>/results.json`` (written by
``experiments/mil.py``) and writes one table per distribution: the expert on the held-out
tasks, the MIL learners after one and after the most adaptation steps evaluated, and the
behaviour-cloning baselines, each as mean return ± standard error over the held-out tasks
with its success rate, and the bar verdicts (MIL within 15% of the expert's return, and
above both cloning baselines). A hand-written notes file may be appended.

    python experiments/imitation_report.py --notes experiments/results/imitation/README.md
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from metarl.utils.cli import parse_settings

NAMES = {
    "maml": "MIL (MAML)", "fomaml": "MIL (FOMAML)", "metasgd": "MIL (Meta-SGD)",
    "reptile": "MIL (Reptile)", "multitask": "multi-task cloning, fine-tuned",
    "scratch": "cloning from scratch on the demonstration",
}  # fmt: skip
BASELINES = ("multitask", "scratch")
BAR = 0.15  # MIL within 15% of the expert's return


@dataclass
class Settings:
    """Imitation results tables from the run folders."""

    root: str = "experiments/results/imitation"  # holds <distribution>/<learner>-seed<seed>/
    out: str = "experiments/results/imitation.md"  # the Markdown file to write
    notes: str | None = None  # a hand-written Markdown file appended at the end


def cell(score: dict) -> str:
    return f"{score['mean']:.2f} ± {score['stderr']:.2f} ({score['success']:.0%})"


def after(result: dict, steps: str) -> dict:
    return result["return_after_steps"][steps]


def distribution_section(name: str, results: list[dict]) -> list[str]:
    """The Markdown of one distribution's runs."""
    order = list(NAMES)
    results.sort(key=lambda r: (order.index(r["learner"]), r["seed"]))
    expert = results[0]["expert"]
    lines = [
        f"## {name}",
        "",
        f"Mean return ± standard error over {results[0]['n_tasks']} held-out tasks (success "
        "rate in brackets), every row rolled out from the same start states, with the "
        "policy's most likely actions; adapted on one demonstration of each task.",
        "",
        "| learner | seed | before adapting | after 1 step | after the most steps | "
        "meta-training | train wall |",
        "|---|---|---|---|---|---|---|",
        f"| expert | | {cell(expert)} | | | | |",
    ]
    for r in results:
        steps = list(r["return_after_steps"])
        one = "" if r["learner"] == "scratch" else cell(after(r, "1"))
        most = f"{cell(after(r, steps[-1]))} ({steps[-1]} steps)"
        iterations = r["settings"]["iterations"] if r["learner"] != "scratch" else 0
        lines.append(
            f"| {NAMES[r['learner']]} | {r['seed']} | {cell(after(r, '0'))} | {one} | {most} "
            f"| {iterations} iterations | {r['train_wall_s'] / 60:.1f} min |"
        )
    lines += ["", *verdicts(results, expert), "", "Commands (machine, date):", ""]
    lines += [f"- `{r['command']}` ({r['machine']}, {r['date']})" for r in results]
    return [*lines, ""]


def baseline_return(result: dict) -> float:
    """A baseline's score: the multi-task policy after one step on the demonstration (as
    MIL), the policy cloned from scratch after all its cloning steps."""
    steps = "1" if result["learner"] == "multitask" else list(result["return_after_steps"])[-1]
    return after(result, steps)["mean"]


def verdicts(results: list[dict], expert: dict) -> list[str]:
    """Whether each MIL learner meets the bars after one step."""
    limit = expert["mean"] - BAR * abs(expert["mean"])
    baseline_best = max(
        (baseline_return(r) for r in results if r["learner"] in BASELINES), default=None
    )
    lines = []
    for r in results:
        if r["learner"] in BASELINES:
            continue
        ours = after(r, "1")["mean"]
        near = "met" if ours >= limit else "**not met**"
        if baseline_best is None:
            above = "no cloning baseline run yet"
        else:
            word = "above" if ours > baseline_best else "**not above**"
            above = f"{word} the best cloning baseline ({baseline_best:.2f})"
        lines.append(
            f"- {NAMES[r['learner']]}, seed {r['seed']}: {ours:.2f} after one step; within "
            f"15% of the expert (>= {limit:.2f}): {near}; {above}."
        )
    return lines


def main(argv: list[str] | None = None) -> Path:
    s = parse_settings(Settings, argv)
    root = Path(s.root)
    by_distribution: dict[str, list[dict]] = {}
    for path in sorted(root.glob("*/*-seed*/results.json")):
        by_distribution.setdefault(path.parent.parent.name, []).append(json.loads(path.read_text()))
    lines = ["# Meta-imitation: return after adapting on one demonstration", ""]
    for results in by_distribution.values():
        lines += distribution_section(results[0]["env"], results)
    if s.notes:
        lines += [Path(s.notes).read_text()]
    out = Path(s.out)
    out.write_text("\n".join(lines))
    print(f"wrote {out} ({sum(map(len, by_distribution.values()))} runs)")
    return out


if __name__ == "__main__":
    main()
