"""Compare TRPO steps with the Fisher matrix on all tasks and on every n-th task, at a run's
checkpoint: the step fraction the line search accepts, the KL reached and the surrogate gain.

For each of ``--batches`` meta-batches, the trained learner takes one ``meta_step`` per value
of ``--fisher-every``, each from the checkpoint's weights on the same tasks and episodes (the
sampler's random streams are rewound), so the rows differ only in the curvature estimate.

    python experiments/trpo_curvature_check.py \
        --run experiments/results/mujoco_fisher4/halfcheetah_dir/maml-trpo-seed0
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Annotated

import maml_rl  # noqa: E402  (experiments/ is on the path when this script runs)
import torch

from metarl.core import TRPO
from metarl.core.trpo import TRPOStats
from metarl.rl import MetaRLTrainer, MultiTaskSampler
from metarl.utils import seed_everything
from metarl.utils.cli import NonEmpty, Positive, parse_settings


@dataclass
class Settings:
    """Where and how to compare the curvature estimates."""

    run: str  # a maml_rl.py run folder with settings.json and checkpoint.pt (TRPO learner)
    batches: Annotated[int, Positive] = 2  # meta-batches to compare on
    fisher_every: Annotated[tuple[int, ...], Positive, NonEmpty] = (4, 1)  # values to compare
    seed: int = 77  # seed of the tasks and episodes
    threads: Annotated[int, Positive] = 1  # torch threads (physics: the run's own setting)


class RecordingTRPO(TRPO):
    """TRPO that keeps the statistics of its last step."""

    last: TRPOStats | None = None

    def step(self, params, loss_and_kl, curvature_kl=None) -> TRPOStats:  # type: ignore[override]
        self.last = super().step(params, loss_and_kl, curvature_kl)
        return self.last


def main(argv: list[str] | None = None) -> list[dict]:
    s = parse_settings(Settings, argv)
    torch.set_num_threads(s.threads)
    seed_everything(s.seed)
    run, learner, outer, iteration = maml_rl.load_run(s.run)
    if not isinstance(outer, TRPO):
        raise SystemExit(f"{s.run} trained {run.learner}, whose outer step is not TRPO")
    trpo = RecordingTRPO(max_kl=outer.max_kl, backtrack_ratio=outer.backtrack_ratio)
    sampler = MultiTaskSampler(
        run.env, run.episodes_per_task, run.horizon, seed=s.seed,
        task_in_observation=run.learner == "oracle", rescale_actions=run.rescale_actions,
        threads=run.physics_threads,
    )  # fmt: skip
    trainer = MetaRLTrainer(learner, sampler, trpo, gamma=run.gamma, gae_lambda=run.gae_lambda)
    weights = copy.deepcopy(learner.state_dict())
    print(f"{s.run}: checkpoint at iteration {iteration}")
    print("| batch | Fisher on every n-th task | step fraction | KL reached | surrogate gain | s |")
    print("|---|---|---|---|---|---|")
    rows = []
    for batch in range(s.batches):
        tasks = sampler.sample_tasks(run.tasks_per_batch)
        streams = sampler.state()
        for every in s.fisher_every:
            learner.load_state_dict(weights)
            sampler.load_state(streams)
            trpo.fisher_every = every
            tick = time.perf_counter()
            trainer.meta_step(tasks)
            seconds = time.perf_counter() - tick
            assert trpo.last is not None
            row = {
                "batch": batch,
                "fisher_every": every,
                "step_fraction": trpo.last.step_fraction,
                "kl": trpo.last.kl,
                "surrogate_gain": trpo.last.loss_before - trpo.last.loss_after,
                "seconds": seconds,
            }
            rows.append(row)
            print(f"| {batch} | {every} | {row['step_fraction']:.2f} | {row['kl']:.4f} | "
                  f"{row['surrogate_gain']:.5f} | {seconds:.0f} |", flush=True)  # fmt: skip
    return rows


if __name__ == "__main__":
    main()
