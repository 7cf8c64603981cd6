"""Learning to learn by gradient descent by gradient descent (Andrychowicz et al., NeurIPS 2016).

A coordinate-wise two-layer LSTM proposes each weight's update from that weight's
(preprocessed) gradient; the LSTM's own parameters are shared by every coordinate, so one
optimiser applies to a model of any size:

    x_t            = preprocess(grad_t)                     (2 features per coordinate)
    h1_t, c1_t     = LSTM1(x_t, h1_{t-1}, c1_{t-1})
    h2_t, c2_t     = LSTM2(h1_t, h2_{t-1}, c2_{t-1})
    theta_{t+1}    = theta_t + output_scale * W h2_t

The optimiser is meta-trained by unrolling it on sampled problems and descending the sum of
the optimisee's losses along the trajectory, ``sum_t f(theta_t)``, truncated every
``truncation`` steps (backpropagation through time over each window, the state carried over
detached). Like the paper, the gradients fed to the LSTM are treated as inputs
(``second_order=False``): the meta-gradient ignores how they depend on the optimiser.

``CoordinateLSTMRule`` is a ``StatefulRule``, so ``metarl.core.adapt`` (and any
``MetaLearner``) can use it as an inner rule as well.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import grad_and_value

from metarl.core.params import Params
from metarl.core.rules import StatefulRule
from metarl.utils.checkpoint import load_checkpoint, save_checkpoint

StepLoss = Callable[[Params, int], Tensor]
"""The optimisee's loss at parameters ``params`` and step ``t`` (``t`` picks a mini-batch)."""


def preprocess(x: Tensor, p: float = 10.0, dim: int = -1) -> Tensor:
    """The paper's gradient preprocessing: ``(log|x| / p, sign x)`` where ``|x| >= e^-p``,
    else ``(-1, e^p x)``, stacked along ``dim`` (``[..., 2]`` by default)."""
    big = x.abs() >= math.exp(-p)
    first = torch.where(big, torch.log(x.abs().clamp_min(math.exp(-p))) / p, -torch.ones_like(x))
    second = torch.where(big, torch.sign(x), math.exp(p) * x)
    return torch.stack((first, second), dim=dim)


def lstm_cell(x: Tensor, h: Tensor, c: Tensor, layer: nn.Linear) -> tuple[Tensor, Tensor]:
    """One LSTM step, feature-major (``x: [in, n]``, ``h, c: [hidden, n]``) for ``n``
    coordinates at once; ``layer`` maps ``[x, h]`` to the four gates. Written out because
    ``vmap`` has no rule for ``torch.lstm_cell``."""
    gates = torch.addmm(layer.bias[:, None], layer.weight, torch.cat((x, h)))
    in_gate, forget, candidate, out = gates.chunk(4)
    c = torch.sigmoid(forget) * c + torch.sigmoid(in_gate) * torch.tanh(candidate)
    return torch.sigmoid(out) * torch.tanh(c), c


class CoordinateLSTMRule(StatefulRule):
    """The coordinate-wise LSTM optimiser (see the module docstring).

    Args:
        hidden: units in each of the two LSTM layers (20 in the paper).
        output_scale: factor on the LSTM's output (0.1 in the paper's experiments).
        preprocess_p: the preprocessing's ``p`` (10 in the paper).
    """

    def __init__(self, hidden: int = 20, output_scale: float = 0.1, preprocess_p: float = 10.0):
        super().__init__()
        if hidden < 1:
            raise ValueError(f"hidden must be >= 1, got {hidden}")
        if not output_scale > 0:
            raise ValueError(f"output_scale must be positive, got {output_scale}")
        self.hidden, self.output_scale, self.preprocess_p = hidden, output_scale, preprocess_p
        self.layer1 = nn.Linear(2 + hidden, 4 * hidden)
        self.layer2 = nn.Linear(2 * hidden, 4 * hidden)
        self.out = nn.Linear(hidden, 1)
        with torch.no_grad():  # start near a small gradient-sign step rather than at random
            for layer in (self.layer1, self.layer2):
                layer.bias[hidden : 2 * hidden].fill_(1.0)  # forget gates open

    def init_state(self, params: Params) -> Any:
        n = sum(p.numel() for p in params.values())
        zeros = next(iter(params.values())).new_zeros((self.hidden, n))
        return zeros, zeros, zeros, zeros

    def updates(self, grad: Tensor, state: Any) -> tuple[Tensor, Any]:
        """The proposed change of every coordinate for the flat gradient ``grad: [n]``."""
        h1, c1, h2, c2 = state
        h1, c1 = lstm_cell(preprocess(grad, self.preprocess_p, dim=0), h1, c1, self.layer1)
        h2, c2 = lstm_cell(h1, h2, c2, self.layer2)
        update = (self.out.weight @ h2 + self.out.bias[:, None])[0] * self.output_scale
        return update, (h1, c1, h2, c2)

    def step_with_state(
        self, params: Params, grads: Params, loss: Tensor, state: Any
    ) -> tuple[Params, Any]:
        flat = torch.cat([grads[name].reshape(-1) for name in params])
        update, state = self.updates(flat, state)
        new, start = {}, 0
        for name, p in params.items():
            new[name] = p + update[start : start + p.numel()].view_as(p)
            start += p.numel()
        return new, state

    def extra_repr(self) -> str:
        return f"hidden={self.hidden}, output_scale={self.output_scale}"


def unroll(
    rule: StatefulRule,
    loss: StepLoss,
    params: Params,
    steps: int,
    state: Any = None,
    start: int = 0,
    second_order: bool = False,
) -> tuple[Tensor, Params, Any]:
    """Run ``rule`` for ``steps`` updates from ``params`` on ``loss``.

    Returns the losses after each update, ``[f(theta_{start+1}), ..., f(theta_{start+steps})]``
    (differentiable with respect to the rule's parameters), the final parameters and the
    final state. ``state=None`` starts from ``rule.init_state``; ``start`` offsets the step
    index passed to ``loss``. With ``second_order=False`` the gradients given to the rule are
    constants for the meta-gradient, as in the paper.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    state = rule.init_state(params) if state is None else state
    grads, value = grad_and_value(loss)(params, start)
    losses = []
    for t in range(start + 1, start + steps + 1):
        if not second_order:
            grads = {name: g.detach() for name, g in grads.items()}
        params, state = rule.step_with_state(params, grads, value, state)
        grads, value = grad_and_value(loss)(params, t)
        losses.append(value)
    return torch.stack(losses), params, state


def _detached(tree: Any) -> Any:
    return torch.utils._pytree.tree_map(lambda t: t.detach(), tree)


def meta_train_step(
    rule: StatefulRule,
    optimizer: torch.optim.Optimizer,
    loss: StepLoss,
    params: Params,
    horizon: int = 100,
    truncation: int = 20,
    second_order: bool = False,
    max_grad_norm: float | None = None,
) -> float:
    """One meta-training episode: optimise one sampled problem for ``horizon`` steps, with an
    optimiser update after every ``truncation`` steps on that window's mean loss. Returns
    the mean loss over the whole trajectory."""
    if truncation < 1 or horizon % truncation:
        raise ValueError(f"truncation ({truncation}) must divide horizon ({horizon})")
    params = {name: p.detach().requires_grad_(True) for name, p in params.items()}
    state, total = None, 0.0
    for start in range(0, horizon, truncation):
        losses, params, state = unroll(rule, loss, params, truncation, state, start, second_order)
        optimizer.zero_grad()
        losses.mean().backward()
        if max_grad_norm is not None:
            nn.utils.clip_grad_norm_(rule.parameters(), max_grad_norm)
        optimizer.step()
        total += losses.detach().sum().item()
        params = {name: p.detach().requires_grad_(True) for name, p in params.items()}
        state = _detached(state)
    return total / horizon


def optimize(rule: StatefulRule, loss: StepLoss, params: Params, steps: int) -> Tensor:
    """Evaluation: the losses ``[f(theta_0), ..., f(theta_steps)]`` of ``steps`` updates by
    ``rule``, without building a graph over the trajectory."""
    params = {name: p.detach() for name, p in params.items()}
    state, curve = rule.init_state(params), []
    for t in range(steps + 1):
        grads, value = grad_and_value(loss)(params, t)
        curve.append(value.detach())
        if t < steps:
            with torch.no_grad():
                grads = {name: g.detach() for name, g in grads.items()}
                params, state = rule.step_with_state(params, grads, value.detach(), state)
    return torch.stack(curve)


def hand_designed_curve(name: str, lr: float, loss: StepLoss, params: Params, steps: int) -> Tensor:
    """The losses ``[f(theta_0), ..., f(theta_steps)]`` under a ``torch.optim`` optimiser
    (``"sgd"``, ``"nag"``, ``"rmsprop"`` or ``"adam"``) with step size ``lr``."""
    makers: dict[str, Callable[[Iterator[Tensor]], torch.optim.Optimizer]] = {
        "sgd": lambda p: torch.optim.SGD(p, lr=lr),
        "nag": lambda p: torch.optim.SGD(p, lr=lr, momentum=0.9, nesterov=True),
        "rmsprop": lambda p: torch.optim.RMSprop(p, lr=lr),
        "adam": lambda p: torch.optim.Adam(p, lr=lr),
    }
    if name not in makers:
        raise ValueError(f"unknown optimiser {name!r}; one of {sorted(makers)}")
    params = {n: p.detach().clone().requires_grad_(True) for n, p in params.items()}
    opt = makers[name](iter(params.values()))
    curve = []
    for t in range(steps + 1):
        opt.zero_grad()
        value = loss(params, t)
        curve.append(value.detach())
        if t < steps:
            value.backward()
            opt.step()
    return torch.stack(curve)


RULE_FORMAT = "metarl-learned-optimizer/1"


def save_rule(path: str | os.PathLike, rule: CoordinateLSTMRule) -> Path:
    """Write ``rule`` (its settings and weights) atomically to ``path``; see ``load_rule``."""
    config = {"hidden": rule.hidden, "output_scale": rule.output_scale,
              "preprocess_p": rule.preprocess_p}  # fmt: skip
    return save_checkpoint({"format": RULE_FORMAT, "config": config,
                            "state": rule.state_dict()}, path)  # fmt: skip


def load_rule(path: str | os.PathLike) -> CoordinateLSTMRule:
    """The ``CoordinateLSTMRule`` saved by ``save_rule`` (verified, ``weights_only``)."""
    saved = load_checkpoint(path)
    if saved.get("format") != RULE_FORMAT:
        raise ValueError(f"{path} is not a learned optimiser ({RULE_FORMAT}): "
                         f"its format is {saved.get('format')!r}")  # fmt: skip
    rule = CoordinateLSTMRule(**saved["config"])
    rule.load_state_dict(saved["state"])
    return rule
