"""Meta-RL training on metarl.core: MAML-TRPO, MAML with vanilla PG, FOMAML, Meta-SGD, Reptile.

Every learner is a ``metarl.core`` meta-learner over a policy; this module only supplies the
task data (from the sampler) and the losses (REINFORCE inside, TRPO surrogate or plain
policy gradient outside). One meta-iteration:

1. sample episodes of the current policy on a batch of tasks (the support set);
2. adapt per task with the learner's inner rule (``vmap`` over tasks);
3. sample episodes of each adapted policy (the query set);
4. outer update: TRPO through the adaptation (``outer="trpo"``), a gradient step of an
   optimiser (``outer="sgd"``, MAML with vanilla PG), or Reptile's interpolation
   (``outer="reptile"``).

With ``inner_steps=0`` the same loop trains a plain multi-task policy (the "pretrained"
baseline of the MAML paper).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor

from metarl.core.adapt import adapt, map_tasks
from metarl.core.learners import MetaLearner
from metarl.core.outer import reptile_update
from metarl.core.params import Params, detach_params
from metarl.rl.losses import (
    policy_gradient_data,
    reinforce_loss,
    surrogate_and_kl,
    surrogate_data,
)
from metarl.rl.sampler import MultiTaskSampler
from metarl.rl.trpo import trpo_step

Outer = Literal["trpo", "sgd", "reptile"]


class MetaRLTrainer:
    """Meta-train a ``MetaLearner`` whose model is a policy, on tasks from ``sampler``.

    Args:
        learner: e.g. ``MAML(policy, inner_lr=0.1)``, ``MetaSGD(policy, ...)``,
            ``Reptile(policy, ...)``.
        sampler: a ``MultiTaskSampler`` for the task distribution.
        outer: ``"trpo"``, ``"sgd"`` (an optimiser step on the surrogate; Adam by default) or
            ``"reptile"``.
        max_kl: TRPO's trust-region size.
        outer_lr: learning rate for ``"sgd"`` (Adam) and step size epsilon for ``"reptile"``.
        gamma, gae_lambda: discount and GAE parameter for the advantages.
        cg_iterations, cg_damping, backtrack_ratio: TRPO's conjugate-gradient iterations,
            Fisher damping and line-search shrink factor.
    """

    def __init__(
        self,
        learner: MetaLearner,
        sampler: MultiTaskSampler,
        outer: Outer = "trpo",
        max_kl: float = 0.01,
        outer_lr: float = 1e-3,
        gamma: float = 0.99,
        gae_lambda: float = 1.0,
        cg_iterations: int = 10,
        cg_damping: float = 1e-5,
        backtrack_ratio: float = 0.8,
    ) -> None:
        if outer not in ("trpo", "sgd", "reptile"):
            raise ValueError(f"outer must be 'trpo', 'sgd' or 'reptile', got {outer!r}")
        self.learner, self.sampler, self.outer = learner, sampler, outer
        self.policy = learner.model
        self.max_kl, self.outer_lr = max_kl, outer_lr
        self.gamma, self.gae_lambda = gamma, gae_lambda
        self.cg_iterations, self.cg_damping = cg_iterations, cg_damping
        self.backtrack_ratio = backtrack_ratio
        self.inner_loss = reinforce_loss(self.policy)
        self.outer_loss = surrogate_and_kl(self.policy)
        self.optimizer = (
            torch.optim.Adam(learner.parameters(), lr=outer_lr) if outer == "sgd" else None
        )

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
        if self.outer == "reptile":
            reptile_update(self.learner.params(), adapted, self.outer_lr)
            return stats
        query_data = surrogate_data(
            self.policy, adapted, policy_gradient_data(query, self.gamma, self.gae_lambda)
        )

        def loss_and_kl() -> tuple[Tensor, Tensor]:
            out = self.learner.meta_losses(
                self.inner_loss, support_data, self.outer_loss, query_data
            )
            return out[:, 0].mean(), out[:, 1].mean()

        if self.outer == "trpo":
            result = trpo_step(
                list(self.learner.parameters()), loss_and_kl, self.max_kl, self.cg_damping,
                self.cg_iterations, self.backtrack_ratio,
            )  # fmt: skip
            stats.update(loss=result.loss_before, kl=result.kl, step_fraction=result.step_fraction)
        else:
            loss, kl = loss_and_kl()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
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
        """Learner weights, sampler random streams and optimiser state, for a checkpoint."""
        state: dict[str, Any] = {
            "learner": self.learner.state_dict(),
            "sampler": self.sampler.state(),
        }
        if self.optimizer is not None:
            state["optimizer"] = self.optimizer.state_dict()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` saved; the run then continues as if never stopped."""
        self.learner.load_state_dict(state["learner"])
        self.sampler.load_state(state["sampler"])
        if self.optimizer is not None:
            self.optimizer.load_state_dict(state["optimizer"])
