"""Scoring imitation learners by rolling out the adapted policies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from metarl.core.learners import MetaLearner
from metarl.core.params import detach_params
from metarl.imitation.losses import DemoData, bc_loss
from metarl.rl.episodes import Episodes
from metarl.rl.sampler import MultiTaskSampler


def adapted_rollouts(
    learner: MetaLearner,
    support: DemoData,
    tasks: Sequence[Mapping[str, Any]],
    sampler: MultiTaskSampler,
    steps: int | None = None,
) -> Episodes:
    """Episodes of ``learner``'s policy after ``steps`` (default its ``eval_steps``)
    behaviour-cloning steps on each task's ``support`` demonstrations, rolled out by
    ``sampler`` with the policy's most likely actions (``sampler.episodes_per_task`` per
    task). ``support`` and ``tasks`` are in the same order; ``steps=0`` rolls out the
    unadapted policy."""
    policy = learner.model
    with torch.no_grad():  # the inner gradients are taken regardless (torch.func)
        adapted = learner.adapt_batch(
            bc_loss(policy),
            support,
            steps=learner.eval_steps if steps is None else steps,
            first_order=True,
        )
    return sampler.sample(tasks, policy, detach_params(adapted), batched=True, deterministic=True)
