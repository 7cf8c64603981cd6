"""The coordinate-wise LSTM optimiser (Andrychowicz et al., 2016) and its optimisee problems."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from metarl.core import adapt_batch
from metarl.core.learned_optimizer import (
    CoordinateLSTMRule,
    hand_designed_curve,
    lstm_cell,
    meta_train_step,
    optimize,
    unroll,
)
from metarl.supervised.optimizees import MLPProblem, QuadraticProblem, mlp_forward


def test_lstm_cell_matches_torch():
    torch.manual_seed(0)
    cell = torch.nn.LSTMCell(3, 5)
    layer = torch.nn.Linear(8, 20)
    with torch.no_grad():
        layer.weight.copy_(torch.cat((cell.weight_ih, cell.weight_hh), 1))
        layer.bias.copy_(cell.bias_ih + cell.bias_hh)
    x, h, c = torch.randn(7, 3), torch.randn(7, 5), torch.randn(7, 5)
    h_ref, c_ref = cell(x, (h, c))
    h_out, c_out = lstm_cell(x.T, h.T, c.T, layer)  # feature-major
    torch.testing.assert_close(h_out.T, h_ref)
    torch.testing.assert_close(c_out.T, c_ref)


def test_quadratic_and_mlp_losses_by_hand():
    g = torch.Generator().manual_seed(0)
    q = QuadraticProblem.sample(batch=3, dim=4, generator=g)
    theta = q.init["theta"]
    expected = sum(((q.w[b] @ theta[b] - q.y[b]) ** 2).sum() for b in range(3)) / 3
    torch.testing.assert_close(q.loss(q.init), expected)

    x, y = torch.randn(50, 6, generator=g), torch.randint(0, 3, (50,), generator=g)
    p = MLPProblem.sample(x, y, hidden=(5,), activation="relu", steps=4, batch_size=8, generator=g)
    rows = p.batches[2]
    hidden = torch.relu(x[rows] @ p.init["w0"].T + p.init["b0"])
    logits = hidden @ p.init["w1"].T + p.init["b1"]
    torch.testing.assert_close(p.loss(p.init, 2), F.cross_entropy(logits, y[rows]))
    assert mlp_forward(p.init, x).shape == (50, 3)
    with pytest.raises(IndexError, match="5 mini-batches"):
        p.loss(p.init, 5)


def test_unrolled_meta_gradient_matches_finite_differences():
    """The meta-gradient through every step (``second_order=True``) against central
    differences of the summed losses along random directions of the LSTM's parameters."""
    torch.manual_seed(0)
    rule = CoordinateLSTMRule(hidden=4, output_scale=0.1).double()
    problem = QuadraticProblem.sample(batch=2, dim=3, generator=torch.Generator().manual_seed(1))
    problem.w, problem.y = problem.w.double(), problem.y.double()
    init = {"theta": problem.init["theta"].double()}

    def meta_loss() -> torch.Tensor:
        return unroll(rule, problem.loss, init, steps=4, second_order=True)[0].sum()

    weights = list(rule.parameters())
    grads = torch.autograd.grad(meta_loss(), weights)
    for seed in range(3):
        direction = [
            torch.randn(w.shape, dtype=w.dtype, generator=torch.Generator().manual_seed(seed))
            for w in weights
        ]
        eps, values = 1e-6, []
        for sign in (1, -1):
            with torch.no_grad():
                for w, d in zip(weights, direction):
                    w.add_(sign * eps * d)
            values.append(meta_loss().item())
            with torch.no_grad():
                for w, d in zip(weights, direction):
                    w.sub_(sign * eps * d)
        numeric = (values[0] - values[1]) / (2 * eps)
        analytic = sum((g * d).sum() for g, d in zip(grads, direction)).item()
        assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-8)


def test_first_order_meta_gradient_treats_gradients_as_inputs():
    """With ``second_order=False`` the meta-gradient equals that of an unroll whose
    gradients were computed beforehand at the same points and fed in as constants."""
    torch.manual_seed(0)
    rule = CoordinateLSTMRule(hidden=4)
    problem = QuadraticProblem.sample(batch=2, dim=3, generator=torch.Generator().manual_seed(2))
    losses, _, _ = unroll(rule, problem.loss, problem.init, steps=3)
    first = torch.autograd.grad(losses.sum(), list(rule.parameters()))

    params, state, manual = dict(problem.init), rule.init_state(problem.init), []
    for _ in range(3):
        theta = params["theta"].detach().requires_grad_(True)
        g = torch.autograd.grad(problem.loss({"theta": theta}), theta)[0]
        params, state = rule.step_with_state(params, {"theta": g}, torch.tensor(0.0), state)
        manual.append(problem.loss(params))
    reference = torch.autograd.grad(torch.stack(manual).sum(), list(rule.parameters()))
    for a, b in zip(first, reference):
        torch.testing.assert_close(a, b)
    second = torch.autograd.grad(
        unroll(rule, problem.loss, problem.init, steps=3, second_order=True)[0].sum(),
        list(rule.parameters()),
    )
    assert any(not torch.allclose(a, b) for a, b in zip(first, second))


def test_rule_under_vmap_matches_the_loop():
    torch.manual_seed(0)
    rule = CoordinateLSTMRule(hidden=6)
    params = {"w": torch.randn(3, 2), "b": torch.randn(3)}
    x, y = torch.randn(4, 5, 2), torch.randn(4, 5, 3)  # four tasks

    def loss(p, data):
        inputs, targets = data
        return ((inputs @ p["w"].T + p["b"] - targets) ** 2).mean()

    out = {
        b: adapt_batch(params, loss, (x, y), rule, steps=3, batching=b) for b in ("vmap", "loop")
    }
    for name in params:
        torch.testing.assert_close(out["vmap"][name], out["loop"][name])


def test_meta_training_beats_the_untrained_optimiser_and_tuned_sgd():
    torch.manual_seed(0)
    rule = CoordinateLSTMRule(hidden=10)
    optimizer = torch.optim.Adam(rule.parameters(), lr=3e-3)
    train = torch.Generator().manual_seed(0)

    def sample(generator):
        return QuadraticProblem.sample(batch=16, dim=4, generator=generator)

    held_out = [sample(torch.Generator().manual_seed(100 + i)) for i in range(4)]

    def final_loss(curve_of) -> float:
        return torch.stack([curve_of(p)[-1] for p in held_out]).mean().item()

    untrained = final_loss(lambda p: optimize(rule, p.loss, p.init, 20))
    for _ in range(150):
        problem = sample(train)
        meta_train_step(rule, optimizer, problem.loss, problem.init, horizon=20, truncation=10)
    trained = final_loss(lambda p: optimize(rule, p.loss, p.init, 20))
    best_sgd = min(
        final_loss(lambda p, lr=lr: hand_designed_curve("sgd", lr, p.loss, p.init, 20))
        for lr in (0.01, 0.03, 0.1, 0.3)
    )
    assert trained < 0.5 * untrained
    assert trained < best_sgd


def test_bad_arguments_are_refused():
    rule = CoordinateLSTMRule(hidden=2)
    problem = QuadraticProblem.sample(batch=1, dim=2)
    with pytest.raises(ValueError, match="steps"):
        unroll(rule, problem.loss, problem.init, steps=0)
    with pytest.raises(ValueError, match="divide"):
        meta_train_step(rule, torch.optim.SGD(rule.parameters(), lr=0.1), problem.loss,
                        problem.init, horizon=10, truncation=3)  # fmt: skip
    with pytest.raises(ValueError, match="unknown optimiser"):
        hand_designed_curve("adagrad", 0.1, problem.loss, problem.init, 3)
    with pytest.raises(ValueError, match="activation"):
        MLPProblem.sample(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long), activation="elu")
