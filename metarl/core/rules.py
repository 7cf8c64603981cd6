"""Inner update rules: how one task's parameters move given the gradient of its inner loss.

A rule is an ``nn.Module`` so that whatever it learns (Meta-SGD's step sizes) is part of the
meta-learner's parameters and receives meta-gradients through ``backward``. Rules are pure
functions of ``(params, grads)``, which is what lets ``vmap`` map them over tasks.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from metarl.core.params import Params


class InnerRule(nn.Module):
    """Base class: ``step(params, grads) -> new params``, a pure function."""

    def step(self, params: Params, grads: Params) -> Params:  # pragma: no cover - interface
        raise NotImplementedError


class StatefulRule(InnerRule):
    """A rule that also sees the inner loss and carries state from step to step.

    ``init_state(params)`` gives the state before the first step (a pytree of tensors, so
    that ``vmap`` maps it over tasks); ``step_with_state(params, grads, loss, state)``
    returns the new parameters and state. The LSTM meta-learner is one.
    """

    def init_state(self, params: Params) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def step_with_state(
        self, params: Params, grads: Params, loss: Tensor, state: Any
    ) -> tuple[Params, Any]:  # pragma: no cover - interface
        raise NotImplementedError


class SGDRule(InnerRule):
    """Plain gradient step with one fixed step size: MAML's inner update (Finn et al., 2017)."""

    def __init__(self, lr: float) -> None:
        super().__init__()
        if not lr > 0:
            raise ValueError(f"inner learning rate must be positive, got {lr}")
        self.lr = float(lr)

    def step(self, params: Params, grads: Params) -> Params:
        return {name: p - self.lr * grads[name] for name, p in params.items()}

    def extra_repr(self) -> str:
        return f"lr={self.lr}"


class AdamRule(StatefulRule):
    """Adam steps in the inner loop, state reset for every task (Reptile's Omniglot runs).

    The Reptile paper adapts with Adam (``betas=(0, 0.999)``, step 0.001) on mini-batches;
    its code keeps the moment estimates from task to task, here every adaptation starts
    from zero moments so that the rule stays a pure function that ``vmap`` can map. The
    first step then moves each weight by about ``lr`` in the direction of minus the sign of
    its gradient.
    """

    def __init__(self, lr: float, betas: tuple[float, float] = (0.0, 0.999), eps: float = 1e-8):
        super().__init__()
        if not lr > 0:
            raise ValueError(f"inner learning rate must be positive, got {lr}")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"Adam betas must lie in [0, 1), got {betas}")
        self.lr, self.betas, self.eps = float(lr), (float(betas[0]), float(betas[1])), float(eps)

    def init_state(self, params: Params) -> dict[str, Any]:
        zeros = {name: torch.zeros_like(p) for name, p in params.items()}
        return {"step": 0, "m": zeros, "v": dict(zeros)}

    def step_with_state(
        self, params: Params, grads: Params, loss: Tensor, state: Any
    ) -> tuple[Params, Any]:
        b1, b2 = self.betas
        t = state["step"] + 1
        m = {n: b1 * state["m"][n] + (1 - b1) * g for n, g in grads.items()}
        v = {n: b2 * state["v"][n] + (1 - b2) * g * g for n, g in grads.items()}
        c1, c2 = 1 - b1**t, 1 - b2**t
        new = {
            n: p - self.lr * (m[n] / c1) / ((v[n] / c2).sqrt() + self.eps)
            for n, p in params.items()
        }
        return new, {"step": t, "m": m, "v": v}

    def extra_repr(self) -> str:
        return f"lr={self.lr}, betas={self.betas}"


class MetaSGDRule(InnerRule):
    """Per-parameter learned step sizes (Meta-SGD, Li et al., 2017): ``p - alpha * g``.

    ``alpha`` has one entry per model weight and is meta-trained with the initialisation.
    ``init`` is either a constant or a ``(low, high)`` range to draw each entry uniformly from
    (the Meta-SGD paper draws from [0.005, 0.1]).
    """

    def __init__(
        self,
        params: Params,
        init: float | tuple[float, float] = 0.01,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.step_sizes = nn.ParameterDict()
        for name, p in params.items():
            if isinstance(init, tuple):
                low, high = init
                alpha = torch.empty_like(p).uniform_(low, high, generator=generator)
            else:
                alpha = torch.full_like(p, float(init))
            # ParameterDict keys may not contain dots.
            self.step_sizes[_key(name)] = nn.Parameter(alpha.detach())

    def step(self, params: Params, grads: Params) -> Params:
        return {name: p - self.step_sizes[_key(name)] * grads[name] for name, p in params.items()}

    def lr_of(self, name: str) -> Tensor:
        """The learned step sizes of one model parameter."""
        return self.step_sizes[_key(name)]


def _key(name: str) -> str:
    return name.replace(".", "__")
