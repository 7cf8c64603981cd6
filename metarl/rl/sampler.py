"""A batched multi-task sampler: every task's episodes in lockstep, one policy forward per step.

``MultiTaskSampler.sample(tasks, policy, params)`` runs ``episodes_per_task`` episodes of up
to ``horizon`` steps for every task and returns padded ``Episodes``. ``params`` is either one
parameter dict shared by all tasks or a batch of adapted parameters with a leading task
dimension; in both cases each time step costs one batched policy forward for all tasks and
episodes (``vmap`` over tasks when the parameters differ). Episodes that end early are
masked, not dropped.

By default a continuous policy acts in normalised units: its action ``a`` in [-1, 1] is
mapped affinely onto the environment's action box (``low + (a + 1) / 2 * (high - low)``)
before the environment clips it, as rllab's ``normalize`` wrapper did for the MAML paper's
experiments. For boxes that already are [-1, 1] (the MuJoCo ones) this is the identity; for
Navigation2D (box [-0.1, 0.1]) it means a standard deviation of 1 is one step's reach. The
episodes hold the policy's own (normalised) actions, so log-probabilities stay consistent.

MuJoCo task distributions take a fast path: all copies advance in one multi-threaded
``mujoco.rollout`` call per step (``metarl.envs.batched.BatchedMujoco``), which gives exactly
the episodes the environments' own ``step`` would; its physics threads are MuJoCo's
persistent pool, created once and shut down by MuJoCo at exit. Other distributions step each
copy in a Python loop. Everything runs in this process: there are no workers to leak or hang.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn
from torch.func import vmap

from metarl.core.params import Params, forward_with
from metarl.envs.wrappers import flatten_task
from metarl.rl.episodes import Episodes

if TYPE_CHECKING:
    from metarl.envs.batched import BatchedMujoco


class MultiTaskSampler:
    """Collect episodes for many tasks of one registered task distribution.

    Args:
        env_id: a registered id whose environment implements the task protocol.
        episodes_per_task: episodes collected for each task.
        horizon: maximum steps per episode.
        seed: seeds the environments' resets and the action noise; the same seed, tasks and
            parameters give the same episodes.
        env_kwargs: passed to ``gymnasium.make``.
        task_in_observation: append the flattened task to every observation (the input of
            an oracle policy that is told its task).
        fast: use batched MuJoCo stepping for MuJoCo distributions (same episodes, faster).
        threads: physics threads for the fast path (default: all cores).
        rescale_actions: map a continuous policy's [-1, 1] actions onto the action box
            (see the module docstring); ``False`` passes actions through unchanged.
    """

    def __init__(
        self,
        env_id: str,
        episodes_per_task: int,
        horizon: int,
        seed: int = 0,
        env_kwargs: Mapping[str, Any] | None = None,
        task_in_observation: bool = False,
        fast: bool = True,
        threads: int | None = None,
        rescale_actions: bool = True,
    ) -> None:
        if episodes_per_task < 1 or horizon < 1:
            raise ValueError("episodes_per_task and horizon must be >= 1")
        self.env_id = env_id
        self.episodes_per_task = int(episodes_per_task)
        self.horizon = int(horizon)
        self.env_kwargs = dict(env_kwargs or {})
        self.task_in_observation = task_in_observation
        self._envs: list[gym.Env] = []
        self.task_env = self._make()
        if not all(hasattr(self.task_env, m) for m in ("sample_tasks", "set_task", "task")):
            raise TypeError(f"{env_id} does not implement the task-distribution protocol")
        self.fast = fast and _is_mujoco_task_env(self.task_env)
        self.threads = threads
        self._action_center, self._action_half_range = _action_affine(
            self.task_env.action_space, rescale_actions
        )
        self._batched: BatchedMujoco | None = None
        self.seed(seed)

    def seed(self, seed: int) -> None:
        """Reset the random streams (environment resets, action noise)."""
        self._rng = np.random.default_rng(seed)
        self._generator = torch.Generator().manual_seed(seed)

    def state(self) -> dict[str, Any]:
        """The random streams' state, for checkpoints (tensors and plain Python values)."""
        return {"numpy": self._rng.bit_generator.state, "torch": self._generator.get_state()}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore the random streams saved by ``state`` (resuming a run)."""
        self._rng.bit_generator.state = state["numpy"]
        self._generator.set_state(state["torch"])

    def sample_tasks(self, num_tasks: int) -> list[dict[str, Any]]:
        """Draw tasks from the distribution with the sampler's own random stream."""
        return self.task_env.sample_tasks(num_tasks, self._rng)

    def _make(self) -> gym.Env:
        return gym.make(self.env_id, disable_env_checker=True, **self.env_kwargs).unwrapped

    def sample(
        self,
        tasks: Sequence[Mapping[str, Any]],
        policy: nn.Module,
        params: Params | None = None,
        batched: bool | None = None,
    ) -> Episodes:
        """Roll out ``policy`` (at ``params``; default its own weights) on every task.

        ``batched`` says whether ``params`` carry a leading task dimension; by default it is
        inferred by comparing shapes with the policy's own parameters.
        """
        num_tasks, per_task, horizon = len(tasks), self.episodes_per_task, self.horizon
        n = num_tasks * per_task
        while len(self._envs) < n:
            self._envs.append(self._make())
        envs = self._envs[:n]
        for i, env in enumerate(envs):
            env.set_task(tasks[i // per_task])
        params = dict(policy.named_parameters()) if params is None else params
        if batched is None:
            batched = _is_batched(policy, params)
        if batched and next(iter(params.values())).shape[0] != num_tasks:
            raise ValueError("batched params must have one entry per task")

        seeds = self._rng.integers(0, 2**31 - 1, size=n)
        batched_envs = self._batched_envs(envs) if self.fast else None
        if batched_envs is not None:
            obs = batched_envs.reset(seeds).astype(np.float32)
        else:
            obs = np.stack([env.reset(seed=int(s))[0] for env, s in zip(envs, seeds)])
            obs = obs.astype(np.float32)
        if self.task_in_observation:
            task_features = np.stack([flatten_task(env.task) for env in envs]).astype(np.float32)
            obs = np.concatenate((obs, task_features), axis=1)
        env_obs_dim = obs.shape[1] - (task_features.shape[1] if self.task_in_observation else 0)
        obs_buf = np.zeros((n, horizon, obs.shape[-1]), np.float32)
        rew_buf = np.zeros((n, horizon), np.float32)
        mask_buf = np.zeros((n, horizon), np.float32)
        act_buf: np.ndarray | None = None
        alive = np.ones(n, dtype=bool)
        with torch.no_grad():
            for h in range(horizon):
                obs_t = torch.from_numpy(obs).view(num_tasks, per_task, -1)
                dist = _policy_forward(policy, params, obs_t, batched)
                actions = policy.sample(dist, self._generator).reshape(n, *dist[0].shape[2:-1], -1)
                if not policy.discrete and not torch.isfinite(actions).all():
                    raise FloatingPointError(
                        "the policy produced non-finite actions: its parameters diverged "
                        "(an inner or outer step size is probably too large)"
                    )
                actions_np = actions.numpy()
                if policy.discrete:
                    actions_np = actions_np.reshape(n)
                if act_buf is None:
                    act_buf = np.zeros((n, horizon, *actions_np.shape[1:]), actions_np.dtype)
                obs_buf[:, h], act_buf[:, h], mask_buf[:, h] = obs, actions_np, alive
                if self._action_half_range is not None:
                    actions_np = self._action_center + self._action_half_range * actions_np
                active = np.flatnonzero(alive)
                if batched_envs is not None:
                    o, r, terminated = batched_envs.step(actions_np, active)
                    obs[active, :env_obs_dim], rew_buf[active, h] = o, r
                    alive[active[terminated]] = False
                else:
                    for i in active:
                        o, r, terminated, truncated, _ = envs[i].step(actions_np[i])
                        obs[i, :env_obs_dim], rew_buf[i, h] = o, r
                        if terminated or truncated:
                            alive[i] = False
                if not alive.any():
                    break
        shape = (num_tasks, per_task, horizon)
        return Episodes(
            observations=torch.from_numpy(obs_buf).view(*shape, -1),
            actions=torch.from_numpy(act_buf).view(*shape, *act_buf.shape[2:]),
            rewards=torch.from_numpy(rew_buf).view(shape),
            mask=torch.from_numpy(mask_buf).view(shape),
        )

    def _batched_envs(self, envs: list[gym.Env]) -> BatchedMujoco:
        from metarl.envs.batched import BatchedMujoco  # MuJoCo only where it is used

        if self._batched is None or self._batched.envs != envs:
            self._batched = BatchedMujoco(envs, self.threads)
        return self._batched

    def close(self) -> None:
        """Close every environment copy the sampler has built."""
        for env in self._envs:
            env.close()
        self._envs.clear()


def _is_mujoco_task_env(env: gym.Env) -> bool:
    """Whether ``env`` is one of metarl's MuJoCo distributions, without importing MuJoCo:
    such an environment exists only once its module has been imported."""
    locomotion = sys.modules.get("metarl.envs.locomotion")
    return locomotion is not None and isinstance(env, locomotion.MujocoTaskEnv)


def _action_affine(space: gym.Space, rescale: bool) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Centre and half-range mapping [-1, 1] onto a bounded Box; ``None`` for identity."""
    if not rescale or not isinstance(space, gym.spaces.Box):
        return None, None
    low, high = space.low.astype(np.float64), space.high.astype(np.float64)
    if not (np.isfinite(low).all() and np.isfinite(high).all()):
        raise ValueError("rescale_actions needs a bounded action box; pass rescale_actions=False")
    center, half = (high + low) / 2, (high - low) / 2
    if np.allclose(center, 0) and np.allclose(half, 1):
        return None, None
    return center.astype(np.float32), half.astype(np.float32)


def _is_batched(policy: nn.Module, params: Params) -> bool:
    own = dict(policy.named_parameters())
    name, tensor = next(iter(params.items()))
    return tensor.dim() == own[name].dim() + 1


def _policy_forward(
    policy: nn.Module, params: Params, obs: Tensor, batched: bool
) -> tuple[Tensor, ...]:
    if batched:
        return vmap(lambda p, o: forward_with(policy, p, o))(params, obs)
    return forward_with(policy, params, obs)
