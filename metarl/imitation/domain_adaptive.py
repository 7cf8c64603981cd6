"""Domain-adaptive meta-learning (Yu, Finn, Xie, Dasari, Zhang, Abbeel and Levine, RSS 2018).

At test time the demonstration of a new task has observations only (the paper's human
video). The policy adapts by gradient steps on a *learned* loss over those observations,
``ObservationLoss``: a small temporal convolution network that reads the policy's
predicted actions beside the observed sequence and whose output's squared norm is the loss.
It is meta-trained with the initialisation, through the inner step (second order), so that
one step on it yields a policy that clones a demonstration *with* actions of the same task
(the outer loss, ``bc_loss``). Built on ``metarl.core``: the learner is MAML whose inner
loss is ``learner.inner_loss()`` on ``ObservedDemo`` data.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from metarl.config import Configurable
from metarl.core.adapt import InnerLoss
from metarl.core.learners import BatchingChoice, MetaLearner
from metarl.core.params import Params, forward_with
from metarl.core.rules import SGDRule
from metarl.imitation.losses import DemoData


class ObservedDemo(NamedTuple):
    """Demonstrations without actions: ``observations [..., D, H, obs_dim]`` and
    ``mask [..., D, H]`` (1 where a step happened)."""

    observations: Tensor
    mask: Tensor


def observed(demos: DemoData) -> ObservedDemo:
    """The same demonstrations with their actions dropped."""
    return ObservedDemo(demos.observations, demos.mask)


class ObservationLoss(Configurable, nn.Module):
    """A learned adaptation loss over an observation-only demonstration.

    Each step's input is the policy's predicted action beside the observation; ``layers``
    temporal convolutions of width ``kernel`` (centred, so step ``t`` also sees the next
    observations, from which the demonstrated action can be read) map the sequence to
    ``hidden`` features per step, and the loss is the masked mean over steps of their
    squared norm. Steps outside ``mask`` are zeroed before the convolutions.

    Args:
        obs_dim, act_dim: observation and action sizes.
        hidden: channels of every convolution.
        kernel: odd temporal width of every convolution.
        layers: number of convolutions (ReLU between them).
    """

    def __init__(
        self, obs_dim: int, act_dim: int, hidden: int = 32, kernel: int = 3, layers: int = 2
    ) -> None:
        super().__init__()
        if min(obs_dim, act_dim, hidden, layers) < 1 or kernel < 1 or kernel % 2 == 0:
            raise ValueError(
                "ObservationLoss needs positive sizes and layers and an odd kernel, got "
                f"obs_dim={obs_dim}, act_dim={act_dim}, hidden={hidden}, kernel={kernel}, "
                f"layers={layers}"
            )
        widths = [obs_dim + act_dim] + [hidden] * layers
        self.convs = nn.ModuleList(
            nn.Conv1d(a, b, kernel, padding=kernel // 2) for a, b in zip(widths, widths[1:])
        )

    def forward(self, actions: Tensor, observations: Tensor, mask: Tensor) -> Tensor:
        """The loss (a scalar) for ``actions [..., H, A]`` predicted on
        ``observations [..., H, O]`` with ``mask [..., H]``."""
        x = torch.cat([actions, observations], -1) * mask.unsqueeze(-1)
        lead = x.shape[:-2]
        x = x.reshape(-1, *x.shape[-2:]).transpose(1, 2)  # [N, channels, H]
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if i < len(self.convs) - 1:
                x = F.relu(x)
        per_step = (x**2).sum(1).reshape(*lead, -1)  # [..., H]
        return (per_step * mask).sum() / mask.sum().clamp_min(1.0)


class DomainAdaptiveMAML(MetaLearner):
    """MAML with a learned inner loss over observation-only demonstrations (Yu et al. 2018).

    ``meta_losses(learner.inner_loss(), observed(support), bc_loss(policy), query)`` is the
    objective: adapt on the support demonstrations' observations, clone the query
    demonstrations' actions. The initialisation, the inner step size (when ``learn_lr``)
    and the loss network (``observation_loss``) are all in ``learner.parameters()``. The
    loss network is trained only through the inner step's gradient, so the meta-gradient
    is always second order.

    Args:
        model: a Gaussian policy (``metarl.rl.GaussianMLPPolicy``) whose first output is the
            action mean.
        obs_dim, act_dim: its observation and action sizes.
        inner_lr: the inner step size.
        inner_steps: inner steps in meta-training (and, by default, at test time).
        loss_hidden, loss_kernel, loss_layers: the ``ObservationLoss`` network.
        batching, chunk_size: as for every ``MetaLearner``.
    """

    def __init__(
        self,
        model: nn.Module,
        obs_dim: int,
        act_dim: int,
        inner_lr: float = 0.01,
        inner_steps: int = 1,
        loss_hidden: int = 32,
        loss_kernel: int = 3,
        loss_layers: int = 2,
        batching: BatchingChoice = "auto",
        chunk_size: int | None = None,
    ) -> None:
        super().__init__(model, SGDRule(inner_lr), inner_steps, False, batching, chunk_size)
        self.observation_loss = ObservationLoss(
            obs_dim, act_dim, loss_hidden, loss_kernel, loss_layers
        )

    def inner_loss(self) -> InnerLoss:
        """The learned loss as an inner loss on ``ObservedDemo`` data."""

        def loss(params: Params, demo: ObservedDemo) -> Tensor:
            if not isinstance(demo, ObservedDemo):
                raise TypeError(
                    "the domain-adaptive inner loss takes ObservedDemo data (observations "
                    f"only), got {type(demo).__name__}: pass observed(demos)"
                )
            actions = forward_with(self.model, params, demo.observations)[0]
            return self.observation_loss(actions, demo.observations, demo.mask)

        return loss

    def meta_losses(
        self, inner_loss: InnerLoss, support: object, outer_loss: InnerLoss, query: object
    ) -> Tensor:
        """Per-task outer losses after adapting on ``support`` (see ``MetaLearner``); the
        adaptation is differentiated to second order whatever ``first_order`` says, since
        the loss network learns only through it."""
        if self.first_order:
            raise ValueError("DomainAdaptiveMAML needs second-order meta-gradients")
        return super().meta_losses(inner_loss, support, outer_loss, query)
