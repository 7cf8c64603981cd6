"""The LSTM meta-learner: SGD as a special case, vmap against loop, learning on episodes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from helpers import assert_vmap_matches_loop
from metarl.core import MAML, TaskBatch
from metarl.nn import MLP
from metarl.supervised.lstm_meta_learner import LSTMMetaLearner, LSTMRule, preprocess


def _batch(tasks: int = 3) -> TaskBatch:
    g = torch.Generator().manual_seed(0)
    return TaskBatch(
        torch.randn(tasks, 6, 4, generator=g), torch.randint(0, 3, (tasks, 6), generator=g),
        torch.randn(tasks, 9, 4, generator=g), torch.randint(0, 3, (tasks, 9), generator=g),
    )  # fmt: skip


def test_preprocessing_by_hand():
    x = torch.tensor([2.0, -1e-3, -1e-6, 0.0])  # e^-10 = 4.5e-5 separates the two branches
    out = preprocess(x)
    torch.testing.assert_close(out[0], torch.tensor([math.log(2.0) / 10, 1.0]))
    torch.testing.assert_close(out[1], torch.tensor([math.log(1e-3) / 10, -1.0]))
    torch.testing.assert_close(out[2], torch.tensor([-1.0, -1e-6 * math.exp(10)]))
    torch.testing.assert_close(out[3], torch.tensor([-1.0, 0.0]))


def test_one_step_matches_a_row_wise_lstm_cell(float64):
    """The rule against the module docstring's formulas written row by row: the first layer
    is torch's own LSTMCell (same gate order), the gates are plain linear maps."""
    torch.manual_seed(0)
    rule = LSTMRule(hidden=5)
    with torch.no_grad():
        for p in rule.parameters():
            p.normal_()
    params = {"w": torch.randn(4, 3), "b": torch.randn(4)}
    grads = {"w": torch.randn(4, 3), "b": torch.randn(4) * 1e-6}  # both preprocessing branches
    loss = torch.tensor(0.8)
    cell = torch.nn.LSTMCell(4, 5)
    with torch.no_grad():
        cell.weight_ih.copy_(rule.cell.weight[:, :4])
        cell.weight_hh.copy_(rule.cell.weight[:, 4:])
        cell.bias_ih.copy_(rule.cell.bias)
        cell.bias_hh.zero_()
    theta = torch.cat([params["w"].reshape(-1), params["b"]])
    grad = torch.cat([grads["w"].reshape(-1), grads["b"]])
    h, c = torch.zeros(16, 5), torch.zeros(16, 5)
    f, i = torch.ones(16), torch.zeros(16)
    state = rule.init_state(params)
    for _ in range(3):
        x = torch.cat((preprocess(grad), preprocess(loss).expand(16, 2)), 1)
        h, c = cell(x, (h, c))
        f = torch.sigmoid(rule.forget(torch.cat((h, theta[:, None], f[:, None]), 1)))[:, 0]
        i = torch.sigmoid(rule.input(torch.cat((h, theta[:, None], i[:, None]), 1)))[:, 0]
        theta = f * theta - i * grad
        params, state = rule.step_with_state(params, grads, loss, state)
        ours = torch.cat([params["w"].reshape(-1), params["b"]])
        torch.testing.assert_close(ours, theta)
        grads = {"w": grads["w"] * 0.5, "b": grads["b"]}
        grad = torch.cat([grads["w"].reshape(-1), grads["b"]])


def test_with_constant_gates_the_rule_is_sgd(float64):
    """Zero gate weights: f = sigmoid(large) ~ 1 and i = the step size; that is SGD."""
    torch.manual_seed(0)
    model = MLP(4, 3, hidden=(8,))
    learner = LSTMMetaLearner(model, inner_steps=3, initial_step=0.2)
    with torch.no_grad():
        for gate in (learner.rule.forget, learner.rule.input):
            gate.weight.zero_()
        learner.rule.forget.bias.fill_(60.0)  # sigmoid(60) == 1 in float64 up to 1e-26
    b = _batch()
    loss = learner.supervised_loss(F.cross_entropy)
    ours = learner.adapt(loss, (b.support_x[0], b.support_y[0]))
    sgd = MAML(model, inner_lr=0.2, inner_steps=3).adapt(loss, (b.support_x[0], b.support_y[0]))
    for name in sgd:
        torch.testing.assert_close(ours[name], sgd[name])


def test_vmap_and_loop_agree_and_the_lstm_gets_meta_gradients(float64):
    torch.manual_seed(0)
    learner = LSTMMetaLearner(MLP(4, 3, hidden=(8,)), inner_steps=2)
    grads = assert_vmap_matches_loop(learner, _batch(), F.cross_entropy)
    names = [n for n, _ in learner.named_parameters()]
    for name in ("rule.input.bias", "rule.cell.weight"):  # the LSTM itself is meta-trained
        assert grads["loop"][names.index(name)].abs().sum() > 0


def test_initial_step_must_be_a_gate_value():
    with pytest.raises(ValueError, match="initial_step"):
        LSTMMetaLearner(MLP(4, 3), initial_step=1.5)
