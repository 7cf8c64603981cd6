"""The multi-task sampler: shapes, masks on early termination, per-task parameters, seeding."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest
import torch

import metarl  # noqa: F401
from metarl.envs import TaskEnv, check_fields, number_field, register_task_distribution
from metarl.rl import CategoricalMLPPolicy, GaussianMLPPolicy, MultiTaskSampler


class Countdown(TaskEnv):
    """Ends after ``length`` steps (the task); reward = 1 per step; obs = steps left."""

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
        self.action_space = gym.spaces.Box(-1, 1, (1,), np.float32)
        self.set_task({"length": 3})

    def draw_task(self, rng):
        return {"length": float(rng.integers(1, 6))}

    def validate_task(self, task):
        check_fields(task, ["length"])
        return {"length": number_field(task, "length", 1, 100)}

    def apply_task(self, task):
        self._length = int(task["length"])

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._left = self._length
        return np.array([self._left], np.float32), {}

    def step(self, action):
        self._left -= 1
        return np.array([self._left], np.float32), 1.0, self._left == 0, False, {}


register_task_distribution("tests/Countdown-v0", Countdown, replace=True)


def test_masks_cover_exactly_the_steps_taken_before_termination():
    sampler = MultiTaskSampler("tests/Countdown-v0", episodes_per_task=3, horizon=6, seed=0)
    policy = GaussianMLPPolicy(1, 1, hidden=(8,))
    tasks = [{"length": 2}, {"length": 5}, {"length": 9}]
    ep = sampler.sample(tasks, policy)
    assert ep.observations.shape == (3, 3, 6, 1) and ep.actions.shape == (3, 3, 6, 1)
    np.testing.assert_array_equal(ep.mask.sum(-1), [[2] * 3, [5] * 3, [6] * 3])
    np.testing.assert_array_equal(ep.returns(), [[2] * 3, [5] * 3, [6] * 3])
    assert (ep.rewards * (1 - ep.mask)).abs().sum() == 0
    # observations are the ones the policy saw: steps left, counting down
    np.testing.assert_array_equal(ep.observations[1, 0, :5, 0], [5, 4, 3, 2, 1])
    assert ep.steps() == 3 * (2 + 5 + 6)


def test_same_seed_same_episodes_and_different_seed_different():
    policy = GaussianMLPPolicy.for_env("metarl/Navigation2D-v0", hidden=(16,))
    runs = []
    for seed in (0, 0, 1):
        sampler = MultiTaskSampler("metarl/Navigation2D-v0", 4, 20, seed=seed)
        runs.append(sampler.sample(sampler.sample_tasks(3), policy))
    assert all(torch.equal(a, b) for a, b in zip(runs[0], runs[1]))
    assert not torch.equal(runs[0].actions, runs[2].actions)


@pytest.mark.parametrize(
    "env_id, threads, expected",
    [
        ("metarl/Navigation2D-v0", 1, 1),
        ("metarl/Navigation2D-v0", None, 2),
        ("metarl/Navigation2D-v0", "auto", 2),  # no physics threads: torch keeps its own
        ("metarl/HalfCheetahVel-v0", "auto", 1),  # MuJoCo's threads get the cores
        ("metarl/HalfCheetahVel-v0", None, 2),
    ],
)
def test_policy_threads_apply_while_sampling_and_are_restored(
    monkeypatch, env_id, threads, expected
):
    torch.set_num_threads(2)
    seen = []
    policy = GaussianMLPPolicy.for_env(env_id, hidden=(16,))
    original = GaussianMLPPolicy.sample
    monkeypatch.setattr(
        GaussianMLPPolicy,
        "sample",
        staticmethod(lambda *a: seen.append(torch.get_num_threads()) or original(*a)),
    )
    sampler = MultiTaskSampler(env_id, 2, 5, seed=0, policy_threads=threads)
    episodes = sampler.sample(sampler.sample_tasks(2), policy)
    assert torch.get_num_threads() == 2
    assert seen == [expected] * 5
    reference = MultiTaskSampler(env_id, 2, 5, seed=0, policy_threads=1)
    monkeypatch.undo()
    assert all(torch.equal(a, b) for a, b in zip(episodes, reference.sample(
        reference.sample_tasks(2), policy)))  # fmt: skip


def test_own_weights_and_the_same_weights_passed_give_the_same_episodes():
    """Without ``params`` the policy is called as it is (no functional swap): same values."""
    policy = GaussianMLPPolicy.for_env("metarl/Navigation2D-v0", hidden=(16,))
    runs = []
    for params in (None, {k: v.clone() for k, v in policy.named_parameters()}):
        sampler = MultiTaskSampler("metarl/Navigation2D-v0", 3, 10, seed=0)
        runs.append(sampler.sample(sampler.sample_tasks(2), policy, params))
    assert all(torch.equal(a, b) for a, b in zip(*runs))


@pytest.mark.parametrize("rescale", [True, False])
def test_per_task_parameters_drive_each_task(rescale):
    """Task i moves i * 0.05 in x per step; with rescaling the policy says so in [-1, 1] units.

    Navigation2D's action box is [-0.1, 0.1]: a normalised action of 0.5 is a step of 0.05.
    Episodes keep the policy's own actions, so log-probabilities stay consistent.
    """
    policy = GaussianMLPPolicy(2, 2, hidden=(), init_std=1e-4)
    params = {n: p.detach().clone().unsqueeze(0).repeat(3, *[1] * p.dim())
              for n, p in policy.named_parameters()}  # fmt: skip
    params["mean.0.weight"].zero_()
    params["mean.0.bias"].zero_()
    step = torch.tensor([0.0, 0.05, 0.1])
    params["mean.0.bias"][:, 0] = step / 0.1 if rescale else step
    sampler = MultiTaskSampler("metarl/Navigation2D-v0", 2, 10, seed=0, rescale_actions=rescale)
    ep = sampler.sample([{"goal": [0.5, 0.5]}] * 3, policy, params, batched=True)
    final_x = ep.observations[:, :, -1, 0]
    np.testing.assert_allclose(final_x, [[0.0] * 2, [0.45] * 2, [0.9] * 2], atol=1e-3)
    np.testing.assert_allclose(ep.actions[:, 0, 0, 0], params["mean.0.bias"][:, 0], atol=1e-3)


def test_discrete_policies_and_bandits():
    sampler = MultiTaskSampler("metarl/BernoulliBandit-v0", episodes_per_task=50, horizon=1)
    policy = CategoricalMLPPolicy.for_env("metarl/BernoulliBandit-v0")
    ep = sampler.sample([{"probs": [1.0, 1.0, 1.0, 1.0, 1.0]}, {"probs": [0.0] * 5}], policy)
    assert ep.actions.shape == (2, 50, 1) and ep.actions.dtype == torch.int64
    np.testing.assert_array_equal(ep.returns().mean(-1), [1.0, 0.0])


def test_bad_arguments():
    with pytest.raises(ValueError):
        MultiTaskSampler("metarl/Navigation2D-v0", 0, 10)
    with pytest.raises(TypeError, match="task-distribution protocol"):
        MultiTaskSampler("CartPole-v1", 1, 10)
    # physics threads belong to the MuJoCo vector forms; elsewhere a clear error at once
    with pytest.raises(ValueError, match="Navigation2D-v0's takes none"):
        MultiTaskSampler("metarl/Navigation2D-v0", 1, 10, threads=1)
    MultiTaskSampler("metarl/HalfCheetahVel-v1", 1, 10, threads=1)


def _thread_count() -> int:
    return len(os.listdir("/proc/self/task"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
def test_no_thread_or_process_outlives_a_failed_sample():
    """The sampler runs in-process; MuJoCo's physics threads must not leak on an exception."""

    class Exploding(GaussianMLPPolicy):
        calls = 0

        def forward(self, obs):
            Exploding.calls += 1
            if Exploding.calls == 3:
                raise RuntimeError("policy failure")
            return super().forward(obs)

    sampler = MultiTaskSampler("metarl/HalfCheetahVel-v0", 4, 10, seed=0, threads=2)
    policy = Exploding(17, 6, hidden=(8,))
    tasks = sampler.sample_tasks(2)
    Exploding.calls = -100  # a full warm-up sample first: lazily created pools exist now
    sampler.sample(tasks, policy)
    before = _thread_count()
    Exploding.calls = 0
    with pytest.raises(RuntimeError, match="policy failure"):
        sampler.sample(tasks, policy)
    assert _thread_count() == before
    assert not multiprocessing.active_children()
    episodes = sampler.sample(tasks, policy)  # still usable afterwards
    assert episodes.mask.sum() == 2 * 4 * 10


def test_diverged_policy_gives_a_clear_error():
    policy = GaussianMLPPolicy.for_env("metarl/Navigation2D-v0", hidden=(8,))
    with torch.no_grad():
        policy.log_std.fill_(float("nan"))
    sampler = MultiTaskSampler("metarl/Navigation2D-v0", 2, 5, seed=0)
    with pytest.raises(FloatingPointError, match="non-finite actions"):
        sampler.sample(sampler.sample_tasks(2), policy)


def test_a_process_interrupted_mid_sample_exits_promptly():
    """KeyboardInterrupt during a MuJoCo sample ends the process: no physics thread keeps it."""
    script = textwrap.dedent(
        """
        import metarl
        from metarl.rl import GaussianMLPPolicy, MultiTaskSampler

        class Interrupting(GaussianMLPPolicy):
            calls = 0

            def forward(self, obs):
                Interrupting.calls += 1
                if Interrupting.calls == 5:
                    raise KeyboardInterrupt
                return super().forward(obs)

        sampler = MultiTaskSampler("metarl/HalfCheetahVel-v0", 4, 20, seed=0, threads=2)
        sampler.sample(sampler.sample_tasks(2), GaussianMLPPolicy(17, 6, hidden=(8,)))
        sampler.sample(sampler.sample_tasks(2), Interrupting(17, 6, hidden=(8,)))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert done.returncode != 0 and b"KeyboardInterrupt" in done.stderr
