"""Meta-RL training on metarl.core: MAML-TRPO, MAML with vanilla PG, FOMAML, Meta-SGD, Reptile.

Every learner is a ``metarl.core`` meta-learner over a policy; this module only supplies the
task data (from the sampler) and the losses (REINFORCE inside, TRPO surrogate or plain
policy gradient outside). One meta-iteration:

1. sample episodes of the current policy on a batch of tasks (the support set);
2. adapt per task with the learner's inner rule (``vmap`` over tasks);
3. sample episodes of each adapted policy (the query set);
4. outer update: the step object the user passed, ``TRPO(max_kl=...)`` through the
   adaptation (MAML-TRPO), or any ``torch.optim`` optimiser over ``learner.parameters()``
   on the surrogate (MAML with vanilla PG) or on Reptile's pseudo-gradient (with
   ``SGD(lr=epsilon)``, exactly Reptile's interpolation).

With ``inner_steps=0`` the same loop trains a plain multi-task policy (the "pretrained"
baseline of the MAML paper).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from metarl.core.adapt import adapt, map_tasks
from metarl.core.learners import MetaLearner
from metarl.core.outer import check_outer
from metarl.core.params import Params, detach_params
from metarl.core.trpo import TRPO
from metarl.rl.losses import (
    policy_gradient_data,
    reinforce_loss,
    surrogate_and_kl,
    surrogate_data,
)
from metarl.rl.sampler import MultiTaskSampler

Outer = TRPO | torch.optim.Optimizer


class MetaRLTrainer:
    """Meta-train a ``MetaLearner`` whose model is a policy, on tasks from ``sampler``.

    Args:
        learner: e.g. ``MAML(policy, inner_lr=0.1)``, ``MetaSGD(policy, ...)``,
            ``Reptile(policy, ...)``. A learner whose extra objective is defined only on
            supervised batches (it overrides ``meta_loss``, as TAML and ADML do) is refused:
            in RL it would silently be plain MAML.
        sampler: a ``MultiTaskSampler`` for the task distribution.
        outer: the outer step, ``TRPO(max_kl=0.01)`` or a ``torch.optim`` optimiser over
            ``learner.parameters()`` (``Adam(..., lr=1e-3)`` for MAML with vanilla PG,
            ``SGD(..., lr=epsilon)`` for Reptile). Reptile with ``TRPO`` is a ``ValueError``.
        gamma, gae_lambda: discount and GAE parameter for the advantages.
    """

    def __init__(
        self,
        learner: MetaLearner,
        sampler: MultiTaskSampler,
        outer: Outer,
        gamma: float = 0.99,
        gae_lambda: float = 1.0,
    ) -> None:
        if type(learner).meta_loss is not MetaLearner.meta_loss:
            raise ValueError(
                f"{type(learner).__name__} defines its objective in meta_loss, on supervised "
                "batches; meta-RL uses meta_losses with policy-gradient losses, where it "
                "would silently be plain MAML. Use MAML, MetaSGD, Reptile, or a learner that "
                "overrides meta_losses."
            )
        check_outer(learner, outer)
        if not 0 < gamma <= 1 or not 0 <= gae_lambda <= 1:
            raise ValueError(f"gamma must be in (0, 1] and gae_lambda in [0, 1], got "
                             f"{gamma}, {gae_lambda}")  # fmt: skip
        self.learner, self.sampler, self.outer = learner, sampler, outer
        self.policy = learner.model
        self.gamma, self.gae_lambda = gamma, gae_lambda
        self.inner_loss = reinforce_loss(self.policy)
        self.outer_loss = surrogate_and_kl(self.policy)

    # -- one meta-iteration --------------------------------------------------------------
    def meta_step(self, tasks: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        """Sample, adapt, sample again, update. Returns returns before/after and step stats."""
        support = self.sampler.sample(tasks, self.policy)
        support_data = policy_gradient_data(support, self.gamma, self.gae_lambda)
        adapted = self.learner.adapt_batch(
            self.inner_loss, support_data, params=detach_params(self.learner.params()),
            first_order=True,
        )  # fmt: skip
        adapted = {name: p.detach() for name, p in adapted.items()}
        query = self.sampler.sample(tasks, self.policy, adapted, batched=True)
        stats = {
            "return_before": support.mean_return().mean().item(),
            "return_after": query.mean_return().mean().item(),
            "env_steps": float(support.steps() + query.steps()),
        }
        query_data = surrogate_data(
            self.policy, adapted, policy_gradient_data(query, self.gamma, self.gae_lambda)
        )

        def loss_and_kl() -> tuple[Tensor, Tensor]:
            out = self.learner.meta_losses(
                self.inner_loss, support_data, self.outer_loss, query_data
            )
            return out[:, 0].mean(), out[:, 1].mean()

        if isinstance(self.outer, TRPO):
            result = self.outer.step(list(self.learner.parameters()), loss_and_kl)
            stats.update(loss=result.loss_before, kl=result.kl, step_fraction=result.step_fraction)
        else:
            loss, kl = loss_and_kl()
            self.outer.zero_grad()
            loss.backward()
            self.outer.step()
            stats.update(loss=loss.item(), kl=kl.item())
        return stats

    # -- evaluation ----------------------------------------------------------------------
    def evaluate(
        self,
        tasks: Sequence[Mapping[str, Any]],
        inner_steps: int = 3,
        step_scales: Sequence[float] = (1.0,),
    ) -> Tensor:
        """Mean return per task after 0..``inner_steps`` adaptation steps: ``[steps + 1, T]``.

        As in the MAML paper, every step adapts on fresh episodes of the current adapted
        policy, then the next episodes are sampled with the result. Step ``k`` (from 0) is
        the learner's own update scaled by ``step_scales[min(k, len - 1)]``: ``(1.0, 0.3)``
        keeps the first step and takes later ones at 0.3 of its size.
        """
        if not step_scales or any(s <= 0 for s in step_scales):
            raise ValueError(f"step_scales must be positive, got {tuple(step_scales)}")
        num_tasks = len(tasks)
        params: Params = {
            name: p.detach().expand(num_tasks, *p.shape)
            for name, p in self.learner.params().items()
        }
        returns = []
        for k in range(inner_steps + 1):
            episodes = self.sampler.sample(tasks, self.policy, params, batched=True)
            returns.append(episodes.mean_return())
            if k == inner_steps:
                break
            data = policy_gradient_data(episodes, self.gamma, self.gae_lambda)
            scale = float(step_scales[min(k, len(step_scales) - 1)])

            def one_step(p: Params, d: Any, scale: float = scale) -> Params:
                new = adapt(p, self.inner_loss, d, self.learner.rule, 1, first_order=True)
                return {name: p[name] + scale * (new[name] - p[name]) for name in p}

            params = map_tasks(one_step, [params, data], [0, 0], self.learner.batching)
            params = {name: p.detach() for name, p in params.items()}
        return torch.stack(returns)

    # -- checkpoints ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Learner weights, sampler random streams and the outer step's state, for a checkpoint."""
        return {
            "learner": self.learner.state_dict(),
            "sampler": self.sampler.state(),
            "outer": self.outer.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` saved; the run then continues as if never stopped."""
        self.learner.load_state_dict(state["learner"])
        self.sampler.load_state(state["sampler"])
        # Checkpoints written before the outer step was an object call it "optimizer".
        outer = state.get("outer", state.get("optimizer", {}))
        if outer or not isinstance(self.outer, torch.optim.Optimizer):
            self.outer.load_state_dict(outer)
