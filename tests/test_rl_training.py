"""Meta-RL training end to end: learners improve, and a resumed run equals an uninterrupted one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import metarl  # noqa: F401
from helpers import load_experiment
from metarl.core import MAML, MetaSGD, Reptile
from metarl.rl import GaussianMLPPolicy, MetaRLTrainer, MultiTaskSampler
from metarl.utils import load_checkpoint


@pytest.mark.parametrize(
    "make, outer, iterations",
    [
        (lambda p: MAML(p, inner_lr=0.1), "trpo", 8),
        (lambda p: MetaSGD(p, inner_lr=0.1), "trpo", 8),
        (lambda p: MAML(p, inner_lr=0.1), "sgd", 8),
        (lambda p: Reptile(p, inner_lr=0.2, inner_steps=3), "reptile", 20),
    ],
    ids=["maml-trpo", "metasgd-trpo", "maml-pg", "reptile"],
)
def test_meta_training_improves_adapted_return_on_navigation(make, outer, iterations):
    torch.manual_seed(0)
    policy = GaussianMLPPolicy.for_env("metarl/Navigation2D-v0", hidden=(32, 32))
    sampler = MultiTaskSampler("metarl/Navigation2D-v0", episodes_per_task=10, horizon=50)
    lr = {"sgd": 1e-2, "reptile": 0.5}.get(outer, 1e-3)
    trainer = MetaRLTrainer(make(policy), sampler, outer, max_kl=0.05, outer_lr=lr)
    tasks = sampler.task_env.sample_tasks(10, np.random.default_rng(99))
    before = trainer.evaluate(tasks, 1)[1].mean().item()
    for _ in range(iterations):
        trainer.meta_step(sampler.sample_tasks(10))
    after = trainer.evaluate(tasks, 1)[1].mean().item()
    assert after > before + 5, f"return after one step went {before:.1f} -> {after:.1f}"


def test_metasgd_trpo_moves_the_step_sizes():
    policy = GaussianMLPPolicy.for_env("metarl/Navigation2D-v0", hidden=(16,))
    learner = MetaSGD(policy, inner_lr=0.1)
    sampler = MultiTaskSampler("metarl/Navigation2D-v0", episodes_per_task=5, horizon=30)
    trainer = MetaRLTrainer(learner, sampler, "trpo", max_kl=0.05)
    before = [a.detach().clone() for a in learner.rule.parameters()]
    trainer.meta_step(sampler.sample_tasks(4))
    assert any(not torch.equal(a, b) for a, b in zip(before, learner.rule.parameters()))


def test_resumed_run_matches_an_uninterrupted_one(tmp_path):
    exp = load_experiment("maml_rl")
    common = ["--tasks-per-batch", "3", "--episodes-per-task", "4", "--horizon", "15",
              "--hidden", "16", "--eval-tasks", "3", "--eval-steps", "1", "--checkpoint-every",
              "2", "--threads", "1", "--seed", "5"]  # fmt: skip
    exp.main([*common, "--iterations", "4", "--out", str(tmp_path / "full")])
    exp.main([*common, "--iterations", "2", "--out", str(tmp_path / "cut")])
    exp.main([*common, "--iterations", "4", "--out", str(tmp_path / "cut"), "--resume"])
    full = load_checkpoint(tmp_path / "full" / "checkpoint.pt")["trainer"]["learner"]
    cut = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["trainer"]["learner"]
    for name, tensor in full.items():
        torch.testing.assert_close(cut[name], tensor, rtol=0, atol=0)
    steps = [line.split(",")[0] for line in (tmp_path / "cut/metrics.csv").read_text().split()]
    assert steps == ["step", "1", "2", "3", "4"]
    assert (tmp_path / "cut" / "learning_curve.png").stat().st_size > 0
    assert list((tmp_path / "cut" / "tensorboard").glob("events.out.tfevents.*"))


def test_evaluate_scales_later_steps():
    """With a near-deterministic policy, a later step scaled to ~0 leaves the returns alone."""
    torch.manual_seed(0)
    policy = GaussianMLPPolicy.for_env("metarl/Navigation2D-v0", hidden=(16,), init_std=1e-3)
    sampler = MultiTaskSampler("metarl/Navigation2D-v0", episodes_per_task=4, horizon=20)
    trainer = MetaRLTrainer(MAML(policy, inner_lr=0.1), sampler, "trpo")
    tasks = sampler.task_env.sample_tasks(3, np.random.default_rng(0))
    frozen = trainer.evaluate(tasks, 2, step_scales=(1.0, 1e-12))
    moving = trainer.evaluate(tasks, 2, step_scales=(1.0, 1.0))
    torch.testing.assert_close(frozen[2], frozen[1], atol=1e-3, rtol=1e-4)
    assert (moving[2] - moving[1]).abs().max() > 1e-2
    with pytest.raises(ValueError, match="step_scales"):
        trainer.evaluate(tasks, 1, step_scales=(1.0, 0.0))
