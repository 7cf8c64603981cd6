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

A distribution registered with a ``vector_entry_point`` (a ``metarl.envs.TaskVectorEnv``:
every built-in one) is stepped through it, every copy in one array operation; the MuJoCo
ones advance all copies in one multi-threaded ``mujoco.batch`` call per step
(``metarl.envs.batched``). While those physics threads run, the policy forward runs on
one torch thread by default (``policy_threads``), leaving them the cores. The vector forms give
exactly the episodes the single environments' own ``step`` would. A distribution without a
vector form is stepped one copy at a time in a Python loop (also the reference, with
``fast=False``). Everything runs in this process: there are no workers to leak or hang.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from gymnasium.envs.registration import load_env_creator
from torch import Tensor, nn
from torch.func import vmap

from metarl.core.params import Params, forward_with
from metarl.envs.wrappers import flatten_task, task_features
from metarl.rl.episodes import Episodes


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
        fast: step the distribution's registered vector form where it has one: the same
            episodes, faster. ``False`` steps each copy in a loop.
        threads: physics threads of a MuJoCo distribution's vector form (default: all
            cores); other distributions take none.
        rescale_actions: map a continuous policy's [-1, 1] actions onto the action box
            (see the module docstring); ``False`` passes actions through unchanged.
        policy_threads: torch threads while sampling (restored afterwards); ``None`` keeps
            torch's setting. ``"auto"``: one while a vector form steps on threads of its own
            (``steps_on_threads``, MuJoCo's), since idle torch threads spin on the cores the
            physics needs (measured: 0.74 of raw MuJoCo throughput with two torch threads,
            0.9-1.0 with one); torch's setting otherwise, where the per-task forward gains
            from it (Navigation2D's adapted weights: 0.53 of the NumPy reference, 0.44 with
            one thread).
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
        policy_threads: int | Literal["auto"] | None = "auto",
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
        vector_form = gym.spec(env_id).vector_entry_point
        self.vectorised = fast and vector_form is not None
        if isinstance(vector_form, str):  # "module:Class", as gymnasium registers it
            vector_form = load_env_creator(vector_form)
        if threads is not None and not getattr(vector_form, "steps_on_threads", False):
            raise ValueError(
                f"threads={threads}: only the vector forms of MuJoCo distributions step on "
                f"threads of their own; {env_id}'s takes none (leave threads=None)"
            )
        self._vector_envs: dict[int, Any] = {}
        self.threads = threads
        self.policy_threads = policy_threads
        self._action_center, self._action_half_range = action_box_affine(
            self.task_env.action_space, rescale_actions
        )
        self.seed(seed)

    @property
    def action_affine(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """``(center, half_range)``: the environment receives ``center + half_range * a``
        for the policy's action ``a``; ``(None, None)`` where actions pass unchanged."""
        return self._action_center, self._action_half_range

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
        deterministic: bool = False,
    ) -> Episodes:
        """Roll out ``policy`` (at ``params``; default its own weights) on every task.

        ``batched`` says whether ``params`` carry a leading task dimension; by default it is
        inferred by comparing shapes with the policy's own parameters. ``deterministic``
        takes the policy's most likely action (``policy.mode``) instead of a sample.
        """
        num_tasks, per_task, horizon = len(tasks), self.episodes_per_task, self.horizon
        n = num_tasks * per_task
        copy_tasks = [tasks[i // per_task] for i in range(n)]
        own_weights = params is None  # then the module is called as it is, without swapping
        params = dict(policy.named_parameters()) if own_weights else params
        if batched is None:  # a policy without parameters (a scripted expert) is not batched
            batched = bool(params) and _is_batched(policy, params)
        if batched and next(iter(params.values())).shape[0] != num_tasks:
            raise ValueError("batched params must have one entry per task")

        seeds = self._rng.integers(0, 2**31 - 1, size=n)
        copies = self._start_copies(copy_tasks, seeds)
        obs = copies.obs
        obs_buf = np.zeros((n, horizon, obs.shape[-1]), np.float32)
        rew_buf = np.zeros((n, horizon), np.float32)
        mask_buf = np.zeros((n, horizon), np.float32)
        act_buf: np.ndarray | None = None
        alive = np.ones(n, dtype=bool)
        final_buf = np.zeros((n, obs.shape[-1]), np.float32)
        ended = np.zeros(n, dtype=bool)
        with torch.no_grad(), _torch_threads(self._sampling_threads(copies)):
            for h in range(horizon):
                obs_t = torch.from_numpy(obs).view(num_tasks, per_task, -1)
                if own_weights:
                    dist = policy(obs_t)
                else:
                    dist = _policy_forward(policy, params, obs_t, batched)
                chosen = (
                    policy.mode(dist) if deterministic else policy.sample(dist, self._generator)
                )
                actions_np = actions_array(policy, chosen.reshape(n, *dist[0].shape[2:-1], -1))
                if act_buf is None:
                    act_buf = np.zeros((n, horizon, *actions_np.shape[1:]), actions_np.dtype)
                obs_buf[:, h], act_buf[:, h], mask_buf[:, h] = obs, actions_np, alive
                active = np.flatnonzero(alive)
                terminated = copies.step(self._env_actions(actions_np), alive, obs, rew_buf[:, h])
                ended[active] = terminated[active]
                final_buf[active] = obs[active]  # the newest observation of each copy
                # A finished copy's last observation is its terminal one, perhaps not
                # finite (a diverged simulation): its padded steps hold zeros instead.
                obs[~alive] = 0.0
                if not alive.any():
                    break
        shape = (num_tasks, per_task, horizon)
        return Episodes(
            observations=torch.from_numpy(obs_buf).view(*shape, -1),
            actions=torch.from_numpy(act_buf).view(*shape, *act_buf.shape[2:]),
            rewards=torch.from_numpy(rew_buf).view(shape),
            mask=torch.from_numpy(mask_buf).view(shape),
            final_observations=torch.from_numpy(final_buf).view(*shape[:2], -1),
            terminated=torch.from_numpy(ended).view(shape[:2]),
        )

    def _start_copies(
        self, copy_tasks: list[Mapping[str, Any]], seeds: np.ndarray | None
    ) -> _Copies:
        """Give copy ``i`` the task ``copy_tasks[i]`` and reset it with ``seeds[i]``; with
        ``seeds=None``, reset the copies of the previous call, tasks and random streams
        kept (the next episode of a trial). Returns the copies, with their first
        observations (plus the task's numbers with ``task_in_observation``)."""
        n = len(copy_tasks)
        seed_list = None if seeds is None else [int(s) for s in seeds]
        if self.vectorised:
            vector_env = self._vector_env(n)
            if seed_list is not None:
                vector_env.set_tasks(copy_tasks)
            obs = vector_env.reset(seed=seed_list)[0]
            copies = _Copies(vector_env, [], np.asarray(obs, dtype=np.float32))
        else:
            while len(self._envs) < n:
                self._envs.append(self._make())
            envs = self._envs[:n]
            if seed_list is not None:
                for env, task in zip(envs, copy_tasks):
                    env.set_task(task)
            seed_list = seed_list or [None] * n
            obs = np.stack([env.reset(seed=s)[0] for env, s in zip(envs, seed_list)])
            copies = _Copies(None, envs, np.asarray(obs, dtype=np.float32))
        if self.task_in_observation:  # the validated tasks, as the environments hold them
            copies.obs = np.concatenate((copies.obs, copies.task_features()), axis=1)
        return copies

    def _sampling_threads(self, copies: _Copies) -> int | None:
        """Torch threads while these copies are stepped (see ``policy_threads``)."""
        if self.policy_threads != "auto":
            return self.policy_threads
        return 1 if getattr(copies.vector_env, "steps_on_threads", False) else None

    def _env_actions(self, actions: np.ndarray) -> np.ndarray:
        """The policy's actions as the environment receives them (see ``action_affine``)."""
        if self._action_half_range is None:
            return actions
        return self._action_center + self._action_half_range * actions

    def _vector_env(self, n: int) -> Any:
        """The distribution's vector form with ``n`` copies (built once per size)."""
        if n not in self._vector_envs:
            self._vector_envs[n] = gym.make_vec(
                self.env_id,
                num_envs=n,
                vectorization_mode="vector_entry_point",
                max_episode_steps=None,  # the horizon is the sampler's
                **({} if self.threads is None else {"threads": self.threads}),
                **self.env_kwargs,
            )
        return self._vector_envs[n]

    def close(self) -> None:
        """Close every environment copy the sampler has built."""
        for env in [*self._envs, *self._vector_envs.values()]:
            env.close()
        self._envs.clear()
        self._vector_envs.clear()


class _Copies:
    """The environment copies of one ``sample`` call, stepped as one vector form or one by one."""

    def __init__(self, vector_env: Any, envs: list[gym.Env], obs: np.ndarray) -> None:
        self.vector_env, self.envs, self.obs = vector_env, envs, obs
        self.env_obs_dim = obs.shape[1]  # the environment's own part of an observation

    def task_features(self) -> np.ndarray:
        """Each copy's validated task as numbers ``[n, features]`` (float32)."""
        if self.vector_env is not None:
            features = np.stack([flatten_task(task) for task in self.vector_env.tasks])
        else:
            features = np.stack([task_features(env) for env in self.envs])
        return features.astype(np.float32)

    def step(
        self, actions: np.ndarray, alive: np.ndarray, obs: np.ndarray, rewards: np.ndarray
    ) -> np.ndarray:
        """Step the copies marked ``alive`` with their ``actions``; write their observations
        into ``obs[:, :env_obs_dim]`` and rewards into ``rewards``, clear ``alive`` where an
        episode ended (all in place) and return the copies' termination flags."""
        d = self.env_obs_dim
        active = np.flatnonzero(alive)
        if self.vector_env is not None:
            o, r, terminated, truncated, _ = self.vector_env.step(actions)
            obs[active, :d], rewards[active] = o[active], r[active]
            alive &= ~(terminated | truncated)
            return terminated
        terminated = np.zeros(len(alive), dtype=bool)
        for i in active:
            o, r, term, trunc, _ = self.envs[i].step(actions[i])
            obs[i, :d], rewards[i], terminated[i] = o, r, term
            if term or trunc:
                alive[i] = False
        return terminated


@contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch threads (``None``: unchanged), then restore."""
    previous = torch.get_num_threads()
    if threads is not None and threads != previous:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


def action_box_affine(
    space: gym.Space, rescale: bool
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Centre and half-range mapping a policy's [-1, 1] onto a bounded Box (``space``);
    ``(None, None)`` for the identity or when ``rescale`` is False."""
    if not rescale or not isinstance(space, gym.spaces.Box):
        return None, None
    low, high = space.low.astype(np.float64), space.high.astype(np.float64)
    if not (np.isfinite(low).all() and np.isfinite(high).all()):
        raise ValueError("rescale_actions needs a bounded action box; pass rescale_actions=False")
    center, half = (high + low) / 2, (high - low) / 2
    if np.allclose(center, 0) and np.allclose(half, 1):
        return None, None
    return center.astype(np.float32), half.astype(np.float32)


def actions_array(policy: nn.Module, actions: Tensor) -> np.ndarray:
    """``[n, ...]`` sampled actions as a NumPy array (``[n]`` for a discrete policy); a
    non-finite continuous action raises (a diverged policy, never sent to the physics)."""
    if policy.discrete:
        return actions.reshape(actions.shape[0]).numpy()
    if not torch.isfinite(actions).all():
        raise FloatingPointError(
            "the policy produced non-finite actions: its parameters diverged "
            "(an inner or outer step size is probably too large)"
        )
    return actions.numpy()


def _is_batched(policy: nn.Module, params: Params) -> bool:
    own = dict(policy.named_parameters())
    name, tensor = next(iter(params.items()))
    return tensor.dim() == own[name].dim() + 1


def _policy_forward(
    policy: nn.Module, params: Params, obs: Tensor, batched: bool
) -> tuple[Tensor, ...]:
    if batched:
        if hasattr(policy, "forward_per_task") and obs.dim() == 3:  # the same values, faster
            return policy.forward_per_task(params, obs)
        return vmap(lambda p, o: forward_with(policy, p, o))(params, obs)
    return forward_with(policy, params, obs)
