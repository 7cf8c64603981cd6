"""The task-distribution protocol and a small base class for environments that implement it.

A task distribution is an ordinary ``gymnasium.Env`` that also has::

    sample_tasks(num_tasks, rng=None) -> list[dict]   # JSON-serialisable task dicts
    set_task(task) -> None                            # validates first; bad task -> ValueError
    task -> dict                                      # property: the current task

``TaskEnv`` implements ``set_task`` and ``task`` on top of two methods a subclass writes:
``validate_task`` (turn a mapping into a clean task dict or raise ``ValueError`` naming the
field) and ``apply_task`` (make the environment use it). A task is applied only after it has
been validated, so a rejected task leaves the previous one in place.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np


@runtime_checkable
class TaskDistribution(Protocol):
    """What metarl's samplers and learners need from a task-distribution environment."""

    def sample_tasks(
        self, num_tasks: int, rng: np.random.Generator | None = None
    ) -> list[dict[str, Any]]: ...

    def set_task(self, task: Mapping[str, Any]) -> None: ...

    @property
    def task(self) -> dict[str, Any]: ...


class TaskEnv(gym.Env):
    """Base class: validated ``set_task``, a copy-returning ``task`` property, ``sample_tasks``."""

    metadata: dict[str, Any] = {"render_modes": []}
    _task: dict[str, Any]

    def sample_tasks(
        self, num_tasks: int, rng: np.random.Generator | None = None
    ) -> list[dict[str, Any]]:
        """Draw ``num_tasks`` tasks from the distribution (reproducible for a seeded ``rng``)."""
        if not isinstance(num_tasks, (int, np.integer)) or num_tasks < 0:
            raise ValueError(f"num_tasks must be a non-negative integer, got {num_tasks!r}")
        rng = np.random.default_rng() if rng is None else rng
        return [self.draw_task(rng) for _ in range(int(num_tasks))]

    def draw_task(self, rng: np.random.Generator) -> dict[str, Any]:  # pragma: no cover
        """One task from the distribution."""
        raise NotImplementedError

    def validate_task(self, task: Mapping[str, Any]) -> dict[str, Any]:  # pragma: no cover
        """A clean, JSON-serialisable copy of ``task``; ``ValueError`` naming a bad field."""
        raise NotImplementedError

    def apply_task(self, task: dict[str, Any]) -> None:  # pragma: no cover
        """Make the environment use an already validated task."""
        raise NotImplementedError

    def set_task(self, task: Mapping[str, Any]) -> None:
        """Validate ``task`` and switch to it; a rejected task leaves the current one in place."""
        if not isinstance(task, Mapping):
            raise ValueError(
                f"a task must be a mapping of field -> value, got {type(task).__name__}"
            )
        clean = self.validate_task(task)
        self.apply_task(clean)
        self._task = clean

    @property
    def task(self) -> dict[str, Any]:
        """The current task (a copy: changing it does not change the environment).

        Assigning to it calls ``set_task``, which is what lets a vector environment's
        ``set_attr("task", [...])`` give every sub-environment its own task.
        """
        return copy.deepcopy(self._task)

    @task.setter
    def task(self, task: Mapping[str, Any]) -> None:
        self.set_task(task)


def check_fields(task: Mapping[str, Any], fields: Sequence[str]) -> None:
    """Reject missing and unknown fields, naming them."""
    missing = [f for f in fields if f not in task]
    if missing:
        raise ValueError(f"task is missing field(s) {missing}; expected exactly {list(fields)}")
    unknown = [f for f in task if f not in fields]
    if unknown:
        raise ValueError(f"task has unknown field(s) {unknown}; expected exactly {list(fields)}")


def number_field(
    task: Mapping[str, Any],
    field: str,
    low: float = -math.inf,
    high: float = math.inf,
    choices: Sequence[float] | None = None,
) -> float:
    """A finite number in ``[low, high]`` (or one of ``choices``), as a Python float."""
    value = task[field]
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"task field {field!r} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"task field {field!r} must be finite, got {value}")
    if choices is not None:
        if value not in choices:
            raise ValueError(f"task field {field!r} must be one of {list(choices)}, got {value}")
    elif not low <= value <= high:
        raise ValueError(f"task field {field!r} must lie in [{low}, {high}], got {value}")
    return value


def vector_field(
    task: Mapping[str, Any],
    field: str,
    length: int | None,
    low: float = -math.inf,
    high: float = math.inf,
    max_norm: float | None = None,
) -> list[float]:
    """A list of finite numbers in ``[low, high]`` of the given length, as Python floats."""
    value = task[field]
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"task field {field!r} must be a list of numbers, got {value!r}") from None
    if array.ndim != 1 or (length is not None and array.shape[0] != length):
        want = f"length {length}" if length is not None else "a flat list"
        raise ValueError(f"task field {field!r} must be a list of {want}, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"task field {field!r} must not be empty")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"task field {field!r} must be finite, got {array.tolist()}")
    if np.any(array < low) or np.any(array > high):
        raise ValueError(
            f"task field {field!r} entries must lie in [{low}, {high}], got {array.tolist()}"
        )
    if max_norm is not None and np.linalg.norm(array) > max_norm:
        raise ValueError(f"task field {field!r} must have norm <= {max_norm}, got {array.tolist()}")
    return array.tolist()
