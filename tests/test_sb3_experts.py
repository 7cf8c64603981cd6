"""Stable-Baselines3 experts: the training environment, the expert's action scale, and
experiments/train_expert.py (checkpoints, resume, the record make_expert checks)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import metarl  # noqa: F401
from helpers import load_experiment
from metarl.imitation import generate_demos, make_expert
from metarl.imitation.sb3_experts import SB3Expert, expert_training_env
from metarl.utils.checkpoint import load_checkpoint

NAV = "metarl/Navigation2D-v0"


def test_the_training_env_draws_a_task_per_episode_and_shows_it():
    env = expert_training_env(NAV, horizon=5, seed=3)
    goals = []
    for _ in range(3):
        obs, _ = env.reset()
        goals.append(obs[2:].copy())
        assert np.allclose(obs[2:], env.unwrapped.task["goal"])
    assert not np.allclose(goals[0], goals[1])
    again = expert_training_env(NAV, horizon=5, seed=3)
    assert np.allclose(again.reset()[0][2:], goals[0])  # the same stream from the same seed
    ends = [env.step(np.zeros(2, dtype=np.float32))[3] for _ in range(5)]  # standing still
    assert ends == [False] * 4 + [True]  # cut at the horizon


class _FixedModel:
    """Stands in for an SB3 model: acts in Navigation2D's box [-0.1, 0.1]."""

    def __init__(self, env):
        self.action_space = env.action_space

    def predict(self, obs, deterministic=True):
        return np.clip(obs[:, 2:] - obs[:, :2], -0.1, 0.1), None


def test_the_expert_maps_the_models_box_onto_the_policy_scale():
    expert = SB3Expert(_FixedModel(expert_training_env(NAV, horizon=5)))
    obs = torch.tensor([[0.0, 0.0, 0.05, -0.3], [0.1, 0.1, 0.1, 0.12]])
    assert torch.allclose(expert.mode(expert(obs)), torch.tensor([[0.5, -1.0], [0.0, 0.2]]))


def test_train_expert_checkpoints_resumes_and_its_expert_makes_demonstrations(tmp_path):
    script = load_experiment("train_expert")
    out = tmp_path / "expert"
    args = ["--algorithm", "ppo", "--horizon", "20", "--checkpoint-every", "2048",
            "--eval-tasks", "3", "--out", str(out)]  # fmt: skip
    script.main([*args, "--timesteps", "2048"])
    first = load_checkpoint(out / "checkpoint.pt")
    result = script.main([*args, "--timesteps", "4096", "--resume"])
    assert result["timesteps"] == 4096 and first["state"]["timesteps"] == 2048
    rows = (out / "metrics.csv").read_text().splitlines()
    assert [row.split(",")[1] for row in rows[1:]] == ["2048", "4096"]
    assert json.loads((out / "expert.json").read_text())["algorithm"] == "ppo"
    expert = make_expert(NAV, policy=out / "expert.zip")
    demos = generate_demos(NAV, expert, num_tasks=2, demos_per_task=1, horizon=20)
    assert demos.actions.abs().max() <= 0.1 + 1e-6
    with pytest.raises(ValueError, match="not an expert for metarl/Navigation2DRandomStart-v0"):
        make_expert("metarl/Navigation2DRandomStart-v0", policy=out / "expert.zip")
    (out / "checkpoint.zip").write_bytes(b"damaged")
    with pytest.raises(SystemExit, match="differs from the one the checkpoint recorded"):
        script.main([*args, "--timesteps", "6144", "--resume"])
