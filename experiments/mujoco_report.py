"""The MuJoCo results (MAML paper, section 5.3): one table, CSV and learning-curve figure per
task distribution, from ``maml_rl.py`` runs' ``eval.json`` and ``metrics.csv`` files.

    python experiments/mujoco_report.py [--root experiments/results/mujoco]
        [--out experiments/results/mujoco.md] [--notes experiments/results/mujoco_notes.md]

Runs live in ``<root>/<distribution>/<learner>[-<variant>]-seed<seed>/`` with
``<distribution>`` one of ``halfcheetah_vel``, ``halfcheetah_dir``, ``ant_vel``,
``ant_dir``; a missing distribution is listed as not yet run. Returns are means over
held-out tasks of each task's mean episode return, ± the standard error over tasks. A run
evaluated with later steps scaled (chosen on validation tasks) gets a second row, and so
does one whose best snapshot was chosen on validation tasks (``maml_rl.py
--select-snapshot``); the bar then judges that snapshot, as the paper's figure is a chosen
snapshot's. Runs of one learner whose settings differ (say ``--init``) are told apart in
their labels by the differing settings, and each such MAML-TRPO run of seed 0 is judged
against the bar. Writes ``<root>/<distribution>.csv`` (learner, inner_steps, mean_return,
stderr_return, n_tasks, seed, env_steps), ``<root>/<distribution>.png`` (return before and
after adaptation during training), ``<root>/<distribution>_tasks.png`` (each seed-0 run's
return per held-out task against the task's parameter, for runs whose eval.json has per-task
returns) and the Markdown file, with ``--notes`` appended.

Published figures: mean return over test tasks after 0 / 1 / 2 / 3 steps, from the authors'
released result files of Finn, Abbeel and Levine, "Model-Agnostic Meta-Learning" (ICML 2017);
the pretrained HalfCheetahVel figure (about -158) is read off the paper's plot.
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from maml_rl import BEFORE_ADDED, EVALUATION, RESUME_IGNORES
from matplotlib.figure import Figure

from metarl.utils.cli import parse_settings

DISTRIBUTIONS = {
    "halfcheetah_vel": "HalfCheetahVel",
    "halfcheetah_dir": "HalfCheetahDir",
    "ant_vel": "AntVel",
    "ant_dir": "AntDir",
}
PUBLISHED = {
    "halfcheetah_vel": {
        "maml-trpo": [-129.5, -78.6, -66.6, -60.8],
        "pretrained": [-158.0],
        "oracle": [-54.5],
    },
    "halfcheetah_dir": {"maml-trpo": [-50.7, 293.2, 313.5, 315.7], "oracle": [442.7]},
    "ant_vel": {"maml-trpo": [30.6, 96.7, 100.1, 101.4], "oracle": [107.9]},
    "ant_dir": {"maml-trpo": [8.7, 499.2, 500.7, 499.1], "oracle": [524.8]},
}
NAMES = {
    "maml-trpo": "MAML-TRPO", "fomaml-trpo": "FOMAML-TRPO", "metasgd-trpo": "Meta-SGD-TRPO",
    "maml-pg": "MAML (vanilla PG)", "reptile": "Reptile", "pretrained": "pretrained",
    "oracle": "oracle", "random": "random init",
}  # fmt: skip
BAR = 0.10  # MAML after one step within 10% of the published figure (or better)
# Settings that do not tell one run of a learner from another: those a resumed run may change
# except the evaluation's (where it ran, how fast, how long: a column of its own), how it was
# checkpointed, whether a snapshot was also chosen (a row of its own) and its seed (a column).
NOT_VARIANTS = (set(RESUME_IGNORES) - set(EVALUATION)) | {
    "checkpoint_every", "select_snapshot", "seed",
}  # fmt: skip


@dataclass
class Settings:
    """Tables, CSVs and learning curves of the MuJoCo runs."""

    root: str = "experiments/results/mujoco"  # holds <distribution>/<run folder>/
    out: str = "experiments/results/mujoco.md"  # the Markdown file to write
    notes: str | None = None  # a hand-written Markdown file appended at the end


@dataclass
class Run:
    """One evaluated run: its eval.json, its training's iterations and env steps up to the
    evaluated iteration, and its whole training curve."""

    folder: Path
    result: dict
    env_steps: int
    iterations: int
    curve: np.ndarray  # [iterations, 3]: cumulative env steps, return before, return after
    variant: str = ""  # the settings that tell it from other runs of its learner, as flags

    @property
    def learner(self) -> str:
        return self.result["learner"]

    @property
    def label(self) -> str:
        name = NAMES.get(self.learner, self.learner)
        return f"{name} ({self.variant})" if self.variant else name

    def training_settings(self) -> dict:
        """The run's settings as they acted: a setting its record predates holds the value
        runs had before it existed, and test episodes per task default to training's."""
        settings = {**BEFORE_ADDED, **self.result.get("settings", {})}
        if settings.get("eval_episodes_per_task") is None:
            settings["eval_episodes_per_task"] = settings.get("episodes_per_task")
        return {k: v for k, v in settings.items() if k not in NOT_VARIANTS}


def read_run(folder: Path) -> Run:
    """The run in ``folder``; a missing or unreadable file is named in the error."""
    path = folder / "eval.json"
    try:
        result = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise SystemExit(f"{path}: cannot read the run's evaluation ({err})") from err
    curve = np.zeros((0, 3))
    metrics = folder / "metrics.csv"
    if metrics.is_file():
        with metrics.open(newline="") as f:
            rows = [
                (float(r["env_steps"]), float(r["return_before"]), float(r["return_after"]))
                for r in csv.DictReader(f)
            ]
        if rows:
            curve = np.array(rows)
            curve[:, 0] = np.cumsum(curve[:, 0])
    # A run trained on after its evaluation (a resumed extension) is reported at the
    # iteration it was evaluated at; the curve keeps every iteration.
    evaluated = int(result.get("settings", {}).get("iterations", len(curve)))
    iterations = min(evaluated, len(curve))
    env_steps = int(curve[iterations - 1, 0]) if iterations else 0
    return Run(folder, result, env_steps, iterations, curve)


def name_variants(runs: list[Run]) -> None:
    """Give runs of one learner that differ in a training or evaluation setting (not only in
    seed) a ``variant``: the differing settings as command-line flags, e.g. ``--init xavier``."""
    by_learner: dict[str, list[Run]] = {}
    for run in runs:
        by_learner.setdefault(run.learner, []).append(run)
    for group in by_learner.values():
        settings = [run.training_settings() for run in group]
        keys = sorted({k for s in settings for k in s})
        differing = [k for k in keys if len({json.dumps(s.get(k)) for s in settings}) > 1]
        for run, s in zip(group, settings):
            run.variant = " ".join(f"--{k.replace('_', '-')} {s.get(k)}" for k in differing)


def table_rows(run: Run) -> list[tuple[str, list[float], list[float]]]:
    """(label, means, standard errors) of the run's row, and of its later-scaled row. The
    oracle sees the task and is scored without adapting, as in the paper: its row has the
    0-step column only."""
    n = math.sqrt(run.result["n_tasks"])
    means, stds = run.result["mean_return"], run.result["std_return"]
    if run.learner == "oracle":
        return [(f"{run.label} (not adapted)", means[:1], [stds[0] / n])]
    rows = [(run.label, means, [s / n for s in stds])]
    if "selected_iteration" in run.result:
        stderr = [s / n for s in run.result["std_return_selected"]]
        label = f"{run.label} [iteration {run.result['selected_iteration']}, chosen on validation]"
        rows.append((label, run.result["mean_return_selected"], stderr))
    scale = run.result.get("later_step_scale", 1.0)
    if scale != 1.0:
        stderr = [s / n for s in run.result["std_return_later_scaled"]]
        rows.append(
            (f"{run.label} [steps 2+ x{scale}]", run.result["mean_return_later_scaled"], stderr)
        )
    return rows


def bar_lines(key: str, runs: list[Run]) -> list[str]:
    """Whether each MAML-TRPO run of seed 0 after one step is within ``BAR`` of the published
    figure."""
    maml = [r for r in runs if r.learner == "maml-trpo" and r.result["seed"] == 0]
    maml = [r for r in maml if len(r.result["mean_return"]) >= 2]
    if not maml:
        return ["Bar (MAML-TRPO after one step within 10% of the published figure): not run yet."]
    return [bar_line(PUBLISHED[key]["maml-trpo"][1], run) for run in maml]


def bar_line(published: float, run: Run) -> str:
    """Whether ``run`` after one step is within ``BAR`` of the ``published`` figure."""
    result = run.result
    ours = result["mean_return"][1]
    limit = published - BAR * abs(published)
    which = ""
    if "selected_iteration" in result:  # the paper's figure, too, is a chosen snapshot's
        final, ours = ours, result["mean_return_selected"][1]
        which = (f" (the snapshot of iteration {result['selected_iteration']}, chosen on "
                 f"validation tasks; the final iteration's: {final:.1f})")  # fmt: skip
    verdict = "met" if ours >= limit else "**not met**"
    return (
        f"Bar ({run.label} after one step within 10% of the published {published}, i.e. >= "
        f"{limit:.1f}): ours {ours:.1f}{which}, {verdict}."
    )


def training_runs(folder: Path) -> dict[str, str]:
    """Learner -> "training, iteration i of n" for runs in ``folder`` not evaluated yet."""
    found = {}
    for metrics in sorted(folder.glob("*/metrics.csv")):
        run = metrics.parent
        if (run / "eval.json").exists() or not (run / "settings.json").exists():
            continue
        settings = json.loads((run / "settings.json").read_text())["settings"]
        rows = metrics.read_text().split()
        found[settings["learner"]] = (
            f"training, iteration {len(rows) - 1} of {settings['iterations']}"
        )
    return found


def write_distribution(key: str, runs: list[Run], root: Path, out: Path) -> list[str]:
    """The CSV and figure of one distribution; returns its Markdown section for ``out``."""
    name, published = DISTRIBUTIONS[key], PUBLISHED[key]
    order = list(NAMES)
    runs.sort(key=lambda r: (order.index(r.learner) if r.learner in order else 99, r.folder))
    with (root / f"{key}.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["learner", "inner_steps", "mean_return", "stderr_return", "n_tasks", "seed",
             "env_steps"]
        )  # fmt: skip
        for run in runs:
            for label, means, stderrs in table_rows(run):
                for k, (m, s) in enumerate(zip(means, stderrs)):
                    r = run.result
                    writer.writerow([label, r["inner_steps"][k], f"{m:.3f}", f"{s:.3f}",
                                     r["n_tasks"], r["seed"], run.env_steps])  # fmt: skip
    steps = 4
    head = " | ".join(f"{k} step{'s' if k != 1 else ''}" for k in range(steps))
    lines = [f"## {name}", "", f"| learner | seed | {head} | iterations | env steps | train wall |",
             "|---|---|" + "---|" * steps + "---|---|---|"]  # fmt: skip
    shown_published = set()
    for i, run in enumerate(runs):
        for label, means, stderrs in table_rows(run):
            cells = [f"{m:.1f} ± {s:.1f}" for m, s in zip(means, stderrs)]
            cells += [""] * (steps - len(cells))
            wall = run.result.get("train_wall_s") or 0
            wall_text = f"{wall / 3600:.1f} h" if wall else "-"
            lines.append(
                f"| {label} | {run.result['seed']} | {' | '.join(cells)} | {run.iterations} | "
                f"{run.env_steps / 1e6:.1f} M | {wall_text} |"
            )
        last_of_learner = i + 1 == len(runs) or runs[i + 1].learner != run.learner
        if run.learner in published and last_of_learner:  # after the learner's runs
            shown_published.add(run.learner)
            values = [f"{v}" for v in published[run.learner]] + [""] * steps
            plain = NAMES.get(run.learner, run.learner)  # the published row has no variant
            lines.append(f"| {plain} (published) | | {' | '.join(values[:steps])} | | | |")
    training = training_runs(root / key)
    for learner in (k for k in published if k not in shown_published):
        values = [f"{v}" for v in published[learner]] + [""] * steps
        ours = training.get(learner, "not run yet")
        lines.append(f"| {NAMES[learner]} (published; ours {ours}) | | "
                     f"{' | '.join(values[:steps])} | | | |")  # fmt: skip
    lines.append("")
    for line in bar_lines(key, runs):
        lines += [line, ""]
    figure = root / f"{key}.png"
    if plot_curves(name, runs, published, figure):
        lines += [f"![{name} learning curves]({os.path.relpath(figure, out.parent)})", ""]
    per_task = root / f"{key}_tasks.png"
    if plot_per_task(name, runs, per_task):
        lines += [f"![{name} return per held-out task]({os.path.relpath(per_task, out.parent)})",
                  ""]  # fmt: skip
    lines += ["Commands (machine, date of the evaluation):", ""]
    for run in runs:
        result = run.result
        lines.append(f"- `{result['command']}` ({result['machine']}, {result.get('date', '')})")
    return lines + [""]


def plot_curves(name: str, runs: list[Run], published: dict, path: Path) -> bool:
    """Training curves (moving average of 10 iterations) against env steps; False if none."""
    trained = [r for r in runs if len(r.curve) > 1]
    if not trained:
        return False
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    window = 10
    for i, run in enumerate(trained):
        colour = f"C{i}"
        steps = run.curve[:, 0] / 1e6
        for column, style, suffix in ((1, "--", "before"), (2, "-", "after")):
            if run.learner in ("pretrained", "oracle") and column == 2:
                continue  # trained without adaptation: one curve
            k = min(window, len(steps))
            smooth = np.convolve(run.curve[:, column], np.ones(k) / k, mode="valid")
            label = f"{run.label} seed {run.result['seed']}"
            if run.learner not in ("pretrained", "oracle"):
                label += f", {suffix} adaptation"
            ax.plot(steps[k - 1 :], smooth, style, color=colour, label=label)
    maml = published.get("maml-trpo")
    if maml:
        ax.axhline(maml[1], color="k", ls=":", label="MAML after 1 step (published)")
    ax.set(xlabel="environment steps (millions)", ylabel="mean return (10-iteration average)",
           title=f"{name}: training curves")  # fmt: skip
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def task_parameter(run: Run) -> tuple[str, np.ndarray] | None:
    """The name and values of the run's one scalar task parameter, in the order of its
    per-task returns; None if its eval.json predates per-task returns or tasks are not
    described by one number."""
    tasks = run.result.get("tasks")
    if not tasks or "returns_per_task" not in run.result or len(tasks[0]) != 1:
        return None
    (key,) = tasks[0]
    values = [task.get(key) for task in tasks]
    if not all(isinstance(v, (int, float)) for v in values):
        return None
    return key, np.asarray(values, dtype=float)


def plot_per_task(name: str, runs: list[Run], path: Path) -> bool:
    """Each seed-0 run's return per held-out task against the task's parameter (goal velocity,
    direction), before (x) and after one step (o); the oracle, pretrained and random rows
    unadapted only. Runs sit side by side around each value. False if no run has per-task
    returns."""
    shown = [(run, task_parameter(run)) for run in runs if run.result["seed"] == 0]
    shown = [(run, found) for run, found in shown if found is not None]
    if not shown:
        return False
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    values = np.concatenate([found[1] for _, found in shown])
    spread = 0.01 * ((values.max() - values.min()) or 1.0)
    for i, (run, (_, x)) in enumerate(shown):
        returns = run.result["returns_per_task"]
        x = x + (i - (len(shown) - 1) / 2) * spread
        adapted = run.learner not in ("pretrained", "oracle", "random") and len(returns) > 1
        if adapted:
            ax.plot(x, returns[0], "x", color=f"C{i}", ms=4, alpha=0.6,
                    label=f"{run.label}, before adaptation")  # fmt: skip
        ax.plot(x, returns[1] if adapted else returns[0], "o", color=f"C{i}", ms=4,
                label=run.label + (", after 1 step" if adapted else ""))  # fmt: skip
    ax.set(xlabel=f"task {shown[0][1][0]}", ylabel="mean episode return",
           title=f"{name}: return per held-out task (seed 0)")  # fmt: skip
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main(argv: list[str] | None = None) -> None:
    s = parse_settings(Settings, argv)
    root, out = Path(s.root), Path(s.out)
    if not root.is_dir():
        raise SystemExit(f"--root {root}: no such folder")
    lines = ["# MuJoCo meta-RL: mean return after k gradient steps", "",
             "Mean ± standard error over held-out tasks of each task's mean episode return "
             "(40 tasks, 20 episodes each unless the command says otherwise).", ""]  # fmt: skip
    for key, name in DISTRIBUTIONS.items():
        folders = sorted(p.parent for p in (root / key).glob("*/eval.json"))
        if not folders:
            lines += [f"## {name}", "", "Not run yet.", ""]
            continue
        runs = [read_run(f) for f in folders]
        name_variants(runs)
        lines += write_distribution(key, runs, root, out)
    if s.notes:
        lines += [Path(s.notes).read_text()]
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out} and the CSVs and figures under {root}")


if __name__ == "__main__":
    main()
