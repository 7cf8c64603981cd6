"""Generate an expert demonstration dataset (Minari format, see ``metarl.imitation.demos``).

The expert rolls out on tasks drawn with ``--seed``; ``--noise`` makes it act with Gaussian
noise while every step is labelled with its noise-free action (noise injection: the states
around its path, which behaviour cloning needs). Held-out data come from another seed:

    python experiments/make_demos.py --env metarl/Navigation2D-v0 --tasks 200 \\
        --demos-per-task 4 --noise 0.3 --seed 0 --out demos/navigation2d-train
    python experiments/make_demos.py --env metarl/Navigation2D-v0 --tasks 40 \\
        --demos-per-task 1 --seed 1 --out demos/navigation2d-test

Distributions without a scripted expert take a trained one: ``--expert-policy`` names the
``learner.pt`` of an oracle run (``maml_rl.py --learner oracle``, the task in its
observation). Prints the expert's mean return. The dataset records the command that made
it; an existing folder is refused unless ``--overwrite``.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from typing import Annotated

from torch import nn

import metarl  # noqa: F401
from metarl.imitation import generate_demos, make_expert, save_demos
from metarl.utils.cli import Check, Positive, json_object, parse_settings

Count = Annotated[int, Positive]


@dataclass
class Settings:
    """Roll out an expert on sampled tasks and save the demonstrations."""

    out: str  # the dataset folder to write
    env: str = "metarl/Navigation2D-v0"  # the task distribution (one with an expert)
    env_kwargs: str = "{}"
    """JSON keyword arguments of --env, recorded in the dataset, e.g. Meta-World ML1's
    '{"env_name": "push-v3", "split": "test", "terminate_on_success": true}'"""
    tasks: Count = 200  # tasks to demonstrate
    demos_per_task: Count = 4  # demonstrations of each task
    horizon: Count = 100  # steps per demonstration at most
    noise: Annotated[float, Check(lambda x: x >= 0, "must be >= 0")] = 0.0  # action noise
    seed: int = 0  # seeds the tasks and the noise
    expert_policy: str | None = None
    """learner.pt of an oracle run of --env (maml_rl.py --learner oracle) to act as the
    expert; default: the distribution's scripted expert"""
    overwrite: bool = False  # replace a dataset already at --out


def expert_for(s: Settings, env_kwargs: dict) -> nn.Module:
    """The expert of ``--env``; a clear error for a distribution that has none yet."""
    try:
        return make_expert(s.env, noise=s.noise, policy=s.expert_policy, env_kwargs=env_kwargs)
    except KeyError as err:
        raise SystemExit(err.args[0]) from err
    except (ValueError, OSError) as err:
        raise SystemExit(f"--expert-policy: {err}") from err


def main(argv: list[str] | None = None) -> float:
    s = parse_settings(Settings, argv)
    env_kwargs = json_object(s.env_kwargs, "--env-kwargs")
    demos = generate_demos(
        s.env,
        expert_for(s, env_kwargs),
        s.tasks,
        s.demos_per_task,
        s.horizon,
        seed=s.seed,
        env_kwargs=env_kwargs,
    )
    words = sys.argv[1:] if argv is None else argv
    demos.info.update(
        noise=s.noise,
        expert_policy=s.expert_policy,
        command=shlex.join(["experiments/make_demos.py", *words]),
    )
    try:
        path = save_demos(demos, s.out, overwrite=s.overwrite)
    except FileExistsError as err:
        raise SystemExit(f"{err} (--overwrite)") from err
    mean_return = demos.returns().mean().item()
    print(
        f"{s.tasks} tasks x {s.demos_per_task} demonstrations of {s.env} in {path}; "
        f"expert mean return {mean_return:.3f}, {int(demos.mask.sum())} steps"
    )
    return mean_return


if __name__ == "__main__":
    main()
