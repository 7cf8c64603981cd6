"""Meta-RL training on metarl.core: MAML-TRPO, MAML with vanilla PG, FOMAML, Meta-SGD, Reptile.

Every learner is a ``metarl.core`` meta-learner over a policy; this module only supplies the
task data (from the sampler) and the losses (REINFORCE inside, TRPO surrogate or plain
policy gradient outside). One meta-iteration:

1. sample episodes of the current policy on a batch of tasks (the support set);
2. adapt per task with the learner's inner rule (``vmap`` over tasks);
3. sample episodes of each adapted policy (the query set);
4. outer update: the step object the user passed, ``TRPO(max_kl=...)`` through the
   adaptation (MAML-TRPO), or any ``torch.optim`` optimiser over ``learner.parameters()``
   on the surrogate (MAML with vanilla PG) or on Reptile's pseudo-gradient (with
   ``SGD(lr=epsilon)``, exactly Reptile's interpolation).

With ``inner_steps=0`` the same loop trains a plain multi-task policy (the "pretrained"
baseline of the MAML paper). ``train`` repeats the meta-iteration with a progress bar and,
given a run folder, logging and checkpoints that resume.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.utils import _pytree as pytree
from tqdm import tqdm

from metarl.config import describe
from metarl.core.adapt import adapt, map_tasks
from metarl.core.learners import MetaLearner
from metarl.core.outer import check_outer
from metarl.core.params import Params, detach_params
from metarl.core.trpo import TRPO
from metarl.rl.losses import (
    policy_gradient_data,
    reinforce_loss,
    surrogate_and_kl,
    surrogate_data,
)
from metarl.rl.sampler import MultiTaskSampler
from metarl.utils.run import Run, RunError

Outer = TRPO | torch.optim.Optimizer


class Evaluation(NamedTuple):
    """Held-out results per adaptation step (rows: 0, 1, ... steps) and task (columns)."""

    returns: Tensor  # [steps + 1, T]: mean episode return
    ended_early: Tensor
    """[steps + 1, T]: share of the episodes the environment ended before the horizon (with
    Meta-World's ``terminate_on_success=True``, the success rate)"""


@dataclasses.dataclass
class TrainRecord:
    """What a ``train`` run folder records, and what a resume must match (but iterations)."""

    iterations: int
    tasks_per_batch: int
    checkpoint_every: int
    learner: dict[str, Any]
    outer: dict[str, Any]
    sampler: dict[str, Any]
    gamma: float
    gae_lambda: float


def _record(obj: Any) -> dict[str, Any]:
    """A configurable's class and arguments; for anything else, its class name."""
    try:
        return describe(obj)
    except TypeError:
        return {"class": type(obj).__qualname__}


class MetaRLTrainer:
    """Meta-train a ``MetaLearner`` whose model is a policy, on tasks from ``sampler``.

    Args:
        learner: e.g. ``MAML(policy, inner_lr=0.1)``, ``MetaSGD(policy, ...)``,
            ``Reptile(policy, ...)``. A learner whose extra objective is defined only on
            supervised batches (it overrides ``meta_loss``, as TAML and ADML do) is refused:
            in RL it would silently be plain MAML.
        sampler: a ``MultiTaskSampler`` for the task distribution.
        outer: the outer step, ``TRPO(max_kl=0.01)`` or a ``torch.optim`` optimiser over
            ``learner.parameters()`` (``Adam(..., lr=1e-3)`` for MAML with vanilla PG,
            ``SGD(..., lr=epsilon)`` for Reptile). Reptile with ``TRPO`` is a ``ValueError``.
        gamma, gae_lambda: discount and GAE parameter for the advantages.
    """

    def __init__(
        self,
        learner: MetaLearner,
        sampler: MultiTaskSampler,
        outer: Outer,
        gamma: float = 0.99,
        gae_lambda: float = 1.0,
    ) -> None:
        if type(learner).meta_loss is not MetaLearner.meta_loss:
            raise ValueError(
                f"{type(learner).__name__} defines its objective in meta_loss, on supervised "
                "batches; meta-RL uses meta_losses with policy-gradient losses, where it "
                "would silently be plain MAML. Use MAML, MetaSGD, Reptile, or a learner that "
                "overrides meta_losses."
            )
        check_outer(learner, outer)
        if not 0 < gamma <= 1 or not 0 <= gae_lambda <= 1:
            raise ValueError(f"gamma must be in (0, 1] and gae_lambda in [0, 1], got "
                             f"{gamma}, {gae_lambda}")  # fmt: skip
        self.learner, self.sampler, self.outer = learner, sampler, outer
        self.policy = learner.model
        self.gamma, self.gae_lambda = gamma, gae_lambda
        self.inner_loss = reinforce_loss(self.policy)
        self.phase_seconds: dict[str, float] = {}  # of the last meta_step
        self.outer_loss = surrogate_and_kl(self.policy)

    # -- one meta-iteration --------------------------------------------------------------
    def meta_step(self, tasks: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        """Sample, adapt, sample again, update. Returns returns before/after and step stats.

        The wall time of each phase (``sample``: both samplings; ``advantages``: baselines
        and advantages; ``adapt``; ``outer``: the outer step) is left in ``phase_seconds``.
        """
        clock = _PhaseClock()
        support = self.sampler.sample(tasks, self.policy)
        clock.lap("sample")
        support_data = policy_gradient_data(support, self.gamma, self.gae_lambda)
        clock.lap("advantages")
        start = detach_params(self.learner.params())
        adapted = self.learner.adapt_batch(
            self.inner_loss, support_data, params=start, first_order=True
        )
        adapted = {name: p.detach() for name, p in adapted.items()}
        clock.lap("adapt")
        query = self.sampler.sample(tasks, self.policy, adapted, batched=True)
        clock.lap("sample")
        stats = {
            "return_before": support.mean_return().mean().item(),
            "return_after": query.mean_return().mean().item(),
            "env_steps": float(support.steps() + query.steps()),
        }
        query_data = surrogate_data(
            self.policy, adapted, policy_gradient_data(query, self.gamma, self.gae_lambda)
        )
        clock.lap("advantages")

        def losses(every: int = 1) -> Tensor:
            """Per-task [surrogate, KL] after adaptation, on every ``every``-th task."""
            support_part, query_part = (
                pytree.tree_map(lambda t: t[::every], d) for d in (support_data, query_data)
            )
            return self.learner.meta_losses(
                self.inner_loss, support_part, self.outer_loss, query_part
            )

        def loss_and_kl() -> tuple[Tensor, Tensor]:
            out = losses()
            return out[:, 0].mean(), out[:, 1].mean()

        if isinstance(self.outer, TRPO):
            every = self.outer.fisher_every

            def curvature_kl() -> Tensor:  # the KL on every n-th task: cheaper products
                return losses(every)[:, 1].mean()

            params = list(self.learner.parameters())
            result = self.outer.step(params, loss_and_kl, curvature_kl)
            stats.update(loss=result.loss_before, kl=result.kl, step_fraction=result.step_fraction)
        else:
            loss, kl = loss_and_kl()
            self.outer.zero_grad()
            loss.backward()
            self.outer.step()
            stats.update(loss=loss.item(), kl=kl.item())
        clock.lap("outer")
        self.phase_seconds = clock.seconds
        return stats

    # -- the training loop ---------------------------------------------------------------
    def train(
        self,
        iterations: int,
        tasks_per_batch: int,
        run_dir: str | os.PathLike | Run | None = None,
        *,
        checkpoint_every: int = 10,
        resume: bool = False,
        overwrite: bool = False,
        desc: str = "meta-training",
    ) -> Iterator[dict[str, float]]:
        """Meta-train for ``iterations`` meta-iterations; yields each one's stats.

        Each iteration draws ``tasks_per_batch`` tasks from the sampler and calls
        ``meta_step``; the stats yielded add ``iteration`` and ``steps_per_s``. A progress
        bar shows the returns. Without ``run_dir`` nothing is written. With a folder (or a
        ``metarl.utils.Run`` a script made), every iteration's stats go to
        ``metrics.csv`` and TensorBoard, and a checksummed checkpoint is written every
        ``checkpoint_every`` iterations and at the end; ``resume=True`` continues a stopped
        run bit for bit (its learner, sampler, outer step and RNG come back; ``iterations``
        may grow), and a folder that holds a run is refused unless ``resume`` or
        ``overwrite`` says what to do with it (``RunError``). Ctrl-C prints the resume
        command. ``resume`` and ``overwrite`` apply to a folder only, not to a given ``Run``.
        ``desc`` labels the progress bar.
        """
        if iterations < 0 or tasks_per_batch < 1 or checkpoint_every < 1:
            raise ValueError(
                "train needs iterations >= 0, tasks_per_batch >= 1 and checkpoint_every >= 1, "
                f"got {iterations}, {tasks_per_batch}, {checkpoint_every}"
            )
        if run_dir is None:
            bar = tqdm(range(iterations), desc=desc, disable=None)
            for it in bar:
                stats = self._timed_step(tasks_per_batch, it + 1)
                bar.set_postfix_str(_summary(stats))
                yield stats
            return
        if isinstance(run_dir, Run):
            run = run_dir
        else:
            args = (iterations, tasks_per_batch, checkpoint_every, resume, overwrite)
            run = self._run(run_dir, *args)
        state = run.restore()
        if state is not None:
            if run.start_iteration > iterations:
                raise RunError(
                    f"the checkpoint in {run.out} is at iteration {run.start_iteration}, past "
                    f"the {iterations} iterations asked for: ask for at least "
                    f"{run.start_iteration}"
                )
            self.load_state_dict(state["trainer"])
        with run.interruptible():
            for it in run.progress(iterations, desc):
                stats = self._timed_step(tasks_per_batch, it + 1)
                scalars = {k: v for k, v in stats.items() if k != "iteration"}
                run.log(it + 1, **scalars, wall_s=run.wall_s)
                run.status(it + 1, _summary(stats))
                if (it + 1) % checkpoint_every == 0 or it + 1 == iterations:
                    run.save({"trainer": self.state_dict()}, it + 1)
                yield stats
        run.close()

    def _timed_step(self, tasks_per_batch: int, iteration: int) -> dict[str, float]:
        tick = time.perf_counter()
        stats = self.meta_step(self.sampler.sample_tasks(tasks_per_batch))
        stats["steps_per_s"] = stats["env_steps"] / (time.perf_counter() - tick)
        return {"iteration": iteration, **stats}

    def _run(
        self,
        out: str | os.PathLike,
        iterations: int,
        tasks_per_batch: int,
        checkpoint_every: int,
        resume: bool,
        overwrite: bool,
    ) -> Run:
        s = self.sampler
        sampler = {
            "env_id": s.env_id,
            "episodes_per_task": s.episodes_per_task,
            "horizon": s.horizon,
            "env_kwargs": s.env_kwargs,
            "task_in_observation": s.task_in_observation,
        }
        record = TrainRecord(
            iterations=iterations,
            tasks_per_batch=tasks_per_batch,
            checkpoint_every=checkpoint_every,
            learner={**_record(self.learner), "model": _record(self.policy)},
            outer=_outer_record(self.outer),
            sampler=sampler,
            gamma=self.gamma,
            gae_lambda=self.gae_lambda,
        )
        return Run(out, record, resume=resume, overwrite=overwrite, ignore=("iterations",))

    # -- evaluation ----------------------------------------------------------------------
    def evaluate(
        self,
        tasks: Sequence[Mapping[str, Any]],
        inner_steps: int = 3,
        step_scales: Sequence[float] = (1.0,),
    ) -> Tensor:
        """Mean return per task after 0..``inner_steps`` adaptation steps: ``[steps + 1, T]``.

        As in the MAML paper, every step adapts on fresh episodes of the current adapted
        policy, then the next episodes are sampled with the result. Step ``k`` (from 0) is
        the learner's own update scaled by ``step_scales[min(k, len - 1)]``: ``(1.0, 0.3)``
        keeps the first step and takes later ones at 0.3 of its size.
        """
        return self.evaluate_detailed(tasks, inner_steps, step_scales).returns

    def evaluate_detailed(
        self,
        tasks: Sequence[Mapping[str, Any]],
        inner_steps: int = 3,
        step_scales: Sequence[float] = (1.0,),
    ) -> Evaluation:
        """``evaluate``'s returns and, from the same episodes, the share of each task's
        episodes that the environment ended before the horizon."""
        if not step_scales or any(s <= 0 for s in step_scales):
            raise ValueError(f"step_scales must be positive, got {tuple(step_scales)}")
        num_tasks = len(tasks)
        params: Params = {
            name: p.detach().expand(num_tasks, *p.shape)
            for name, p in self.learner.params().items()
        }
        returns, ended = [], []
        for k in range(inner_steps + 1):
            episodes = self.sampler.sample(tasks, self.policy, params, batched=True)
            returns.append(episodes.mean_return())
            if episodes.terminated is None:
                ended.append(torch.zeros(num_tasks))
            else:
                ended.append(episodes.terminated.float().mean(-1))
            if k == inner_steps:
                break
            data = policy_gradient_data(episodes, self.gamma, self.gae_lambda)
            scale = float(step_scales[min(k, len(step_scales) - 1)])

            def one_step(p: Params, d: Any, scale: float = scale) -> Params:
                new = adapt(p, self.inner_loss, d, self.learner.rule, 1, first_order=True)
                return {name: p[name] + scale * (new[name] - p[name]) for name in p}

            params = map_tasks(one_step, [params, data], [0, 0], self.learner.batching)
            params = {name: p.detach() for name, p in params.items()}
        return Evaluation(torch.stack(returns), torch.stack(ended))

    # -- checkpoints ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Learner weights, sampler random streams and the outer step's state, for a checkpoint."""
        return {
            "learner": self.learner.state_dict(),
            "sampler": self.sampler.state(),
            "outer": self.outer.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` saved; the run then continues as if never stopped."""
        self.learner.load_state_dict(state["learner"])
        self.sampler.load_state(state["sampler"])
        # Checkpoints written before the outer step was an object call it "optimizer".
        outer = state.get("outer", state.get("optimizer", {}))
        if outer or not isinstance(self.outer, torch.optim.Optimizer):
            self.outer.load_state_dict(outer)


class _PhaseClock:
    """Wall time per named phase: ``lap(name)`` adds the time since the previous lap."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self._last
        self._last = now


def _outer_record(outer: Outer) -> dict[str, Any]:
    if isinstance(outer, TRPO):
        return {"class": "TRPO", **dataclasses.asdict(outer)}
    return {"class": type(outer).__qualname__, "defaults": dict(outer.defaults)}


def _summary(stats: Mapping[str, float]) -> str:
    return (
        f"return before {stats['return_before']:.1f}, after {stats['return_after']:.1f}, "
        f"{stats['steps_per_s']:.0f} env steps/s"
    )
