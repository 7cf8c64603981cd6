"""CAML: fast context adaptation (Zintgraf, Shiarlis, Kurin, Hofmann and Whiteson, ICML 2019).

The network is shared by all tasks and meta-trained in the outer loop; only a small context
vector, reset to zero for every task, is adapted in the inner loop. In metarl.core terms it
is a ``MetaLearner`` whose parameter dict holds the network's weights plus a ``context``
entry that starts at zero (a buffer, so the outer loop never moves it), and whose inner
rule updates the context alone. Batched adaptation, second-order meta-gradients and the
evaluation helpers work unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from metarl.config import Configurable
from metarl.core.learners import BatchingChoice, MetaLearner
from metarl.core.params import Params, named_params
from metarl.core.rules import SGDRule
from metarl.nn import MLP

CONTEXT = "context"


class ContextMLP(Configurable, nn.Module):
    """An MLP whose input is the example concatenated with the task's context vector."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        context_dim: int = 16,
        hidden: Sequence[int] = (40, 40),
    ) -> None:
        super().__init__()
        self.register_buffer(CONTEXT, torch.zeros(context_dim))
        self.body = MLP(in_features + context_dim, out_features, hidden)
        self.input_shape: tuple[int, ...] = (in_features,)
        self.output_size = out_features

    def forward(self, x: Tensor) -> Tensor:
        context = getattr(self, CONTEXT).expand(*x.shape[:-1], -1)
        return self.body(torch.cat((x, context), dim=-1))


class ContextSGDRule(SGDRule):
    """A gradient step on the context only; every other parameter stays as it is."""

    def step(self, params: Params, grads: Params) -> Params:
        return {
            name: p - self.lr * grads[name] if name == CONTEXT else p for name, p in params.items()
        }


class CAML(MetaLearner):
    """Context adaptation: meta-train a network, adapt a zero-initialised context per task.

    ``model`` must hold a ``context`` buffer that its forward pass reads (``ContextMLP``).
    The paper's inner step size is 1.0 with a 100-dimensional context for classification.
    """

    def __init__(
        self,
        model: nn.Module,
        inner_lr: float = 1.0,
        inner_steps: int = 1,
        first_order: bool = False,
        batching: BatchingChoice = "auto",
        chunk_size: int | None = None,
    ) -> None:
        if CONTEXT not in dict(model.named_buffers()):
            raise ValueError("CAML needs a model with a 'context' buffer (see ContextMLP)")
        rule = ContextSGDRule(inner_lr)
        super().__init__(model, rule, inner_steps, first_order, batching, chunk_size)

    def params(self) -> Params:
        """The network's weights plus the zero context every task starts from."""
        context = getattr(self.model, CONTEXT)
        return {**named_params(self.model), CONTEXT: torch.zeros_like(context)}
