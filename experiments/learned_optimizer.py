"""Learning to learn by gradient descent by gradient descent (Andrychowicz et al., 2016).

Meta-trains the coordinate-wise LSTM optimiser (``metarl.core.learned_optimizer``) by
unrolling it ``--horizon`` steps on sampled problems (truncated backpropagation every
``--truncation`` steps, Adam on the LSTM), keeps the version with the lowest mean loss on
``--val-problems`` validation problems, and compares it on held-out problems with SGD,
Nesterov momentum, RMSprop and Adam, each at the learning rate from ``--lrs`` that does best
on the same validation problems (tuned separately for every test setting).

- ``--problem quadratic``: ``f(theta) = ||W theta - y||^2``, ``W`` 10 x 10, ``y`` and
  ``theta_0`` standard normal, ``--batch`` functions per problem (the paper's setup).
- ``--problem mlp``: a one-hidden-layer MLP (20 sigmoid units) classifying ``--ways``
  Omniglot characters (all 20 drawings each, ``--image-size`` pixels, mini-batches of
  ``--batch``), standing in for the paper's MNIST network. Training problems use the
  meta-training characters of the full-data protocol, test problems the test characters,
  and the test also runs on networks the optimiser never saw: 40 hidden units, two hidden
  layers, ReLU units (the paper's generalisation figures).

    python experiments/learned_optimizer.py --problem quadratic --seed 0
    python experiments/learned_optimizer.py --problem mlp --seed 0

Writes into ``--out``: ``settings.json``, ``metrics.csv`` (meta-loss per iteration,
validation loss), ``checkpoint.pt`` (``--resume``), ``optimizer.pt`` (the chosen LSTM, for
``load_rule``), ``curves.csv`` (mean and standard error of the loss per step, per
optimiser and test setting), ``curves-<setting>.png``, ``meta_training.png`` and
``results.json`` (final losses, tuned learning rates).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import torch

from metarl.core.learned_optimizer import (
    CoordinateLSTMRule,
    hand_designed_curve,
    meta_train_step,
    optimize,
    save_rule,
)
from metarl.supervised.data.omniglot import load_omniglot
from metarl.supervised.optimizees import Activation, MLPProblem, QuadraticProblem
from metarl.utils import seed_everything, start_run
from metarl.utils.cli import NonEmpty, Positive, parse_settings
from metarl.utils.run import plot_curves

SCRIPT = "experiments/learned_optimizer.py"
Count = Annotated[int, Positive]
# the learning-rate grid and the test problems only enter the evaluation after meta-training
RESUME_MAY_CHANGE = (
    "resume",
    "overwrite",
    "out",
    "threads",
    "meta_iterations",
    "data",
    "lrs",
    "test_problems",
)
HAND_DESIGNED = ("sgd", "nag", "rmsprop", "adam")
# test settings of --problem mlp: hidden widths and activation
MLP_SETTINGS: dict[str, tuple[tuple[int, ...], Activation]] = {
    "mlp": ((20,), "sigmoid"),
    "mlp-40-units": ((40,), "sigmoid"),
    "mlp-2-layers": ((20, 20), "sigmoid"),
    "mlp-relu": ((20,), "relu"),
}


@dataclass
class Settings:
    """Meta-train an LSTM optimiser, then race it against tuned hand-designed ones."""

    problem: Literal["quadratic", "mlp"] = "quadratic"  # the problem family (docstring)
    meta_iterations: Count = 1000  # sampled problems to meta-train on
    horizon: Count = 100  # optimisation steps per problem (training and test)
    truncation: Count = 20  # steps per truncated backpropagation window
    meta_lr: Annotated[float, Positive] = 1e-3  # Adam's learning rate on the LSTM
    hidden: Count = 20  # units per LSTM layer
    output_scale: Annotated[float, Positive] = 0.1  # factor on the LSTM's output
    batch: Count = 128  # quadratic: functions per problem; mlp: mini-batch size
    dim: Count = 10  # quadratic: dimension
    ways: Count = 10  # mlp: characters per problem
    image_size: Count = 14  # mlp: image side in pixels
    val_problems: Count = 10  # validation problems (choosing the LSTM and the lrs)
    test_problems: Count = 20  # held-out problems per test setting
    val_every: Count = 50  # meta-iterations between validations (and checkpoints)
    lrs: Annotated[tuple[float, ...], Positive, NonEmpty] = (
        1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)  # fmt: skip
    """learning rates tried for each hand-designed optimiser (a choice at either end of the
    grid is reported in ``results.json`` as ``tuned_at_grid_edge``)"""
    seed: int = 0  # seeds the LSTM's initialisation and the training problems
    data: str | None = None  # Omniglot root (default: $METARL_DATA)
    out: str | None = None  # run folder (None: runs/learned_optimizer/<problem>-seed<seed>)
    resume: bool = False  # continue the run in --out
    overwrite: bool = False  # delete the run in --out and start again
    threads: Count = 1  # torch threads


Sampler = Callable[[torch.Generator], "QuadraticProblem | MLPProblem"]


def omniglot_sampler(s: Settings, split: str, hidden: tuple[int, ...], act: Activation) -> Sampler:
    """Problems on ``s.ways`` random characters of ``split`` (full-data protocol)."""
    data = load_omniglot(split, root=s.data, size=s.image_size, protocol="vinyals")
    x = torch.from_numpy(data.images.reshape(len(data.images), -1)).float() / 255
    by_class = [np.flatnonzero(data.labels == c) for c in range(len(data.class_names))]

    def sample(g: torch.Generator) -> MLPProblem:
        classes = torch.randperm(len(by_class), generator=g)[: s.ways].tolist()
        rows = np.concatenate([by_class[c] for c in classes])
        y = torch.from_numpy(np.repeat(np.arange(s.ways), [len(by_class[c]) for c in classes]))
        return MLPProblem.sample(x[rows], y, hidden, act, s.horizon, s.batch, g)

    return sample


def samplers(s: Settings) -> tuple[Sampler, Sampler, dict[str, tuple[Sampler, Sampler]]]:
    """The training sampler, and per test setting its validation and test samplers."""
    if s.problem == "quadratic":

        def quadratic(g: torch.Generator) -> QuadraticProblem:
            return QuadraticProblem.sample(s.batch, s.dim, generator=g)

        return quadratic, quadratic, {"quadratic": (quadratic, quadratic)}
    tests = {
        name: (omniglot_sampler(s, "val", *arch), omniglot_sampler(s, "test", *arch))
        for name, arch in MLP_SETTINGS.items()
    }
    return omniglot_sampler(s, "train", *MLP_SETTINGS["mlp"]), tests["mlp"][0], tests


def problems(sample: Sampler, count: int, seed: int) -> list:
    g = torch.Generator().manual_seed(seed)
    return [sample(g) for _ in range(count)]


def lstm_curves(rule: CoordinateLSTMRule, probs: list, steps: int) -> torch.Tensor:
    return torch.stack([optimize(rule, p.loss, p.init, steps) for p in probs])


def hand_curves(name: str, lr: float, probs: list, steps: int) -> torch.Tensor:
    return torch.stack([hand_designed_curve(name, lr, p.loss, p.init, steps) for p in probs])


def score(curves: torch.Tensor) -> float:
    """Mean loss over the trajectory and the problems (the meta-objective); inf if diverged."""
    value = curves[:, 1:].mean().item()
    return value if math.isfinite(value) else math.inf


def main(argv: list[str] | None = None) -> dict:
    s = parse_settings(Settings, argv)
    if s.horizon % s.truncation:
        raise SystemExit(f"--truncation {s.truncation} must divide --horizon {s.horizon}")
    torch.set_num_threads(s.threads)
    seed_everything(s.seed)
    out = Path(s.out or f"runs/learned_optimizer/{s.problem}-seed{s.seed}")
    train_sampler, val_sampler, tests = samplers(s)
    val = problems(val_sampler, s.val_problems, seed=10_000 + s.seed)
    rule = CoordinateLSTMRule(s.hidden, s.output_scale)
    optimizer = torch.optim.Adam(rule.parameters(), lr=s.meta_lr)
    g = torch.Generator().manual_seed(s.seed)
    best = {"val_loss": math.inf, "iteration": 0, "state": rule.state_dict()}
    run = start_run(out, s, argv=argv, script=SCRIPT, ignore=RESUME_MAY_CHANGE,
                    outputs=("optimizer.pt", "curves.csv", "meta_training.png",
                             *(f"curves-{name}.png" for name in tests)))  # fmt: skip
    with run.interruptible():
        state = run.restore()
        if state is not None:
            rule.load_state_dict(state["rule"])
            optimizer.load_state_dict(state["optimizer"])
            g.set_state(state["generator"])
            best = state["best"]
            run.exit_if_past(s.meta_iterations)
        for it in run.progress(s.meta_iterations, f"LSTM optimiser on {s.problem}"):
            problem = train_sampler(g)
            loss = meta_train_step(
                rule, optimizer, problem.loss, problem.init, s.horizon, s.truncation
            )
            val_loss = None
            if (it + 1) % s.val_every == 0 or it + 1 == s.meta_iterations:
                val_loss = score(lstm_curves(rule, val, s.horizon))
                if val_loss < best["val_loss"]:
                    state_now = {k: v.clone() for k, v in rule.state_dict().items()}
                    best = {"val_loss": val_loss, "iteration": it + 1, "state": state_now}
                run.save({"rule": rule.state_dict(), "optimizer": optimizer.state_dict(),
                          "generator": g.get_state(), "best": best}, it + 1)  # fmt: skip
                run.status(it + 1, f"meta-loss {loss:.4g}, validation {val_loss:.4g}")
            run.log(it + 1, meta_loss=loss, val_loss=val_loss, wall_s=run.wall_s)
    rule.load_state_dict(best["state"])
    save_rule(out / "optimizer.pt", rule)
    plot_curves(out / "metrics.csv", "step", {"meta_loss": "meta-training loss",
                "val_loss": "validation loss"}, "mean loss over the trajectory",
                out / "meta_training.png", title=f"LSTM optimiser on {s.problem}")  # fmt: skip

    results, rows = {}, []
    for setting, (val_of, test_of) in tests.items():
        setting_val = problems(val_of, s.val_problems, seed=10_000 + s.seed)
        test = problems(test_of, s.test_problems, seed=20_000 + s.seed)
        curves = {"lstm": lstm_curves(rule, test, s.horizon)}
        tuned = {}
        for name in HAND_DESIGNED:
            scores = {lr: score(hand_curves(name, lr, setting_val, s.horizon)) for lr in s.lrs}
            tuned[name] = min(scores, key=lambda lr: scores[lr])
            curves[name] = hand_curves(name, tuned[name], test, s.horizon)
        results[setting] = {
            "final_loss": {k: c[:, -1].mean().item() for k, c in curves.items()},
            "final_stderr": {
                k: (c[:, -1].std() / math.sqrt(len(c))).item() for k, c in curves.items()
            },
            "mean_loss": {k: c[:, 1:].mean().item() for k, c in curves.items()},
            "tuned_lr": tuned,
            "tuned_at_grid_edge": [k for k, lr in tuned.items() if lr in (min(s.lrs), max(s.lrs))],
        }
        for k, c in curves.items():
            mean, err = c.mean(0), c.std(0) / math.sqrt(len(c))
            rows += [(setting, k, t, mean[t].item(), err[t].item()) for t in range(len(mean))]
    with open(out / "curves.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["setting", "optimizer", "step", "mean_loss", "stderr_loss"])
        writer.writerows(rows)
    for setting in tests:
        plot_setting(out / "curves.csv", setting, out / f"curves-{setting}.png")
    result = {
        "problem": s.problem,
        "chosen_iteration": best["iteration"],
        "chosen_val_loss": best["val_loss"],
        "test_problems": s.test_problems,
        "horizon": s.horizon,
        "settings": results,
    }
    run.write_results(result)
    run.finish()
    for setting, r in results.items():
        finals = ", ".join(f"{k} {v:.4g}" for k, v in r["final_loss"].items())
        print(f"{setting}: final loss {finals}")
        if r["tuned_at_grid_edge"]:
            print(f"  warning: {r['tuned_at_grid_edge']} chose a learning rate at the end of "
                  "--lrs; widen the grid")  # fmt: skip
    return result


def plot_setting(csv_path: Path, setting: str, png: Path) -> None:
    """Mean loss against step for every optimiser of one test setting (log scale)."""
    from matplotlib.figure import Figure

    with open(csv_path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["setting"] == setting]
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for name in dict.fromkeys(r["optimizer"] for r in rows):
        mine = [r for r in rows if r["optimizer"] == name]
        steps = [int(r["step"]) for r in mine]
        mean = np.array([float(r["mean_loss"]) for r in mine])
        err = np.array([float(r["stderr_loss"]) for r in mine])
        ax.plot(steps, mean, label="LSTM (learned)" if name == "lstm" else name)
        ax.fill_between(steps, mean - err, mean + err, alpha=0.2)
    ax.set(xlabel="step", ylabel="loss", yscale="log", title=setting)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=110)


if __name__ == "__main__":
    main()
