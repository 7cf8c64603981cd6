"""Scoring imitation learners by rolling out the adapted policies."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from metarl.core.adapt import InnerLoss
from metarl.core.learners import MetaLearner
from metarl.core.params import Params, detach_params
from metarl.imitation.losses import DemoData, bc_loss
from metarl.rl.episodes import Episodes
from metarl.rl.sampler import MultiTaskSampler


def adapted_rollouts(
    learner: MetaLearner,
    support: Any,
    tasks: Sequence[Mapping[str, Any]],
    sampler: MultiTaskSampler,
    steps: int | None = None,
    inner_loss: InnerLoss | None = None,
) -> Episodes:
    """Episodes of ``learner``'s policy after ``steps`` (default its ``eval_steps``) steps
    of ``inner_loss`` (default behaviour cloning, on ``DemoData``) on each task's
    ``support`` demonstrations, rolled out by ``sampler`` with the policy's most likely
    actions (``sampler.episodes_per_task`` per task). ``support`` and ``tasks`` are in the
    same order; ``steps=0`` rolls out the unadapted policy."""
    policy = learner.model
    with torch.no_grad():  # the inner gradients are taken regardless (torch.func)
        adapted = learner.adapt_batch(
            bc_loss(policy) if inner_loss is None else inner_loss,
            support,
            steps=learner.eval_steps if steps is None else steps,
            first_order=True,
        )
    return sampler.sample(tasks, policy, detach_params(adapted), batched=True, deterministic=True)


def cloned_from_scratch(
    make_policy: Callable[[], nn.Module], support: DemoData, steps: int, lr: float = 1e-3
) -> Params:
    """Behaviour cloning without meta-learning, the baseline MIL must beat: for each task, a
    fresh ``make_policy()`` trained with Adam (``lr``) for ``steps`` full-batch steps on that
    task's ``support`` demonstrations. Returns the parameters stacked over tasks, for
    ``MultiTaskSampler.sample(..., batched=True)``."""
    per_task = []
    for t in range(support.mask.shape[0]):
        policy = make_policy()
        params = dict(policy.named_parameters())
        loss, data = bc_loss(policy), DemoData(*(x[t] for x in support))
        optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
        for _ in range(steps):
            optimizer.zero_grad()
            loss(params, data).backward()
            optimizer.step()
        per_task.append(detach_params(params))
    return {name: torch.stack([p[name] for p in per_task]) for name in per_task[0]}
