"""Returns, GAE, baseline, policy-gradient gradients against hand derivations, TRPO's KL bound."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from metarl.core import conjugate_gradient, trpo_step
from metarl.rl import (
    CategoricalMLPPolicy,
    Episodes,
    GaussianMLPPolicy,
    PolicyGradientData,
    discounted_returns,
    fit_linear_baseline,
    gae_advantages,
    normalize_advantages,
    reinforce_loss,
    surrogate_and_kl,
)
from metarl.rl.baselines import baseline_features
from metarl.rl.losses import SurrogateData


def test_discounted_returns_respect_the_mask():
    rewards = torch.tensor([[1.0, 2.0, 3.0, 9.0], [1.0, 1.0, 1.0, 1.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    g = 0.5
    expected = torch.tensor(
        [[1 + g * 2 + g * g * 3, 2 + g * 3, 3, 0], [1 + g + g * g + g**3, 1 + g + g * g, 1 + g, 1]]
    )
    torch.testing.assert_close(discounted_returns(rewards, mask, g), expected)


def test_gae_with_lambda_one_is_returns_minus_values_and_lambda_zero_is_td():
    torch.manual_seed(0)
    rewards, values = torch.randn(3, 6), torch.randn(3, 6)
    mask = torch.ones(3, 6)
    mask[0, 4:] = 0
    gamma = 0.9
    full = gae_advantages(rewards, values, mask, gamma, 1.0)
    torch.testing.assert_close(full, (discounted_returns(rewards, mask, gamma) - values) * mask)
    td = gae_advantages(rewards, values, mask, gamma, 0.0)
    next_v = torch.cat((values[:, 1:] * mask[:, 1:], torch.zeros(3, 1)), dim=1)
    torch.testing.assert_close(td, (rewards + gamma * next_v - values) * mask)
    norm = normalize_advantages(full.unsqueeze(1), mask.unsqueeze(1))
    valid = norm[0, 0, :4]
    assert abs(norm[1].mean()) < 1e-6 and abs(valid.mean()) < 1e-6 and norm[0, 0, 4:].eq(0).all()


def test_linear_baseline_recovers_returns_that_are_linear_in_its_features():
    torch.manual_seed(0)
    obs = torch.rand(2, 4, 10, 1)
    mask = torch.ones(2, 4, 10)
    t = torch.arange(10.0) / 100
    # choose rewards so that discounted returns equal 3*obs + 2*t + 1 exactly (gamma = 0)
    target = 3 * obs[..., 0] + 2 * t + 1
    episodes = Episodes(obs, torch.zeros(2, 4, 10, 1), target, mask)
    values = fit_linear_baseline(episodes, gamma=0.0)
    torch.testing.assert_close(values, target, atol=1e-3, rtol=1e-3)


def test_linear_baseline_with_many_zero_features_matches_a_per_task_ridge_solve():
    """Ant-like observations (half the dimensions always zero, early terminations): the
    batched fit equals NumPy's ridge solution task by task (oneMKL's batched LU hung here)."""
    gen = torch.Generator().manual_seed(0)
    tasks, episodes, horizon, dim = 40, 6, 50, 105
    obs = torch.randn(tasks, episodes, horizon, dim, generator=gen)
    obs[..., dim // 2 :] = 0.0
    lengths = torch.randint(5, horizon + 1, (tasks, episodes), generator=gen)
    mask = (torch.arange(horizon) < lengths[..., None]).float()
    rewards = torch.randn(tasks, episodes, horizon, generator=gen) * mask
    batch = Episodes(obs, torch.zeros(tasks, episodes, horizon, 1), rewards, mask)
    values = fit_linear_baseline(batch, gamma=0.9)
    returns = discounted_returns(rewards.double(), mask.double(), 0.9)
    for k in range(tasks):
        x = baseline_features(obs[k].double(), mask[k].double()).flatten(0, 1).numpy()
        a = x.T @ x + 1e-5 * np.eye(x.shape[1])
        coeffs = np.linalg.solve(a, x.T @ returns[k].flatten().numpy())
        expected = (x @ coeffs).reshape(episodes, horizon) * mask[k].numpy()
        np.testing.assert_allclose(values[k].numpy(), expected, rtol=1e-4, atol=1e-4)


def test_reinforce_gradient_matches_hand_derivation_for_a_categorical_bandit():
    policy = CategoricalMLPPolicy(1, 3, hidden=())
    with torch.no_grad():
        policy.logits[0].weight.zero_()
        policy.logits[0].bias.copy_(torch.tensor([0.2, -0.4, 1.0]))
    actions = torch.tensor([[0, 2, 2, 1]])
    advantages = torch.tensor([[1.0, -0.5, 2.0, 0.3]])
    data = PolicyGradientData(torch.zeros(1, 4, 1), actions, advantages, torch.ones(1, 4))
    params = dict(policy.named_parameters())
    loss = reinforce_loss(policy)(params, PolicyGradientData(*(x[0] for x in data)))
    (grad,) = torch.autograd.grad(loss, [policy.logits[0].bias])
    pi = torch.softmax(torch.tensor([0.2, -0.4, 1.0]), 0)
    onehot = torch.nn.functional.one_hot(actions[0], 3).float()
    expected = -((onehot - pi) * advantages[0, :, None]).mean(0)
    torch.testing.assert_close(grad, expected)


def test_reinforce_gradient_matches_hand_derivation_for_a_gaussian_policy():
    policy = GaussianMLPPolicy(1, 2, hidden=(), init_std=0.5)
    with torch.no_grad():
        policy.mean[0].weight.zero_()
        policy.mean[0].bias.copy_(torch.tensor([0.3, -0.2]))
    actions = torch.tensor([[0.1, 0.4], [0.9, -1.0], [-0.3, 0.0]])
    adv = torch.tensor([0.5, -1.0, 2.0])
    mask = torch.tensor([1.0, 1.0, 0.0])  # the last step is padding and must not count
    data = PolicyGradientData(torch.zeros(3, 1), actions, adv, mask)
    loss = reinforce_loss(policy)(dict(policy.named_parameters()), data)
    g_mean, g_log_std = torch.autograd.grad(loss, [policy.mean[0].bias, policy.log_std])
    mu, sigma = torch.tensor([0.3, -0.2]), 0.5
    z = (actions - mu) / sigma
    w = (adv * mask)[:, None] / mask.sum()
    torch.testing.assert_close(g_mean, -(w * (actions - mu) / sigma**2).sum(0))
    torch.testing.assert_close(g_log_std, -(w * (z**2 - 1)).sum(0))


def test_reinforce_on_every_trajectory_of_a_two_step_mdp_is_the_exact_policy_gradient():
    """Two steps, two actions; the first action picks the second state and both pay rewards.

    At a uniform policy the four trajectories are equally likely, so REINFORCE with
    discounted returns-to-go over exactly those four is the exact gradient of the expected
    return J, which is computed here in closed form: grad(loss) = -(4 / 8) grad(J). (gamma is
    1: with gamma < 1, returns-to-go without the gamma^t weight, as in the MAML code and
    every common implementation, estimate a slightly different direction.)
    """
    gamma = 1.0
    first_reward = torch.tensor([1.0, 0.0])
    second_reward = torch.tensor([[0.0, 2.0], [3.0, -1.0]])  # [a0, a1]
    s0, s1 = torch.tensor([1.0, 0.0]), torch.tensor([[0.0, 1.0], [0.0, -1.0]])  # s1[a0]
    policy = CategoricalMLPPolicy(2, 2, hidden=())
    with torch.no_grad():
        for p in policy.parameters():
            p.zero_()
    layer = policy.logits[0]

    def expected_return() -> torch.Tensor:
        pi0 = torch.softmax(layer(s0), -1)
        pi1 = torch.softmax(layer(s1), -1)  # [a0, a1]
        value = first_reward[:, None] + gamma * second_reward
        return (pi0[:, None] * pi1 * value).sum()

    exact = torch.autograd.grad(expected_return(), [layer.weight, layer.bias])
    pairs = [(a0, a1) for a0 in (0, 1) for a1 in (0, 1)]
    obs = torch.stack([torch.stack((s0, s1[a0])) for a0, _ in pairs])
    actions = torch.tensor(pairs)
    rewards = torch.stack([torch.stack((first_reward[a0], second_reward[a0, a1]))
                           for a0, a1 in pairs])  # fmt: skip
    mask = torch.ones(4, 2)
    data = PolicyGradientData(obs, actions, discounted_returns(rewards, mask, gamma), mask)
    loss = reinforce_loss(policy)(dict(policy.named_parameters()), data)
    ours = torch.autograd.grad(loss, [layer.weight, layer.bias])
    for g, e in zip(ours, exact):
        torch.testing.assert_close(g, -0.5 * e)
    assert exact[1].abs().sum() > 0.1  # the check is not trivially zero == zero


def test_gaussian_kl_and_log_prob_match_torch_distributions():
    mean0, log_std0 = torch.randn(5, 3), torch.randn(5, 3) * 0.3
    mean1, log_std1 = torch.randn(5, 3), torch.randn(5, 3) * 0.3
    p = torch.distributions.Normal(mean0, log_std0.exp())
    q = torch.distributions.Normal(mean1, log_std1.exp())
    kl = GaussianMLPPolicy.kl((mean0, log_std0), (mean1, log_std1))
    torch.testing.assert_close(kl, torch.distributions.kl_divergence(p, q).sum(-1))
    a = torch.randn(5, 3)
    torch.testing.assert_close(
        GaussianMLPPolicy.log_prob((mean0, log_std0), a), p.log_prob(a).sum(-1)
    )


def test_conjugate_gradient_solves_a_spd_system():
    torch.manual_seed(0)
    m = torch.randn(6, 6, dtype=torch.float64)
    a = m @ m.T + 6 * torch.eye(6, dtype=torch.float64)
    b = torch.randn(6, dtype=torch.float64)
    x = conjugate_gradient(lambda v: a @ v, b, iterations=20)
    torch.testing.assert_close(a @ x, b)


@pytest.mark.parametrize("max_kl", [0.001, 0.01])
def test_trpo_step_improves_the_surrogate_within_the_kl_bound(max_kl):
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(3, 2, hidden=(16,))
    obs, actions = torch.randn(200, 3), torch.randn(200, 2)
    adv = torch.randn(200)
    with torch.no_grad():
        old = tuple(t.detach() for t in policy(obs))
    data = SurrogateData(obs, actions, adv, torch.ones(200), old)
    objective = surrogate_and_kl(policy)

    def loss_and_kl():
        out = objective(dict(policy.named_parameters()), data)
        return out[0], out[1]

    before = loss_and_kl()[0].item()
    stats = trpo_step(list(policy.parameters()), loss_and_kl, max_kl=max_kl)
    loss, kl = loss_and_kl()
    assert stats.step_fraction > 0
    assert loss.item() < before
    assert kl.item() <= max_kl * (1 + 1e-6)
    # A step that ignored the trust region would leave it: the bound is doing the work.
    assert kl.item() > 0.1 * max_kl
    assert math.isclose(stats.kl, kl.item(), rel_tol=1e-5)


def test_maml_rl_meta_gradient_matches_finite_differences(float64):
    """The TRPO surrogate after one REINFORCE step, differentiated through the adaptation."""
    from metarl.core import MAML
    from metarl.rl import MultiTaskSampler, policy_gradient_data
    from metarl.rl.losses import surrogate_data

    torch.manual_seed(0)
    policy = GaussianMLPPolicy(2, 2, hidden=(5,), activation="tanh").float()  # sampler: float32
    learner = MAML(policy, inner_lr=0.3)
    sampler = MultiTaskSampler("metarl/Navigation2D-v0", episodes_per_task=3, horizon=6, seed=0)
    tasks = sampler.sample_tasks(2)
    support_episodes, query_episodes = (sampler.sample(tasks, policy) for _ in range(2))
    policy.double()
    inner, outer = reinforce_loss(policy), surrogate_and_kl(policy)

    def as_double(data):
        return type(data)(*(x.double() if torch.is_floating_point(x) else x for x in data))

    support = as_double(policy_gradient_data(support_episodes))
    adapted = learner.adapt_batch(inner, support, first_order=True)
    adapted = {n: p.detach() for n, p in adapted.items()}
    query_data = surrogate_data(policy, adapted, as_double(policy_gradient_data(query_episodes)))

    def objective():
        return learner.meta_losses(inner, support, outer, query_data)[:, 0].mean()

    params = list(policy.parameters())
    analytic = torch.cat([g.flatten() for g in torch.autograd.grad(objective(), params)])
    flat = torch.nn.utils.parameters_to_vector(params).detach()
    numeric = torch.empty_like(flat)
    eps = 1e-6
    with torch.no_grad():
        for i in range(flat.numel()):
            values = []
            for sign in (1, -1):
                shifted = flat.clone()
                shifted[i] += sign * eps
                torch.nn.utils.vector_to_parameters(shifted, params)
                values.append(objective().item())
            numeric[i] = (values[0] - values[1]) / (2 * eps)
    torch.nn.utils.vector_to_parameters(flat, params)
    assert numeric.norm() > 1e-3
    assert (analytic - numeric).norm() / numeric.norm() < 1e-5
