"""Learners describe themselves: every registered one, and meta-RL policies, survive save/load."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import metarl
from metarl.core import MAML, MetaSGD, Reptile
from metarl.learners import LEARNERS, learner_names, make_learner
from metarl.nn import MLP, Conv4Maps
from metarl.rl import GaussianMLPPolicy, MultiTaskSampler, policy_gradient_data, reinforce_loss
from metarl.supervised import ContextMLP

RESULTS = Path(__file__).resolve().parents[1] / "experiments" / "results"


def _perturbed(learner: nn.Module, seed: int = 0) -> nn.Module:
    """Move every weight off its initial value, so a load that kept the defaults would show."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in learner.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return learner


def _learner(name: str) -> nn.Module:
    model = ContextMLP(6, 3, context_dim=4, hidden=(8,)) if name == "caml" else MLP(6, 3, (8,))
    step = {"initial_step": 0.2} if name == "lstm" else {"inner_lr": 0.3}
    return _perturbed(make_learner(name, model, inner_steps=2, **step))


def test_every_registered_learner_is_in_one_family():
    families = [set(learner_names(f)) for f in ("gradient", "metric", "imitation", "context")]
    assert set().union(*families) == set(LEARNERS)
    assert sum(map(len, families)) == len(LEARNERS)
    assert "maml" in families[0] and "protonet" in families[1] and "daml" in families[2]


@pytest.mark.parametrize("name", learner_names("gradient"))
def test_every_registered_learner_round_trips(name, tmp_path):
    learner = _learner(name)
    learner.eval_steps = 3
    metarl.save_learner(tmp_path / "l.pt", learner, extra={"iteration": 7})
    loaded = metarl.load_learner(tmp_path / "l.pt")
    assert type(loaded) is type(learner) and loaded.config == learner.config
    assert loaded.eval_steps == 3 and not loaded.training
    g = torch.Generator().manual_seed(1)
    sx, qx = torch.randn(6, 6, generator=g), torch.randn(9, 6, generator=g)
    sy = torch.tensor([0, 1, 2, 0, 1, 2])
    torch.testing.assert_close(loaded.predict(sx, sy, qx), learner.predict(sx, sy, qx),
                               rtol=0, atol=0)  # fmt: skip
    loss = learner.supervised_loss(F.cross_entropy)
    ours = loaded.adapt(loaded.supervised_loss(F.cross_entropy), (sx, sy), steps=2)
    theirs = learner.adapt(loss, (sx, sy), steps=2)
    for key, value in theirs.items():
        torch.testing.assert_close(ours[key], value, rtol=0, atol=0)


@pytest.mark.parametrize("name", learner_names("metric"))
def test_every_metric_learner_round_trips_and_predicts_as_saved(name, tmp_path):
    model, shape, extra = MLP(6, 4, (8,)), (6,), {}
    if name.startswith("matching") or name in ("siamese", "metanet"):
        extra = {"embedding_dim": 4}
    if name == "relation":  # compares feature maps
        model, shape = Conv4Maps(channels=4, image_size=8, pooled=1, norm="group"), (1, 8, 8)
        extra = {"channels": 4, "map_size": 4}
    learner = _perturbed(make_learner(name, model, **extra))
    metarl.save_learner(tmp_path / "l.pt", learner)
    loaded = metarl.load_learner(tmp_path / "l.pt")
    assert type(loaded) is type(learner) and loaded.config == learner.config
    assert loaded.eval_steps == 0 and not loaded.training
    g = torch.Generator().manual_seed(1)
    sx, qx = torch.randn(6, *shape, generator=g), torch.randn(9, *shape, generator=g)
    sy = torch.tensor([0, 1, 2, 0, 1, 2])
    torch.testing.assert_close(loaded.predict(sx, sy, qx), learner.predict(sx, sy, qx),
                               rtol=0, atol=0)  # fmt: skip


def test_the_domain_adaptive_learner_round_trips_with_its_learned_loss(tmp_path):
    from metarl.imitation import ObservedDemo

    policy = GaussianMLPPolicy(2, 2, hidden=(8,))
    learner = _perturbed(make_learner("daml", policy, obs_dim=2, act_dim=2, inner_lr=0.3))
    metarl.save_learner(tmp_path / "l.pt", learner)
    loaded = metarl.load_learner(tmp_path / "l.pt")
    assert type(loaded) is type(learner) and loaded.config == learner.config
    g = torch.Generator().manual_seed(1)
    demo = ObservedDemo(torch.randn(1, 7, 2, generator=g), torch.ones(1, 7))
    ours = loaded.adapt(loaded.inner_loss(), demo)
    theirs = learner.adapt(learner.inner_loss(), demo)
    for key, value in theirs.items():
        torch.testing.assert_close(ours[key], value, rtol=0, atol=0)
    assert any(not torch.equal(ours[k], v) for k, v in loaded.params().items())  # it moved


@pytest.mark.parametrize(
    "make",
    [lambda p: MAML(p, inner_lr=0.1), lambda p: MetaSGD(p, inner_lr=0.1),
     lambda p: Reptile(p, inner_lr=0.1, inner_steps=2)],
    ids=["maml", "metasgd", "reptile"],
)  # fmt: skip
def test_a_loaded_meta_rl_learner_adapts_and_acts_as_the_saved_one(make, tmp_path):
    env = "metarl/Navigation2D-v0"
    learner = _perturbed(make(GaussianMLPPolicy.for_env(env, hidden=(16,), init_std=0.5)))
    metarl.save_learner(tmp_path / "policy.pt", learner)
    loaded = metarl.load_learner(tmp_path / "policy.pt")
    assert isinstance(loaded.model, GaussianMLPPolicy) and loaded.model.config["hidden"] == (16,)

    def adapt_and_act(one: nn.Module) -> tuple[dict, torch.Tensor]:
        sampler = MultiTaskSampler(env, episodes_per_task=3, horizon=10, seed=3)
        tasks = sampler.sample_tasks(2)
        data = policy_gradient_data(sampler.sample(tasks, one.model))
        adapted = one.adapt_batch(reinforce_loss(one.model), data, first_order=True)
        after = sampler.sample(tasks, one.model, {k: v.detach() for k, v in adapted.items()})
        return adapted, after.actions

    (ours, our_actions), (theirs, their_actions) = adapt_and_act(loaded), adapt_and_act(learner)
    for key, value in theirs.items():
        torch.testing.assert_close(ours[key], value, rtol=0, atol=0)
    torch.testing.assert_close(our_actions, their_actions, rtol=0, atol=0)


def test_a_model_that_does_not_describe_itself_is_refused_with_the_fix(tmp_path):
    learner = MAML(nn.Sequential(nn.Linear(2, 2)), inner_lr=0.1)
    with pytest.raises(TypeError, match="derive it from metarl.config.Configurable"):
        metarl.save_learner(tmp_path / "l.pt", learner)
    assert not (tmp_path / "l.pt").exists()


def test_a_learner_registered_by_a_user_is_made_by_name():
    class Halved(MAML):
        """MAML at half the step size the user asks for."""

        def __init__(self, model: nn.Module, inner_lr: float = 0.1) -> None:
            super().__init__(model, inner_lr=inner_lr / 2)

    metarl.register_learner("halved-maml-test", Halved)
    try:
        learner = metarl.make_learner("halved-maml-test", MLP(2, 1), inner_lr=0.4)
        assert learner.rule.lr == pytest.approx(0.2) and learner.config == {"inner_lr": 0.4}
        with pytest.raises(ValueError, match="already registered"):
            metarl.register_learner("halved-maml-test", Halved)
        with pytest.raises(ValueError, match="fixes"):
            metarl.make_learner("fomaml", MLP(2, 1), first_order=False)
    finally:
        del LEARNERS["halved-maml-test"]


def test_a_checkpoint_of_the_first_format_still_loads():
    path = RESULTS / "omniglot" / "reptile-5way1shot-augboth-adam-seed0" / "learner.pt"
    learner = metarl.load_learner(path)
    assert isinstance(learner, Reptile) and learner.eval_steps == 50
    assert learner.config["inner_rule"] == "adam" and learner.config["inner_batch"] == 10
    x = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert learner.predict(x, torch.arange(5), x, steps=1).shape == (5, 5)


def test_predict_names_what_is_wrong_with_its_inputs():
    from metarl.nn import Conv4

    learner = MAML(Conv4(ways=5, channels=4), inner_lr=0.4)
    x, y = torch.rand(5, 1, 28, 28), torch.arange(5)
    assert learner.predict(x, y, x).shape == (5, 5)
    with pytest.raises(TypeError, match="torch.as_tensor"):
        learner.predict(x.numpy(), y, x)
    with pytest.raises(ValueError, match="query_x holds NaN"):
        learner.predict(x, y, torch.full_like(x, float("nan")))
    with pytest.raises(ValueError, match=r"shape \(1, 32, 32\); this model takes \(1, 28, 28\)"):
        learner.predict(torch.rand(5, 1, 32, 32), y, x)
    with pytest.raises(ValueError, match="5 support examples but labels of shape"):
        learner.predict(x, y[:3], x)
    with pytest.raises(ValueError, match="label 7 is out of range"):
        learner.predict(x, torch.tensor([0, 1, 2, 3, 7]), x)
