"""Write ``learner.pt`` into a ``maml_rl.py`` run folder from its checkpoint.

``maml_rl.py`` writes ``learner.pt`` after training; this does the same for a run that
finished before it did, without training or evaluating again:

    python experiments/export_learner.py \\
        --run experiments/results/mujoco_v0/halfcheetah_vel/maml-trpo-seed0

The learner is rebuilt from the run's ``settings.json`` and loaded with the weights of its
``checkpoint.pt`` (verified, ``weights_only=True``); an existing ``learner.pt`` is kept unless
``--overwrite`` says otherwise.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import maml_rl

from metarl.utils.cli import parse_settings


@dataclass
class Settings:
    """Export the trained learner of a finished maml_rl.py run."""

    run: str  # the run folder (holds settings.json and checkpoint.pt)
    overwrite: bool = False  # replace a learner.pt already there


def main(argv: list[str] | None = None) -> Path:
    s = parse_settings(Settings, argv)
    folder = Path(s.run)
    target = folder / "learner.pt"
    if target.exists() and not s.overwrite:
        raise SystemExit(f"{target} exists; pass --overwrite to replace it")
    run_settings, learner, _, iteration = maml_rl.load_run(folder)
    run_settings = dataclasses.replace(run_settings, iterations=iteration)
    path = maml_rl.save_trained_learner(run_settings, learner)
    print(f"wrote {path} (iteration {iteration})")
    return path


if __name__ == "__main__":
    main()
