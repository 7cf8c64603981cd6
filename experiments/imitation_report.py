"""Tables of the imitation runs: ``experiments/results/imitation.md`` from the run folders.

Reads ``<root>/<distribution>/<learner>-seed<seed>/results.json`` (written by
``experiments/mil.py``) and writes one table per distribution: the expert on the held-out
tasks, the MIL learners after one and after the most adaptation steps evaluated, and the
behaviour-cloning baselines, each as mean return ± standard error over the held-out tasks
with its success rate and whether it saw the held-out demonstration's actions, and the bar
verdicts (MIL within 15% of the expert's return and above both cloning baselines;
domain-adaptive meta-learning above its own policy before adapting and above the
inverse-dynamics baseline). Where episodes end on success (Meta-World run with
``terminate_on_success``, whose returns grow with the steps a failing policy survives) the
verdicts compare success rates instead of returns. A meta-RL run
(``experiments/maml_rl.py``, its folder named ``metarl-<learner>-seed<seed>``) is listed
beside them, adapted on episodes of its own instead of a demonstration; so is each run
folder named with ``--meta-rl`` (the MuJoCo table's runs), beside the runs of its
environment id. A hand-written notes file may be appended.

    python experiments/imitation_report.py --notes experiments/results/imitation/README.md \
        --meta-rl experiments/results/mujoco/halfcheetah_vel/maml-trpo-xavier-seed0
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from metarl.utils.cli import parse_settings

NAMES = {
    "maml": "MIL (MAML)", "fomaml": "MIL (FOMAML)", "metasgd": "MIL (Meta-SGD)",
    "reptile": "MIL (Reptile)", "multitask": "multi-task cloning, fine-tuned",
    "scratch": "cloning from scratch on the demonstration",
    "daml": "domain-adaptive meta-learning", "invdyn": "inverse-dynamics labels, then cloning",
    "invdyn-multitask": "inverse-dynamics labels, multi-task cloning fine-tuned",
    "metarl": "meta-RL MAML-TRPO (no demonstration)",
}  # fmt: skip
BASELINES = ("multitask", "scratch")  # MIL's
OBSERVATION_BASELINES = ("invdyn", "invdyn-multitask")  # domain-adaptive learning's
CLONED_ONCE = ("scratch", "invdyn")  # one row: a fresh policy cloned on the demonstration
BAR = 0.15  # MIL within 15% of the expert's return


@dataclass
class Settings:
    """Imitation results tables from the run folders."""

    root: str = "experiments/results/imitation"  # holds <distribution>/<learner>-seed<seed>/
    out: str = "experiments/results/imitation.md"  # the Markdown file to write
    notes: str | None = None  # a hand-written Markdown file appended at the end
    meta_rl: tuple[str, ...] = ()
    """``maml_rl.py`` run folders kept elsewhere (the MuJoCo table's), each listed beside the
    imitation runs of its environment id (an error where there are none)"""


def cell(score: dict) -> str:
    success = "-" if score.get("success") is None else f"{score['success']:.0%}"
    return f"{score['mean']:.2f} ± {score['stderr']:.2f} ({success})"


def from_meta_rl(path: Path) -> dict:
    """A ``maml_rl.py`` run's ``eval.json`` as a row: adapted on 20 episodes of its own per
    step (rewards, no demonstration) on held-out tasks of the same distribution."""
    r = json.loads(path.read_text())
    n = r["n_tasks"]
    after = {
        str(k): {"mean": m, "stderr": s / math.sqrt(n), "success": None}
        for k, m, s in zip(r["inner_steps"], r["mean_return"], r["std_return"])
    }
    episodes = r["settings"]["episodes_per_task"] * r["settings"]["horizon"]
    return {
        **{k: r[k] for k in ("env", "seed", "command", "machine", "date", "train_wall_s")},
        "learner": "metarl", "n_tasks": n, "return_after_steps": after,
        "settings": r["settings"], "test_demonstration": f"none ({episodes} env steps per step)",
    }  # fmt: skip


def after(result: dict, steps: str) -> dict:
    return result["return_after_steps"][steps]


def measure_of(results: list[dict]) -> str:
    """What the verdicts compare: ``"success"`` where episodes end on success, else the
    mean return (``"mean"``)."""
    ends_on_success = any(r.get("env_kwargs", {}).get("terminate_on_success") for r in results)
    return "success" if ends_on_success else "mean"


def shown(value: float, measure: str) -> str:
    return f"{value:.0%}" if measure == "success" else f"{value:.2f}"


def title(result: dict) -> str:
    """The distribution's id, with the environment an ``env_name`` keyword picks and the
    range of the hand's start (``hand_init_range``) where one is set."""
    kwargs = result.get("env_kwargs", {})
    words = [kwargs["env_name"]] if "env_name" in kwargs else []
    if kwargs.get("hand_init_range"):
        words.append(f"hand start ±{kwargs['hand_init_range']} m")
    return f"{result['env']} ({', '.join(words)})" if words else result["env"]


def distribution_section(name: str, results: list[dict]) -> list[str]:
    """The Markdown of one distribution's runs."""
    order = list(NAMES)
    results.sort(key=lambda r: (order.index(r["learner"]), r["seed"]))
    expert = next(r["expert"] for r in results if "expert" in r)
    measure = measure_of(results)
    compared = "success rates" if measure == "success" else "returns"
    lines = [
        f"## {name}",
        "",
        f"Mean return ± standard error over {results[0]['n_tasks']} held-out tasks (success "
        "rate in brackets), every row rolled out from the same start states, with the "
        "policy's most likely actions; adapted on one demonstration of each task. The "
        f"verdicts compare {compared}.",
        "",
        "| learner | seed | demonstration | before adapting | after 1 step | "
        "after the most steps | meta-training | train wall |",
        "|---|---|---|---|---|---|---|---|",
        f"| expert | | | {cell(expert)} | | | | |",
    ]
    for r in results:
        steps = list(r["return_after_steps"])
        one = "" if r["learner"] in CLONED_ONCE else cell(after(r, "1"))
        most = f"{cell(after(r, steps[-1]))} ({steps[-1]} steps)"
        iterations = r["settings"]["iterations"] if r["learner"] not in CLONED_ONCE else 0
        demo = r.get("test_demonstration", "full")
        demo = "with actions" if demo == "full" else demo
        lines.append(
            f"| {NAMES[r['learner']]} | {r['seed']} | {demo} | {cell(after(r, '0'))} | {one} "
            f"| {most} | {iterations} iterations | {r['train_wall_s'] / 60:.1f} min |"
        )
    lines += ["", *verdicts(results, expert, measure), "", "Commands (machine, date):", ""]
    lines += [f"- `{r['command']}` ({r['machine']}, {r['date']})" for r in results]
    return [*lines, ""]


def baseline_score(result: dict, measure: str = "mean") -> float:
    """A baseline's score: the multi-task policy after one step on the demonstration (as
    MIL), a policy cloned from scratch (on the demonstration's actions or on inferred ones)
    after all its cloning steps."""
    one_step = result["learner"] in ("multitask", "invdyn-multitask")
    steps = "1" if one_step else list(result["return_after_steps"])[-1]
    return after(result, steps)[measure]


def verdicts(results: list[dict], expert: dict, measure: str = "mean") -> list[str]:
    """Whether each MIL learner, and domain-adaptive meta-learning, meets its bars after
    one step, judged by ``measure`` (``"mean"`` return or ``"success"`` rate)."""
    limit = expert[measure] - BAR * abs(expert[measure])
    baseline_best = max(
        (baseline_score(r, measure) for r in results if r["learner"] in BASELINES), default=None
    )
    invdyn = [baseline_score(r, measure) for r in results if r["learner"] in OBSERVATION_BASELINES]
    lines = []
    for r in results:
        if r["learner"] == "daml":
            ours, before = after(r, "1")[measure], after(r, "0")[measure]
            word = "above" if ours > before else "**not above**"
            if invdyn:
                beats = "above" if ours > max(invdyn) else "**not above**"
                versus = (
                    f"{beats} the best inverse-dynamics baseline ({shown(max(invdyn), measure)})"
                )
            else:
                versus = "no inverse-dynamics baseline run yet"
            lines.append(
                f"- {NAMES['daml']}, seed {r['seed']}: {shown(ours, measure)} after one step "
                f"on the observation-only demonstration; {word} its policy before adapting "
                f"({shown(before, measure)}); {versus}."
            )
        if r["learner"] in (*BASELINES, *OBSERVATION_BASELINES, "daml", "metarl"):
            continue
        ours = after(r, "1")[measure]
        near = "met" if ours >= limit else "**not met**"
        if baseline_best is None:
            above = "no cloning baseline run yet"
        else:
            word = "above" if ours > baseline_best else "**not above**"
            above = f"{word} the best cloning baseline ({shown(baseline_best, measure)})"
        lines.append(
            f"- {NAMES[r['learner']]}, seed {r['seed']}: {shown(ours, measure)} after one "
            f"step; within 15% of the expert (>= {shown(limit, measure)}): {near}; {above}."
        )
    return lines


def main(argv: list[str] | None = None) -> Path:
    s = parse_settings(Settings, argv)
    root = Path(s.root)
    by_distribution: dict[str, list[dict]] = {}
    for path in sorted(root.glob("*/*-seed*/results.json")):
        by_distribution.setdefault(path.parent.parent.name, []).append(json.loads(path.read_text()))
    for path in sorted(root.glob("*/metarl-*-seed*/eval.json")):
        by_distribution.setdefault(path.parent.parent.name, []).append(from_meta_rl(path))
    for folder in s.meta_rl:
        path = Path(folder) / "eval.json"
        if not path.is_file():
            raise SystemExit(f"--meta-rl {folder}: no eval.json of a maml_rl.py run there")
        row = from_meta_rl(path)
        same_env = [k for k, results in by_distribution.items() if results[0]["env"] == row["env"]]
        if not same_env:
            raise SystemExit(f"--meta-rl {folder}: no imitation run of {row['env']} to join")
        by_distribution[same_env[0]].append(row)
    lines = ["# Meta-imitation: return after adapting on one demonstration", ""]
    for results in by_distribution.values():
        lines += distribution_section(title(results[0]), results)
    if s.notes:
        lines += [Path(s.notes).read_text()]
    out = Path(s.out)
    out.write_text("\n".join(lines))
    print(f"wrote {out} ({sum(map(len, by_distribution.values()))} runs)")
    return out


if __name__ == "__main__":
    main()
