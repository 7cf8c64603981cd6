"""Evaluation of a meta-learner on held-out supervised tasks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from metarl.core.learners import MetaLearner, as_task_batch
from metarl.core.params import Params, detach_params
from metarl.supervised.adml import fgsm_tasks
from metarl.supervised.episodes import EpisodeSampler


def losses_after_steps(
    learner: MetaLearner,
    batch: Any,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    steps: Sequence[int],
) -> Tensor:
    """Query loss of every task after ``s`` inner steps on its support set, for each ``s``.

    Returns a tensor ``[len(steps), tasks]``. Adaptation uses the learner's own rule (learned
    step sizes included) with no meta-gradient graph.
    """
    b = as_task_batch(batch)
    loss = learner.supervised_loss(loss_fn)
    rows = []
    for s in steps:
        adapted = adapted_to_support(learner, b, s, loss_fn)
        with torch.no_grad():
            rows.append(learner.task_losses(loss, adapted, (b.query_x, b.query_y)))
    return torch.stack(rows)


def mean_and_ci95(values: Tensor) -> tuple[float, float]:
    """Mean and the half-width of its normal-approximation 95% confidence interval."""
    values = values.double().flatten()
    if values.numel() < 2:
        raise ValueError("need at least two values for a confidence interval")
    return values.mean().item(), 1.96 * values.std().item() / values.numel() ** 0.5


def adapted_to_support(
    learner: MetaLearner,
    batch: Any,
    steps: int,
    loss_fn: Callable[[Tensor, Tensor], Tensor] = torch.nn.functional.cross_entropy,
) -> Params:
    """Every task's parameters after ``steps`` inner steps of ``loss_fn`` on its support set
    (the learner's own rule, no meta-gradient graph), detached."""
    b = as_task_batch(batch)
    # The inner gradients come from torch.func.grad, which ignores an outer no_grad; the
    # no_grad keeps autograd from recording the update rule's own parameters (a learned
    # rule's graph over every weight of every task would otherwise live until the end).
    with torch.no_grad():
        adapted = learner.adapt_batch(
            learner.supervised_loss(loss_fn), (b.support_x, b.support_y), steps=steps,
            params=detach_params(learner.params()), first_order=True,
        )  # fmt: skip
    # Parameters a rule leaves alone (CAML's shared network) come back as the start's leaves.
    return {name: p.detach() for name, p in adapted.items()}


def query_accuracies(
    learner: MetaLearner,
    adapted: Params,
    batch: Any,
    attack_epsilon: float | None = None,
    query_groups: int = 1,
) -> Tensor:
    """Query accuracy of every task ``[tasks]`` under its ``adapted`` parameters.

    With ``attack_epsilon``, each task's query inputs are FGSM-perturbed (clipped to [0, 1])
    against that task's adapted parameters before they are classified.

    ``query_groups=g`` classifies the queries in ``g`` separate forward passes, query ``i``
    in pass ``i % g``. This matters for models that normalise with the statistics of the
    batch at hand (transductive batch norm): for episodes whose queries are grouped by class
    with ``Q`` per class, ``query_groups=Q`` classifies them in batches of one query per
    class, the batch composition MAML's Omniglot learners are trained with.
    """
    b = as_task_batch(batch)
    n_query = b.query_x.shape[1]
    if query_groups < 1 or n_query % query_groups:
        raise ValueError(f"query_groups must divide the {n_query} queries, got {query_groups}")

    def correct(params: Any, data: tuple[Tensor, Tensor]) -> Tensor:
        x, y = data
        return (learner(x, params=params).argmax(-1) == y).float().sum()

    hits = torch.zeros(b.query_x.shape[0])
    for group in range(query_groups):
        query_x, query_y = b.query_x[:, group::query_groups], b.query_y[:, group::query_groups]
        if attack_epsilon is not None:
            query_x = fgsm_tasks(learner.model, adapted, query_x, query_y, attack_epsilon,
                                 torch.nn.functional.cross_entropy, learner.batching,
                                 params_dim=0)  # fmt: skip
        with torch.no_grad():
            hits += learner.task_losses(correct, adapted, (query_x, query_y))
    return hits / n_query


def accuracies_after_steps(
    learner: MetaLearner,
    batch: Any,
    steps: int,
    attack_epsilon: float | None = None,
    query_groups: int = 1,
) -> Tensor:
    """Query accuracy of every task ``[tasks]`` after ``steps`` inner steps on its support
    set: ``adapted_to_support`` then ``query_accuracies`` (see there for the arguments)."""
    adapted = adapted_to_support(learner, batch, steps)
    return query_accuracies(learner, adapted, batch, attack_epsilon, query_groups)


def sampled_accuracies(
    learner: MetaLearner,
    sampler: EpisodeSampler,
    episodes: int,
    steps: int,
    attack_epsilon: float = 0.0,
    query_batch: str = "per-class",
    chunk: int = 50,
) -> tuple[Tensor, Tensor | None]:
    """Accuracy of ``episodes`` fresh episodes from ``sampler`` (``chunk`` at a time), and with
    ``attack_epsilon > 0`` the accuracy on the same episodes' FGSM-perturbed queries (else
    ``None``).

    ``query_batch="per-class"`` classifies the queries in batches of one per class (the
    composition of meta-training query batches with one query per class, which matters for
    batch statistics); ``"all"`` in one batch.
    """
    if query_batch not in ("per-class", "all"):
        raise ValueError(f"query_batch must be 'per-class' or 'all', got {query_batch!r}")
    groups = sampler.queries if query_batch == "per-class" else 1
    clean, attacked = [], []
    for start in range(0, episodes, chunk):
        batch = sampler.sample(min(chunk, episodes - start))
        adapted = adapted_to_support(learner, batch, steps)  # one adaptation for both scores
        clean.append(query_accuracies(learner, adapted, batch, query_groups=groups))
        if attack_epsilon > 0:
            attacked.append(query_accuracies(learner, adapted, batch, attack_epsilon, groups))
    return torch.cat(clean), torch.cat(attacked) if attacked else None


def metric_accuracies(
    learner: Any, sampler: EpisodeSampler, episodes: int, chunk: int = 50
) -> Tensor:
    """Query accuracy ``[episodes]`` of a learner that classifies from the support set
    without gradient steps (its ``query_logits(batch)``), on fresh episodes ``chunk`` at a time."""
    scores = []
    for start in range(0, episodes, chunk):
        batch = sampler.sample(min(chunk, episodes - start))
        hits = learner.query_logits(batch).argmax(-1) == batch.query_y
        scores.append(hits.float().mean(1))
    return torch.cat(scores)
