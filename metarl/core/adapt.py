"""Adapt parameters to one task, or to a batch of tasks at once.

The inner loss is any callable ``inner_loss(params, data) -> scalar``: a supervised loss on a
support set, a policy-gradient surrogate on adaptation rollouts, a behaviour-cloning loss on a
demonstration. ``data`` is any pytree of tensors (a tuple, a dict, a NamedTuple).

Batched adaptation maps one task's computation over a leading task dimension of ``data``,
either with ``torch.func.vmap`` (fast) or with a plain Python loop (the reference; it also
serves models that are unsafe under vmap). Both give the same values and the same
meta-gradients; ``tests/test_core_adapt.py`` checks that.

Meta-gradients flow by ordinary autograd: the inner gradients are taken with
``torch.func.grad``, which composes with an outer ``loss.backward()``, so second-order MAML
differentiates through the inner steps while first-order MAML detaches the inner gradients.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from torch import Tensor
from torch.func import grad, grad_and_value, vmap
from torch.utils import _pytree as pytree

from metarl.core.params import Params
from metarl.core.rules import InnerRule, StatefulRule

InnerLoss = Callable[[Params, Any], Tensor]
Batching = Literal["vmap", "loop"]


def adapt(
    params: Params,
    inner_loss: InnerLoss,
    data: Any,
    rule: InnerRule,
    steps: int = 1,
    first_order: bool = False,
    per_step_data: bool = False,
) -> Params:
    """Take ``steps`` inner updates of ``params`` on one task's ``data``.

    With ``first_order=True`` the inner gradients are treated as constants (FOMAML): the
    result still depends on ``params`` (and on a learned rule's parameters) to first order,
    but no second derivatives are formed. With ``per_step_data=True`` every tensor of
    ``data`` has a leading dimension of (at least) ``steps`` and step ``s`` sees index ``s``
    of it: mini-batches, a different one for each step.
    """
    if steps < 0:
        raise ValueError(f"inner steps must be >= 0, got {steps}")

    def step_data(s: int) -> Any:
        return pytree.tree_map(lambda t: t[s], data) if per_step_data else data

    if isinstance(rule, StatefulRule):
        state = rule.init_state(params)
        grad_and_loss = grad_and_value(inner_loss)
        for s in range(steps):
            grads, loss = grad_and_loss(params, step_data(s))
            if first_order:
                grads = {name: g.detach() for name, g in grads.items()}
            params, state = rule.step_with_state(params, grads, loss, state)
        return params
    grad_fn = grad(inner_loss)
    for s in range(steps):
        grads = grad_fn(params, step_data(s))
        if first_order:
            grads = {name: g.detach() for name, g in grads.items()}
        params = rule.step(params, grads)
    return params


def map_tasks(
    fn: Callable[..., Any],
    args: Sequence[Any],
    in_dims: Sequence[int | None],
    batching: Batching = "vmap",
    chunk_size: int | None = None,
) -> Any:
    """Apply ``fn`` once per task and stack the results along a new leading dimension.

    ``in_dims[i]`` is 0 where ``args[i]`` is a pytree with a leading task dimension and None
    where it is shared by all tasks. ``batching="vmap"`` runs all tasks in one vectorised call
    (``chunk_size`` tasks at a time if given); ``"loop"`` runs them one after another.
    """
    if len(args) != len(in_dims):
        raise ValueError("map_tasks needs one in_dim per argument")
    if batching == "vmap":
        mapped = vmap(fn, in_dims=tuple(in_dims), chunk_size=chunk_size, randomness="different")
        return mapped(*args)
    if batching != "loop":
        raise ValueError(f"batching must be 'vmap' or 'loop', got {batching!r}")
    num_tasks = _num_tasks(args, in_dims)
    outputs = []
    for i in range(num_tasks):
        task_args = [
            pytree.tree_map(lambda t, i=i: t[i], a) if d == 0 else a for a, d in zip(args, in_dims)
        ]
        outputs.append(fn(*task_args))
    return _stack_trees(outputs)


def adapt_batch(
    params: Params,
    inner_loss: InnerLoss,
    data: Any,
    rule: InnerRule,
    steps: int = 1,
    first_order: bool = False,
    batching: Batching = "vmap",
    chunk_size: int | None = None,
    per_step_data: bool = False,
) -> Params:
    """Adapt the shared ``params`` to every task in ``data`` (leading task dimension).

    Returns adapted parameters with a leading task dimension. ``per_step_data``: as in
    ``adapt``, with the step dimension after the task dimension.
    """

    def one_task(task_data: Any) -> Params:
        return adapt(params, inner_loss, task_data, rule, steps, first_order, per_step_data)

    return map_tasks(one_task, [data], [0], batching, chunk_size)


def meta_losses(
    params: Params,
    inner_loss: InnerLoss,
    support: Any,
    outer_loss: InnerLoss,
    query: Any,
    rule: InnerRule,
    steps: int = 1,
    first_order: bool = False,
    batching: Batching = "vmap",
    chunk_size: int | None = None,
) -> Tensor:
    """Per-task outer losses after adaptation: ``outer_loss(adapt(params, support_i), query_i)``.

    ``support`` and ``query`` carry a leading task dimension. Returns a tensor ``[tasks]``
    whose mean is the MAML objective; its gradient reaches ``params`` and the rule's own
    parameters (second order unless ``first_order``).
    """

    def one_task(task_support: Any, task_query: Any) -> Tensor:
        adapted = adapt(params, inner_loss, task_support, rule, steps, first_order)
        return outer_loss(adapted, task_query)

    return map_tasks(one_task, [support, query], [0, 0], batching, chunk_size)


def _num_tasks(args: Sequence[Any], in_dims: Sequence[int | None]) -> int:
    sizes = {
        leaf.shape[0]
        for a, d in zip(args, in_dims)
        if d == 0
        for leaf in pytree.tree_leaves(a)
        if isinstance(leaf, Tensor)
    }
    if len(sizes) != 1:
        raise ValueError(f"batched arguments disagree on the number of tasks: {sorted(sizes)}")
    return sizes.pop()


def _stack_trees(trees: list[Any]) -> Any:
    leaves, spec = zip(*(pytree.tree_flatten(t) for t in trees))
    stacked = [torch.stack(column) for column in zip(*leaves)]
    return pytree.tree_unflatten(stacked, spec[0])
