"""The multi-task sampler with its environment copies on Ray actors (``pip install metarl[ray]``).

``RaySampler`` has ``MultiTaskSampler``'s API and gives the same episodes for the same seed:
only the environment copies move. They are split into ``num_workers`` shards, each a Ray
actor holding the distribution's vector form (or its per-copy loop); the policy runs in the
calling process, which draws every seed and every action exactly as the local sampler does,
sends each shard its actions and gathers observations and rewards through Ray's object
store. On a cluster, start Ray there and pass ``address`` (or ``"auto"``); without it a
local Ray instance is started (``ray_init_kwargs``, e.g. ``num_cpus``), its workers at
normal priority (Ray's default niceness of 15 starves them on a machine that is also
training: importing torch in a worker took 75 s instead of 3 here).

A worker that dies mid-batch (a lost node, a killed process) raises
``ray.exceptions.RayActorError`` in the gather; the sampler then builds fresh actors, rewinds
its random streams and collects the whole batch again, up to ``max_retries`` times, so a
retried batch holds the same episodes as an undisturbed one. A gather that takes longer than
``timeout_s`` raises ``TimeoutError`` naming the shard: the sampler never waits forever.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from torch import nn

from metarl.rl.episodes import Episodes
from metarl.rl.sampler import MultiTaskSampler, _Copies

try:
    import ray
    from ray.exceptions import GetTimeoutError, RayActorError
except ImportError:  # pragma: no cover - exercised only without the extra
    ray = None


class _Shard:
    """One worker's copies: a local sampler's machinery, stepped on request."""

    def __init__(self, env_id: str, settings: dict[str, Any]) -> None:
        self.sampler = MultiTaskSampler(env_id, 1, 1, **settings)
        self.copies: _Copies | None = None

    def start(self, tasks: list[dict[str, Any]], seeds: list[int] | None) -> dict[str, Any]:
        seed_array = None if seeds is None else np.asarray(seeds)
        self.copies = self.sampler._start_copies(tasks, seed_array)
        self.obs = self.copies.obs.copy()
        features = self.copies.task_features() if self.sampler.task_in_observation else None
        return {"obs": self.obs, "features": features}

    def step(self, actions: np.ndarray, alive: np.ndarray) -> tuple[np.ndarray, ...]:
        rewards = np.zeros(len(alive), np.float32)
        alive = alive.copy()
        terminated = self.copies.step(actions, alive, self.obs, rewards)
        return self.obs, rewards, alive, terminated

    def pid(self) -> int:
        return os.getpid()


class _RayCopies:
    """The driver's view of the shards: ``_Copies``' interface over Ray actors."""

    vector_env = None  # the physics is elsewhere: torch may use every local core

    def __init__(self, sampler: RaySampler, shards: list[tuple[Any, slice]], started: list):
        self.sampler, self.shards = sampler, shards
        self.obs = np.concatenate([s["obs"] for s in started]).astype(np.float32)
        self.env_obs_dim = self.obs.shape[1]
        self._features = (
            np.concatenate([s["features"] for s in started]) if started[0]["features"] is not None
            else None
        )  # fmt: skip

    def task_features(self) -> np.ndarray:
        assert self._features is not None
        return self._features

    def step(
        self, actions: np.ndarray, alive: np.ndarray, obs: np.ndarray, rewards: np.ndarray
    ) -> np.ndarray:
        futures = [actor.step.remote(actions[part], alive[part]) for actor, part in self.shards]
        results = self.sampler._gather(futures)
        terminated = np.zeros(len(alive), dtype=bool)
        d = self.env_obs_dim
        for (_, part), (o, r, a, t) in zip(self.shards, results):
            active = np.flatnonzero(alive[part]) + part.start
            local = active - part.start
            obs[active, :d], rewards[active] = o[local], r[local]
            alive[part], terminated[part] = a, t
        return terminated


class RaySampler(MultiTaskSampler):
    """``MultiTaskSampler`` whose environment copies run on ``num_workers`` Ray actors.

    Args:
        env_id, episodes_per_task, horizon, seed, **kwargs: as ``MultiTaskSampler``.
        num_workers: actors (shards of the copies).
        address: an existing Ray cluster's address (``"auto"``, ``"ray://host:10001"``);
            ``None`` starts a local instance if Ray is not running yet.
        ray_init_kwargs: passed to ``ray.init`` when this sampler starts Ray.
        timeout_s: longest wait for one step of the shards before ``TimeoutError``.
        max_retries: batches collected again after a worker died (then the error is raised).
    """

    def __init__(
        self,
        env_id: str,
        episodes_per_task: int,
        horizon: int,
        seed: int = 0,
        num_workers: int = 2,
        address: str | None = None,
        ray_init_kwargs: Mapping[str, Any] | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 1,
        **kwargs: Any,
    ) -> None:
        if ray is None:
            raise ImportError("RaySampler needs Ray: pip install 'metarl[ray]'")
        if num_workers < 1 or max_retries < 0 or timeout_s <= 0:
            raise ValueError("num_workers >= 1, max_retries >= 0 and timeout_s > 0 are required")
        super().__init__(env_id, episodes_per_task, horizon, seed=seed, **kwargs)
        if not ray.is_initialized():
            if address is None:
                os.environ.setdefault("RAY_worker_niceness", "0")
            ray.init(address=address, **dict(ray_init_kwargs or {}))
        self.num_workers, self.timeout_s, self.max_retries = num_workers, timeout_s, max_retries
        self._shard_settings = {
            "env_kwargs": self.env_kwargs,
            "task_in_observation": self.task_in_observation,
            "fast": self.vectorised,
            "threads": self.threads,
        }
        self._actors: list[Any] = []
        self.retries = 0  # batches collected again after a worker died

    def _spawn(self) -> None:
        remote = ray.remote(num_cpus=1)(_Shard)
        self._actors = [
            remote.remote(self.env_id, self._shard_settings) for _ in range(self.num_workers)
        ]

    def _gather(self, futures: list[Any]) -> list[Any]:
        try:
            return ray.get(futures, timeout=self.timeout_s)
        except GetTimeoutError as error:
            raise TimeoutError(
                f"a sampler shard did not answer within {self.timeout_s} s (is its node alive?)"
            ) from error

    def _start_copies(
        self, copy_tasks: list[Mapping[str, Any]], seeds: np.ndarray | None
    ) -> _RayCopies:
        if not self._actors:
            self._spawn()
        n = len(copy_tasks)
        bounds = np.linspace(0, n, min(self.num_workers, n) + 1).astype(int)
        parts = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
        shards = list(zip(self._actors, parts))
        futures = [
            actor.start.remote(
                [dict(t) for t in copy_tasks[part]],
                None if seeds is None else [int(s) for s in seeds[part]],
            )
            for actor, part in shards
        ]
        return _RayCopies(self, shards, self._gather(futures))

    def sample(
        self,
        tasks: Sequence[Mapping[str, Any]],
        policy: nn.Module,
        params: Any = None,
        batched: bool | None = None,
        deterministic: bool = False,
    ) -> Episodes:
        """``MultiTaskSampler.sample`` on the actors; a batch whose worker died is collected
        again on fresh actors from the same random state (up to ``max_retries`` times)."""
        for attempt in range(self.max_retries + 1):
            state = copy.deepcopy(self.state())
            try:
                return super().sample(tasks, policy, params, batched, deterministic)
            except RayActorError:
                if attempt == self.max_retries:
                    raise
                self.retries += 1
                self.load_state(state)
                self.close()
        raise AssertionError("unreachable")  # pragma: no cover

    def worker_pids(self) -> list[int]:
        """Process ids of the actors (spawning them if needed): for tests and monitoring."""
        if not self._actors:
            self._spawn()
        return self._gather([actor.pid.remote() for actor in self._actors])

    def close(self) -> None:
        """Stop the actors (Ray itself keeps running) and close local copies."""
        for actor in self._actors:
            ray.kill(actor)
        self._actors = []
        super().close()
