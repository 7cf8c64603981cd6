"""Re-score a trained HalfCheetahVel policy's episodes under three forward-velocity measures.

The v1 ids reward ``-|v - goal| - 0.05 |a|^2`` with ``v`` the root's x displacement over the
step divided by its duration; rllab, which the MAML paper used, took the instantaneous
centre-of-mass velocity of the robot instead. This script samples episodes of a trained
``maml_rl.py`` learner before and after one adaptation step on held-out goals and prints
each episode return's mean three ways: as recorded (displacement), with the root's
instantaneous x velocity after the step, and with the whole robot's centre-of-mass x
velocity after the step (``mj_subtreeVel`` of the root body, rllab's measure), and the
control cost's share of it. The last step of each episode, whose next state is not stored,
is left out and the rest scaled to the full length. It also prints how well each stage
tracks its goal: the mean forward velocity of the second half of the episodes per goal, and
the least-squares line of those velocities against the goals (a slope of 1 and intercept of
0 is perfect tracking).

    python experiments/velocity_check.py \\
        --learner experiments/results/mujoco/halfcheetah_vel/maml-trpo-seed0/learner.pt
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import gymnasium as gym
import mujoco
import numpy as np
import torch

import metarl
from metarl.core.params import detach_params
from metarl.rl import MultiTaskSampler
from metarl.rl.episodes import Episodes
from metarl.rl.losses import policy_gradient_data, reinforce_loss
from metarl.utils.cli import JsonObject, json_object, parse_settings


@dataclass
class Settings:
    """Mean returns of one learner's episodes under three forward-velocity measures."""

    learner: str  # a learner.pt written by maml_rl.py for a HalfCheetahVel id
    env: str = "metarl/HalfCheetahVel-v1"  # the id the learner was trained on
    env_kwargs: Annotated[str, JsonObject] = "{}"  # and its arguments (maml_rl.py's)
    tasks: int = 20  # held-out goals
    episodes_per_task: int = 20  # for the adaptation step and for scoring
    horizon: int = 200  # steps per episode
    seed: int = 123  # of the goals and the episodes


def rescored_returns(episodes: Episodes, goals: np.ndarray, env_id: str) -> dict[str, float]:
    """Mean episode return as recorded and with the two instantaneous velocities, and the
    mean control cost."""
    env = gym.make(env_id).unwrapped
    model, data = env.model, env.data
    nq = model.nq - 1  # observations hold qpos[1:] then qvel
    obs, actions = episodes.observations.double().numpy(), episodes.actions.double().numpy()
    rewards = episodes.rewards.double().numpy()
    horizon = obs.shape[2]
    scale = horizon / (horizon - 1)
    totals: dict[str, list[float]] = {
        "recorded": [], "root velocity": [], "centre of mass": [], "control cost": []
    }  # fmt: skip
    for task, goal in enumerate(goals):
        for ep in range(obs.shape[1]):
            after = obs[task, ep, 1:]  # the state after each of the first horizon-1 steps
            action = np.clip(actions[task, ep, :-1], -1.0, 1.0)
            control = 0.05 * (action**2).sum(-1)
            com = np.empty(len(after))
            for t, o in enumerate(after):
                data.qpos[0], data.qpos[1:], data.qvel[:] = 0.0, o[:nq], o[nq:]
                mujoco.mj_forward(model, data)
                mujoco.mj_subtreeVel(model, data)
                com[t] = data.subtree_linvel[1, 0]
            root = after[:, nq]
            totals["recorded"].append(rewards[task, ep, :-1].sum() * scale)
            totals["root velocity"].append((-np.abs(root - goal) - control).sum() * scale)
            totals["centre of mass"].append((-np.abs(com - goal) - control).sum() * scale)
            totals["control cost"].append(-control.sum() * scale)
    return {name: float(np.mean(v)) for name, v in totals.items()}


def velocity_tracking(episodes: Episodes, nq: int) -> np.ndarray:
    """Mean forward (root x) velocity over the second half of each goal's episodes, read from
    observations that hold ``qpos[1:]`` (``nq`` numbers) then ``qvel``."""
    obs = episodes.observations.double().numpy()
    return obs[:, :, obs.shape[2] // 2 :, nq].mean(axis=(1, 2))


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    s = parse_settings(Settings, argv)
    torch.manual_seed(s.seed)
    learner = metarl.load_learner(s.learner)
    policy = learner.model
    env_kwargs = json_object(s.env_kwargs, "--env-kwargs")
    sampler = MultiTaskSampler(
        s.env, s.episodes_per_task, s.horizon, seed=s.seed, env_kwargs=env_kwargs
    )
    tasks = sampler.sample_tasks(s.tasks)
    goals = np.array([task["velocity"] for task in tasks])
    before = sampler.sample(tasks, policy)
    adapted = learner.adapt_batch(
        reinforce_loss(policy), policy_gradient_data(before), first_order=True
    )
    after = sampler.sample(tasks, policy, detach_params(adapted), batched=True)
    nq = gym.make(s.env).unwrapped.model.nq - 1
    results, speeds = {}, {}
    for stage, episodes in (("before", before), ("after one step", after)):
        results[stage] = rescored_returns(episodes, goals, s.env)
        print(f"{stage}: " + ", ".join(f"{k} {v:.1f}" for k, v in results[stage].items()))
        speeds[stage] = velocity_tracking(episodes, nq)
        slope, intercept = np.polyfit(goals, speeds[stage], 1)
        print(f"  velocity vs goal: slope {slope:.2f}, intercept {intercept:.2f}")
        results[stage] |= {"tracking_slope": float(slope), "tracking_intercept": float(intercept)}
    print("goal  velocity before  after one step")
    for i in np.argsort(goals):
        print(f"{goals[i]:.2f}  {speeds['before'][i]:.2f}  {speeds['after one step'][i]:.2f}")
    return results


if __name__ == "__main__":
    main()
