"""Trust-region steps (Schulman et al., 2015) on any differentiable objective with a KL.

The objective may differentiate through inner adaptation (MAML-TRPO): the Fisher-vector
products are Hessian-vector products of the mean KL, taken by double backward through
whatever graph ``loss_and_kl`` builds, or through the cheaper graph of a KL on a subsample of
the batch (``curvature_kl``; OpenAI baselines' TRPO uses every 5th sample). The gradient, the
trust region and the line search always use the whole batch. ``TRPO`` is the outer step a
meta-RL trainer takes; ``trpo_step`` is the same update as a function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from metarl.core.params import flat_gradient


def conjugate_gradient(
    matvec: Callable[[Tensor], Tensor], b: Tensor, iterations: int = 10, tol: float = 1e-10
) -> Tensor:
    """Solve ``A x = b`` for symmetric positive-definite ``A`` given only ``x -> A x``."""
    x = torch.zeros_like(b)
    r, p = b.clone(), b.clone()
    rr = r @ r
    for _ in range(iterations):
        if rr < tol:
            break
        ap = matvec(p)
        alpha = rr / (p @ ap)
        x += alpha * p
        r -= alpha * ap
        rr_new = r @ r
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


@dataclass
class TRPOStats:
    """What one ``trpo_step`` did: surrogate before and after, KL reached, step fraction."""

    loss_before: float
    loss_after: float
    kl: float
    step_fraction: float  # 0 when every backtracking step was rejected


def trpo_step(
    params: Sequence[Tensor],
    loss_and_kl: Callable[[], tuple[Tensor, Tensor]],
    max_kl: float = 0.01,
    damping: float = 1e-5,
    cg_iterations: int = 10,
    backtrack_ratio: float = 0.8,
    max_backtracks: int = 15,
    curvature_kl: Callable[[], Tensor] | None = None,
) -> TRPOStats:
    """One TRPO update of ``params`` in place.

    ``loss_and_kl()`` evaluates the surrogate loss (to minimise) and the mean KL between the
    data-collecting policy and the policy at the current ``params``. The step direction is
    ``-F^-1 g`` by conjugate gradient, scaled to the KL bound, then shrunk by
    ``backtrack_ratio`` until the loss improves and the KL stays within ``max_kl``; if no
    step qualifies, ``params`` are unchanged. ``F`` is the Hessian of the KL at ``params``
    (the Fisher matrix), of ``curvature_kl()`` if given (e.g. the KL on part of the batch),
    else of ``loss_and_kl``'s.
    """
    params = list(params)
    loss, kl = loss_and_kl()
    grads = torch.autograd.grad(loss, params, retain_graph=curvature_kl is None, allow_unused=True)
    g = flat_gradient(grads, params)
    if curvature_kl is not None:
        kl = curvature_kl()
    kl_grads = torch.autograd.grad(kl, params, create_graph=True, allow_unused=True)
    flat_kl_grad = flat_gradient(kl_grads, params)

    def fisher_vector(v: Tensor) -> Tensor:
        hv = torch.autograd.grad(flat_kl_grad @ v, params, retain_graph=True, allow_unused=True)
        return flat_gradient(hv, params) + damping * v

    direction = conjugate_gradient(fisher_vector, -g, cg_iterations)
    curvature = direction @ fisher_vector(direction)
    if not torch.isfinite(curvature) or curvature <= 0:
        return TRPOStats(loss.item(), loss.item(), 0.0, 0.0)
    full_step = direction * torch.sqrt(2 * max_kl / curvature)
    old = parameters_to_vector(params).detach()
    loss_before = loss.item()
    with torch.no_grad():
        for k in range(max_backtracks):
            fraction = backtrack_ratio**k
            vector_to_parameters(old + fraction * full_step, params)
            new_loss, new_kl = loss_and_kl()
            if new_loss.item() < loss_before and new_kl.item() <= max_kl:
                return TRPOStats(loss_before, new_loss.item(), new_kl.item(), fraction)
        vector_to_parameters(old, params)
    return TRPOStats(loss_before, loss_before, 0.0, 0.0)


@dataclass
class TRPO:
    """The TRPO outer step: pass ``TRPO(max_kl=0.01)`` where a torch optimiser could go.

    Args:
        max_kl: trust-region size (mean KL between the data-collecting and new policy).
        damping: added to the Fisher matrix's diagonal for the conjugate-gradient solve.
        cg_iterations: conjugate-gradient iterations per step.
        backtrack_ratio: line-search shrink factor, in (0, 1).
        max_backtracks: line-search trials before the step is rejected.
        fisher_every: the Fisher-vector products use every n-th element of the batch (a
            meta-RL trainer: every n-th task of the meta-batch); 1 uses all of it, the exact
            step. Each product then costs about 1/n as much; the gradient, the KL bound and
            the line search still use the whole batch.
    """

    max_kl: float = 0.01
    damping: float = 1e-5
    cg_iterations: int = 10
    backtrack_ratio: float = 0.8
    max_backtracks: int = 15
    fisher_every: int = 1

    def __post_init__(self) -> None:
        problems = [
            f"{name} must be {rule}, got {value}"
            for name, value, ok, rule in (
                ("max_kl", self.max_kl, self.max_kl > 0, "> 0"),
                ("damping", self.damping, self.damping >= 0, ">= 0"),
                ("cg_iterations", self.cg_iterations, self.cg_iterations >= 1, ">= 1"),
                ("backtrack_ratio", self.backtrack_ratio, 0 < self.backtrack_ratio < 1,
                 "in (0, 1)"),
                ("max_backtracks", self.max_backtracks, self.max_backtracks >= 1, ">= 1"),
                ("fisher_every", self.fisher_every, self.fisher_every >= 1, ">= 1"),
            )
            if not ok
        ]  # fmt: skip
        if problems:
            raise ValueError("TRPO: " + "; ".join(problems))

    def step(
        self,
        params: Sequence[Tensor],
        loss_and_kl: Callable[[], tuple[Tensor, Tensor]],
        curvature_kl: Callable[[], Tensor] | None = None,
    ) -> TRPOStats:
        """One trust-region update of ``params`` in place (see ``trpo_step``).

        ``curvature_kl`` is the KL on every ``fisher_every``-th element of the batch; the
        caller builds it (it knows the batch), and may leave it out when ``fisher_every`` is 1.
        """
        if self.fisher_every > 1 and curvature_kl is None:
            raise ValueError(
                f"TRPO(fisher_every={self.fisher_every}) needs curvature_kl, the KL on every "
                f"{self.fisher_every}-th element of the batch"
            )
        return trpo_step(
            params,
            loss_and_kl,
            self.max_kl,
            self.damping,
            self.cg_iterations,
            self.backtrack_ratio,
            self.max_backtracks,
            curvature_kl if self.fisher_every > 1 else None,
        )

    def state_dict(self) -> dict[str, Any]:
        """TRPO keeps no state between steps; present so trainers checkpoint any outer step."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to restore (see ``state_dict``)."""
