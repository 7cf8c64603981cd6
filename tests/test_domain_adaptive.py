"""Domain-adaptive meta-learning and its inverse-dynamics baseline (metarl.imitation)."""

from __future__ import annotations

import pytest
import torch

from metarl import make_learner
from metarl.imitation import (
    DemoData,
    DemoTasks,
    DomainAdaptiveMAML,
    Navigation2DExpert,
    ObservationLoss,
    bc_loss,
    generate_demos,
    observed,
)
from metarl.imitation.evaluate import adapted_rollouts
from metarl.imitation.inverse_dynamics import InverseDynamics, fit_inverse_dynamics, label_demos
from metarl.rl import GaussianMLPPolicy, MultiTaskSampler

NAV = "metarl/Navigation2D-v0"


@pytest.fixture(scope="module")
def nav_tasks():
    noisy = Navigation2DExpert(noise=0.3)  # the taken actions differ from the labels
    return DemoTasks(NAV, generate_demos(NAV, noisy, num_tasks=40, demos_per_task=4, horizon=100))


def test_observation_loss_reads_only_steps_inside_the_mask():
    torch.manual_seed(0)
    loss = ObservationLoss(obs_dim=3, act_dim=2, hidden=8, kernel=3)
    actions, obs = torch.randn(2, 10, 2), torch.randn(2, 10, 3)
    mask = torch.ones(2, 10)
    mask[0, 6:] = 0
    value = loss(actions, obs, mask)
    actions[0, 6:], obs[0, 6:] = 100.0, -100.0  # past the first demonstration's end
    assert loss(actions, obs, mask) == value
    obs[0, 5] += 1.0  # inside it
    assert loss(actions, obs, mask) != value
    with pytest.raises(ValueError, match="odd kernel"):
        ObservationLoss(3, 2, kernel=4)


def test_the_inner_loss_refuses_demonstrations_with_actions(nav_tasks):
    learner = make_learner("daml", GaussianMLPPolicy(2, 2, hidden=(8,)), obs_dim=2, act_dim=2)
    assert isinstance(learner, DomainAdaptiveMAML)
    support, _ = nav_tasks.sample(2)
    single = DemoData(*(t[0] for t in support))
    with pytest.raises(TypeError, match="ObservedDemo"):
        learner.inner_loss()(learner.params(), single)
    learner.first_order = True
    with pytest.raises(ValueError, match="second-order"):
        learner.meta_losses(
            learner.inner_loss(), observed(support), bc_loss(learner.model), support
        )


def _meta_loss(learner, support, query):
    inner, outer = learner.inner_loss(), bc_loss(learner.model)
    return learner.meta_losses(inner, observed(support), outer, query).mean()


def test_meta_gradient_reaches_the_loss_network_and_matches_a_loop_and_finite_differences(
    nav_tasks,
):
    torch.manual_seed(0)
    support, query = (DemoData(*(t.double() for t in d)) for d in nav_tasks.sample(3))
    policy = GaussianMLPPolicy(2, 2, hidden=(16,)).double()
    vmapped = DomainAdaptiveMAML(policy, 2, 2, inner_lr=0.5, loss_hidden=6).double()
    looped = DomainAdaptiveMAML(policy, 2, 2, inner_lr=0.5, loss_hidden=6, batching="loop")
    looped.observation_loss = vmapped.observation_loss  # the same loss network
    weight = vmapped.observation_loss.convs[0].weight
    params = [*policy.mean.parameters(), weight]
    grads = [torch.autograd.grad(_meta_loss(m, support, query), params) for m in (vmapped, looped)]
    for g_vmap, g_loop in zip(*grads):
        torch.testing.assert_close(g_vmap, g_loop)
    assert grads[0][-1].abs().max() > 0  # the loss network learns through the inner step
    eps = 1e-6
    for tensor, grad in ((weight, grads[0][-1]), (policy.mean[0].weight, grads[0][0])):
        for index in ((0, 0, 0), (3, 1, 2)) if tensor is weight else ((0, 0), (5, 1)):
            with torch.no_grad():
                tensor[index] += eps
                up = _meta_loss(vmapped, support, query)
                tensor[index] -= 2 * eps
                down = _meta_loss(vmapped, support, query)
                tensor[index] += eps
            torch.testing.assert_close(grad[index], (up - down) / (2 * eps), rtol=1e-5, atol=1e-9)


def test_transitions_pair_each_step_with_the_observation_it_led_to(nav_tasks):
    data = nav_tasks.transitions()
    keep = data.mask > 0
    moved = data.observations + 0.1 * data.actions.clamp(-1, 1)  # Navigation2D's dynamics
    torch.testing.assert_close(data.next_observations[keep], moved[keep])
    # the taken (noisy) actions, not the expert's labels
    labels = nav_tasks.sample(40, (4, 0), task_ids=range(40))[0].actions
    assert (data.actions - labels)[keep].abs().max() > 0.1


def test_inverse_dynamics_recovers_held_out_actions(nav_tasks):
    torch.manual_seed(0)
    model = InverseDynamics(2, 2, hidden=(32, 32))
    losses = fit_inverse_dynamics(model, nav_tasks.transitions(), steps=400, lr=3e-3)
    assert losses[-1] < 0.1 * losses[0]
    held_out = DemoTasks(NAV, generate_demos(NAV, Navigation2DExpert(), 5, 1, 100, seed=1))
    data = held_out.transitions()
    labelled = label_demos(model, data._replace(actions=torch.zeros_like(data.actions)))
    keep = data.mask > 0
    error = (labelled.actions - data.actions.clamp(-1, 1))[keep].pow(2).mean()
    assert error < 0.05 * data.actions.clamp(-1, 1)[keep].pow(2).mean()


def test_a_few_hundred_iterations_learn_a_loss_that_adapts_from_observations(nav_tasks):
    """Meta-trained, one step on the learned loss over an observation-only demonstration
    of a held-out task clones that task's actions far better than the unadapted policy."""
    torch.manual_seed(0)
    held_out = DemoTasks(NAV, generate_demos(NAV, Navigation2DExpert(), 20, 2, 100, seed=1))
    support, query = held_out.sample(20, (1, 1), task_ids=range(20))
    policy = GaussianMLPPolicy(2, 2, hidden=(64, 64))
    learner = DomainAdaptiveMAML(policy, 2, 2, inner_lr=0.1)
    bc = bc_loss(policy)

    def held_out_loss(steps: int) -> float:
        with torch.no_grad():
            adapted = learner.adapt_batch(
                learner.inner_loss(), observed(support), steps=steps, first_order=True
            )
            return learner.task_losses(bc, adapted, query).mean().item()

    optimiser = torch.optim.Adam(learner.parameters(), 1e-3)
    for _ in range(300):
        s, q = nav_tasks.sample(10)
        loss = _meta_loss(learner, s, q)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    before, after = held_out_loss(0), held_out_loss(1)
    assert after < 0.5 * before, (before, after)
    sampler = MultiTaskSampler(NAV, 1, 100, seed=2)
    returns = [
        adapted_rollouts(learner, observed(support), held_out.tasks, sampler, steps=k,
                         inner_loss=learner.inner_loss()).mean_return().mean().item()
        for k in (0, 1)
    ]  # fmt: skip
    assert returns[1] > 0.5 * returns[0], returns  # returns are negative distances
