"""The LSTM meta-learner (Ravi and Larochelle, ICLR 2017) as a metarl.core inner rule.

The learner's weights are the cell state of an LSTM that runs coordinate-wise (every
weight is one row of a batch; the LSTM's own parameters are shared by all rows):

    h_t           = LSTMCell([grad~, loss~])           (first layer, hidden size ``hidden``)
    f_t           = sigmoid(W_f [h_t, theta_{t-1}, f_{t-1}] + b_f)   (forget gate)
    i_t           = sigmoid(W_i [h_t, theta_{t-1}, i_{t-1}] + b_i)   (input gate: the step size)
    theta_t       = f_t * theta_{t-1} - i_t * grad_t

``grad~`` and ``loss~`` are the gradient and loss preprocessed as in Andrychowicz et al.
(2016). The initial weights theta_0 are meta-learned with the LSTM (the ``MetaLearner``'s
model); like the paper, the gradient and loss enter as inputs without second derivatives
(``first_order=True`` by default).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from metarl.core.learned_optimizer import preprocess
from metarl.core.learners import BatchingChoice, MetaLearner
from metarl.core.params import Params
from metarl.core.rules import StatefulRule


class LSTMRule(StatefulRule):
    """Coordinate-wise two-layer LSTM update (see the module docstring).

    The gates start near ``f = 1`` (keep the weights) and ``i = initial_step`` (a small
    gradient step), so an untrained meta-learner behaves like SGD.
    """

    def __init__(self, hidden: int = 20, initial_step: float = 0.1) -> None:
        super().__init__()
        if not 0 < initial_step < 1:
            raise ValueError(
                f"initial_step is a gate value and must be in (0, 1), got {initial_step}"
            )
        self.hidden = hidden
        self.cell = nn.Linear(4 + hidden, 4 * hidden)  # written out: vmap has no lstm_cell rule
        self.forget = nn.Linear(hidden + 2, 1)
        self.input = nn.Linear(hidden + 2, 1)
        with torch.no_grad():
            for gate in (self.forget, self.input):
                gate.weight.mul_(0.01)
            self.forget.bias.fill_(5.0)
            self.input.bias.fill_(math.log(initial_step / (1 - initial_step)))

    def init_state(self, params: Params) -> Any:
        n = sum(p.numel() for p in params.values())
        like = next(iter(params.values()))
        zeros = like.new_zeros((self.hidden, n))  # feature-major: each gate is one block
        return zeros, zeros, like.new_ones(n), like.new_zeros(n)

    def step_with_state(
        self, params: Params, grads: Params, loss: Tensor, state: Any
    ) -> tuple[Params, Any]:
        # The state is stored feature-major ([hidden, weights]) so that every gate is a
        # contiguous block of one matrix product; the parameters are those of the row-wise
        # formulas in the module docstring, split by what they multiply.
        h, c, f_prev, i_prev = state
        hidden = self.hidden
        theta = torch.cat([p.reshape(-1) for p in params.values()])
        grad = torch.cat([grads[name].reshape(-1) for name in params])
        w_grad, w_loss, w_h = self.cell.weight.split([2, 2, hidden], dim=1)
        shared = self.cell.bias + w_loss @ preprocess(loss.detach())  # the same for every weight
        gates = torch.addmm(
            shared[:, None],
            torch.cat((w_grad, w_h), 1),
            torch.cat((preprocess(grad.detach(), dim=0), h)),
        )
        # split and unbind, not slicing: their backward passes do not zero-fill whole gradients
        in_forget, candidate, out = gates.split([2 * hidden, hidden, hidden])
        sig_in, sig_forget = torch.sigmoid(in_forget).chunk(2)
        c = sig_forget * c + sig_in * torch.tanh(candidate)
        h = torch.sigmoid(out) * torch.tanh(c)
        w_gates = torch.cat((self.forget.weight, self.input.weight))  # [2, hidden + 2]
        b_gates = torch.cat((self.forget.bias, self.input.bias))
        gate_inputs = b_gates[:, None] + w_gates[:, :hidden] @ h + w_gates[:, hidden, None] * theta
        f_in, i_in = gate_inputs.unbind()
        f = torch.sigmoid(f_in + w_gates[0, hidden + 1] * f_prev)
        i = torch.sigmoid(i_in + w_gates[1, hidden + 1] * i_prev)
        theta = f * theta - i * grad
        new, start = {}, 0
        for name, p in params.items():
            new[name] = theta[start : start + p.numel()].view_as(p)
            start += p.numel()
        return new, (h, c, f, i)


class LSTMMetaLearner(MetaLearner):
    """Ravi and Larochelle's meta-learner: an ``LSTMRule`` plus a meta-learned initialisation."""

    def __init__(
        self,
        model: nn.Module,
        inner_steps: int = 5,
        hidden: int = 20,
        initial_step: float = 0.1,
        first_order: bool = True,
        batching: BatchingChoice = "auto",
        chunk_size: int | None = None,
    ) -> None:
        rule = LSTMRule(hidden, initial_step)
        super().__init__(model, rule, inner_steps, first_order, batching, chunk_size)
