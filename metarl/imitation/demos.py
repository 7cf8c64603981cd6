"""Expert demonstrations of sampled tasks: generated with the fast sampler, stored in Minari.

A dataset is a folder: a Minari dataset (``data/main_data.hdf5`` and ``data/metadata.json``,
readable by ``minari.MinariDataset(folder / "data")``; actions as the environment received
them) and ``metarl.json``, which records what Minari does not hold: the format version, the
environment id, every task, which task each episode demonstrates, how the data was made
(expert, seed, horizon) and the sha256 of the HDF5 file. ``load_demos`` checks all of it and
raises ``DemoDatasetError`` naming the file and the problem for a missing, truncated,
modified or inconsistent dataset: nothing is skipped silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from metarl.rl.sampler import MultiTaskSampler

FORMAT = "metarl-demonstrations"
VERSION = 1
_SIDECAR = "metarl.json"
_HDF5 = Path("data") / "main_data.hdf5"


class DemoDatasetError(Exception):
    """A demonstration dataset that cannot be used: missing, truncated, modified or
    inconsistent. The message names the file and the problem."""


@dataclass
class Demonstrations:
    """Demonstrations grouped by task: ``[tasks, demos, horizon, ...]`` tensors with a mask.

    ``actions`` are the actions taken, as the environment received them (its action box);
    ``expert_actions`` are the expert's most likely actions at the same observations, the
    labels behaviour cloning learns from (they differ from ``actions`` where the expert
    acted with noise). ``mask`` is 1 where a step happened; ``final_observations`` and
    ``terminated`` say how each demonstration ended. ``info`` records how they were made
    (expert, seed, horizon).
    """

    env_id: str
    tasks: list[dict[str, Any]]
    observations: Tensor  # [T, D, H, obs_dim]
    actions: Tensor  # [T, D, H, act_dim] or [T, D, H] (discrete)
    expert_actions: Tensor  # like actions
    rewards: Tensor  # [T, D, H]
    mask: Tensor  # [T, D, H]
    final_observations: Tensor  # [T, D, obs_dim]
    terminated: Tensor  # [T, D] bool
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def num_tasks(self) -> int:
        return self.mask.shape[0]

    @property
    def demos_per_task(self) -> int:
        return self.mask.shape[1]

    def returns(self) -> Tensor:
        """Undiscounted return of each demonstration ``[T, D]``."""
        return (self.rewards * self.mask).sum(-1)


def generate_demos(
    env_id: str,
    expert: nn.Module,
    num_tasks: int,
    demos_per_task: int,
    horizon: int,
    seed: int = 0,
    task_in_observation: bool = True,
    env_kwargs: Mapping[str, Any] | None = None,
    expert_name: str | None = None,
) -> Demonstrations:
    """Roll out ``expert`` on ``num_tasks`` tasks drawn with ``seed``, ``demos_per_task``
    episodes of at most ``horizon`` steps each, recording the actions it takes
    (``expert.sample``) and, as labels, its most likely ones (``expert.mode``).

    The expert sees the task appended to its observations if ``task_in_observation``; the
    demonstrations hold the environment's observations only. The same arguments give the
    same demonstrations.
    """
    if num_tasks < 1 or demos_per_task < 1 or horizon < 1:
        raise ValueError(
            "num_tasks, demos_per_task and horizon must be >= 1, got "
            f"{num_tasks}, {demos_per_task}, {horizon}"
        )
    sampler = MultiTaskSampler(
        env_id,
        demos_per_task,
        horizon,
        seed=seed,
        env_kwargs=env_kwargs,
        task_in_observation=task_in_observation,
    )
    try:
        tasks = sampler.sample_tasks(num_tasks)
        episodes = sampler.sample(tasks, expert)
        with torch.no_grad():
            labels = expert.mode(expert(episodes.observations))
        obs_dim = sampler.task_env.observation_space.shape[0]
        center, half = sampler.action_affine
    finally:
        sampler.close()
    actions = torch.stack((episodes.actions, labels.to(episodes.actions.dtype)))
    if half is not None:  # the expert acts in [-1, 1]: store what the environment gets
        actions = torch.as_tensor(center) + torch.as_tensor(half) * actions
    actions = actions * _expand_like(episodes.mask, actions[0])
    return Demonstrations(
        env_id=env_id,
        tasks=[json.loads(json.dumps(task, default=_plain)) for task in tasks],
        observations=episodes.observations[..., :obs_dim],  # zeros after each end already
        actions=actions[0],
        expert_actions=actions[1],
        rewards=episodes.rewards,
        mask=episodes.mask,
        final_observations=episodes.final_observations[..., :obs_dim],
        terminated=episodes.terminated,
        info={
            "expert": expert_name or type(expert).__name__,
            "seed": seed,
            "horizon": horizon,
            "env_kwargs": dict(env_kwargs or {}),
        },
    )


def save_demos(demos: Demonstrations, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``demos`` as a dataset folder at ``path`` (see the module docstring).

    The folder is built beside ``path`` and renamed into place, so a dataset is never half
    written; an existing one is refused unless ``overwrite``.
    """
    import minari
    from minari.data_collector import EpisodeBuffer

    target = Path(path).resolve()  # Minari needs an absolute root
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    buffers, task_of_episode = [], []
    lengths = demos.mask.sum(-1).long()
    for t in range(demos.num_tasks):
        for d in range(demos.demos_per_task):
            n = int(lengths[t, d])
            obs = torch.cat((demos.observations[t, d, :n], demos.final_observations[t, d, None]))
            terminations = [False] * n
            terminations[-1] = bool(demos.terminated[t, d])
            labels = demos.expert_actions[t, d, :n].numpy()  # aligned with the observations:
            unknown = np.full((1, *labels.shape[1:]), np.nan, labels.dtype)  # none at the end

            buffers.append(
                EpisodeBuffer(
                    id=len(buffers),
                    observations=obs.numpy(),
                    actions=demos.actions[t, d, :n].numpy(),
                    rewards=demos.rewards[t, d, :n].tolist(),
                    terminations=terminations,
                    truncations=[not terminations[-1] if i == n - 1 else False for i in range(n)],
                    infos={"expert_action": np.concatenate((labels, unknown))},
                )
            )
            task_of_episode.append(t)
    build = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    previous_root = os.environ.get("MINARI_DATASETS_PATH")
    try:
        os.environ["MINARI_DATASETS_PATH"] = str(build / "root")
        with warnings.catch_warnings():  # Minari's advice on optional metadata
            warnings.simplefilter("ignore", UserWarning)
            minari.create_dataset_from_buffers(
                f"metarl/demonstrations-v{VERSION}",
                buffers,
                env=demos.env_id,
                algorithm_name=str(demos.info.get("expert", "expert")),
                author="metarl",
                description=f"Expert demonstrations of {demos.env_id} tasks (metarl)",
                data_format="hdf5",
            )
        dataset = build / "dataset"
        (build / "root" / "metarl" / f"demonstrations-v{VERSION}").rename(dataset)
        sidecar = {
            "format": FORMAT,
            "version": VERSION,
            "env_id": demos.env_id,
            "tasks": demos.tasks,
            "task_of_episode": task_of_episode,
            "demos_per_task": demos.demos_per_task,
            "horizon": demos.mask.shape[2],
            "info": demos.info,
            "sha256": _sha256(dataset / _HDF5),
        }
        (dataset / _SIDECAR).write_text(json.dumps(sidecar, indent=1))
        if target.exists():
            shutil.rmtree(target)
        dataset.rename(target)
    finally:
        if previous_root is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous_root
        shutil.rmtree(build, ignore_errors=True)
    return target


def load_demos(path: str | os.PathLike) -> Demonstrations:
    """Read a dataset folder written by ``save_demos``, checking it first (see the module
    docstring); raises ``DemoDatasetError`` naming the file and the problem."""
    folder = Path(path)
    sidecar_path, hdf5 = folder / _SIDECAR, folder / _HDF5
    for needed in (sidecar_path, hdf5):
        if not needed.is_file():
            raise DemoDatasetError(f"{needed}: missing; is {folder} a demonstration dataset?")
    try:
        sidecar = json.loads(sidecar_path.read_text())
        fmt, version = sidecar["format"], sidecar["version"]
        env_id, tasks = sidecar["env_id"], sidecar["tasks"]
        task_of_episode, per_task = sidecar["task_of_episode"], sidecar["demos_per_task"]
        checksum, horizon = sidecar["sha256"], int(sidecar["horizon"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise DemoDatasetError(f"{sidecar_path}: unreadable or incomplete ({err!r})") from err
    if fmt != FORMAT or version != VERSION:
        raise DemoDatasetError(
            f"{sidecar_path}: format {fmt!r} version {version!r}, this metarl reads "
            f"{FORMAT!r} version {VERSION}"
        )
    if _sha256(hdf5) != checksum:
        raise DemoDatasetError(
            f"{hdf5}: its content does not match the sha256 recorded in {_SIDECAR} "
            "(truncated, modified or corrupt); generate the dataset again"
        )
    if len(task_of_episode) != len(tasks) * per_task or any(
        task_of_episode.count(t) != per_task for t in range(len(tasks))
    ):
        raise DemoDatasetError(
            f"{sidecar_path}: task_of_episode does not give {per_task} episodes to each of "
            f"the {len(tasks)} tasks"
        )
    episodes = _read_episodes(folder, len(task_of_episode), horizon)
    by_task: list[list[Any]] = [[] for _ in tasks]
    for task, episode in zip(task_of_episode, episodes):
        by_task[task].append(episode)
    first = episodes[0]
    obs = np.zeros((len(tasks), per_task, horizon, *first.observations.shape[1:]), np.float32)
    act = np.zeros((len(tasks), per_task, horizon, *first.actions.shape[1:]), first.actions.dtype)
    labels = np.zeros_like(act)
    rew = np.zeros((len(tasks), per_task, horizon), np.float32)
    mask = np.zeros((len(tasks), per_task, horizon), np.float32)
    final = np.zeros((len(tasks), per_task, *first.observations.shape[1:]), np.float32)
    terminated = np.zeros((len(tasks), per_task), bool)
    for t, demos in enumerate(by_task):
        for d, ep in enumerate(demos):
            n = len(ep.actions)
            obs[t, d, :n], final[t, d] = ep.observations[:n], ep.observations[n]
            act[t, d, :n], rew[t, d, :n], mask[t, d, :n] = ep.actions, ep.rewards, 1.0
            labels[t, d, :n] = ep.infos["expert_action"][:n]
            terminated[t, d] = bool(ep.terminations[-1])
    return Demonstrations(
        env_id=env_id,
        tasks=tasks,
        observations=torch.from_numpy(obs),
        actions=torch.from_numpy(act),
        expert_actions=torch.from_numpy(labels),
        rewards=torch.from_numpy(rew),
        mask=torch.from_numpy(mask),
        final_observations=torch.from_numpy(final),
        terminated=torch.from_numpy(terminated),
        info=sidecar.get("info", {}),
    )


def _read_episodes(folder: Path, expected: int, horizon: int) -> list[Any]:
    from minari import MinariDataset

    try:
        dataset = MinariDataset(folder / "data")
        episodes = list(dataset.iterate_episodes())
    except Exception as err:  # h5py and Minari raise many kinds on a damaged file
        raise DemoDatasetError(f"{folder / _HDF5}: Minari cannot read it ({err!r})") from err
    if len(episodes) != expected:
        raise DemoDatasetError(
            f"{folder / _HDF5}: {len(episodes)} episodes, {_SIDECAR} lists {expected}"
        )
    for ep in episodes:
        if "expert_action" not in ep.infos:
            raise DemoDatasetError(f"{folder / _HDF5}: episode {ep.id} has no expert_action")
        if len(ep.observations) != len(ep.actions) + 1 or not 0 < len(ep.actions) <= horizon:
            raise DemoDatasetError(
                f"{folder / _HDF5}: episode {ep.id} has {len(ep.actions)} actions and "
                f"{len(ep.observations)} observations (expected 1 to {horizon} actions and "
                "one observation more)"
            )
    return sorted(episodes, key=lambda ep: ep.id)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _plain(value: Any) -> Any:
    """NumPy scalars and arrays as JSON's numbers and lists."""
    return value.tolist() if isinstance(value, np.ndarray | np.generic) else str(value)


def _expand_like(mask: Tensor, like: Tensor) -> Tensor:
    return mask.reshape(*mask.shape, *([1] * (like.dim() - mask.dim())))
