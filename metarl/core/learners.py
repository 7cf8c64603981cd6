"""Meta-learners: one model, one inner rule, and the outer objective built on metarl.core.

The same objects serve supervised few-shot learning (``meta_loss`` on support/query batches)
and meta-RL / imitation (``meta_losses`` with any inner and outer loss callables), so
swapping ``MAML`` for ``MetaSGD`` or ``Reptile`` changes one line in either setting.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any, Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils import _pytree as pytree

from metarl.config import Configurable
from metarl.core.adapt import Batching, InnerLoss, adapt, adapt_batch, map_tasks, meta_losses
from metarl.core.outer import reptile_pseudo_gradient
from metarl.core.params import Params, detach_params, forward_with, named_params
from metarl.core.rules import AdamRule, InnerRule, MetaSGDRule, SGDRule

BatchingChoice = Literal["auto", "vmap", "loop"]

# Normalisation layers whose second-order gradients are wrong under vmap (or whose running
# statistics cannot be updated in place there). GroupNorm and hand-written norms are safe.
VMAP_UNSAFE_LAYERS: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.LayerNorm,
)


class TaskBatch(NamedTuple):
    """A batch of supervised few-shot tasks: ``support_x [tasks, N*K, ...]`` and so on."""

    support_x: Tensor
    support_y: Tensor
    query_x: Tensor
    query_y: Tensor


def vmap_unsafe_layers(model: nn.Module) -> list[str]:
    """Names of the submodules that make ``vmap`` adaptation unsafe (see ``VMAP_UNSAFE_LAYERS``)."""
    return [name for name, m in model.named_modules() if isinstance(m, VMAP_UNSAFE_LAYERS)]


def resolve_batching(model: nn.Module, batching: BatchingChoice) -> Batching:
    """Pick how tasks are batched for ``model``.

    ``"auto"`` uses vmap unless the model holds BatchNorm / InstanceNorm / LayerNorm, in
    which case it falls back to the per-task loop (with a warning): under vmap those layers
    give wrong second-order meta-gradients. Asking for ``"vmap"`` with such a model is an
    error; use GroupNorm instead, or ``"loop"``.

    ``"auto"`` also takes the loop for convolutional models: on the CPU, vmap over
    convolutions is slower and hungrier for memory than the loop, while for MLPs (sinusoid,
    policies) it is much faster (``benchmarks/supervised.py`` and ``benchmarks/adapt.py``
    measure both).
    """
    unsafe = vmap_unsafe_layers(model)
    if batching == "auto":
        if unsafe:
            warnings.warn(
                f"{type(model).__name__} has normalisation layers that are wrong under vmap "
                f"({', '.join(unsafe)}); adapting tasks one by one. Use GroupNorm for the "
                "batched path.",
                stacklevel=3,
            )
            return "loop"
        if any(isinstance(m, nn.modules.conv._ConvNd) for m in model.modules()):
            return "loop"
        return "vmap"
    if batching == "vmap" and unsafe:
        raise ValueError(
            f"batching='vmap' is unsafe for layers {unsafe}: BatchNorm/InstanceNorm/LayerNorm "
            "give wrong second-order gradients under vmap. Use nn.GroupNorm, or batching='loop'."
        )
    if batching not in ("vmap", "loop"):
        raise ValueError(f"batching must be 'auto', 'vmap' or 'loop', got {batching!r}")
    return batching


class MetaLearner(Configurable, nn.Module):
    """A model plus an inner update rule; the outer objective is defined by subclasses.

    Every learner records its constructor arguments (``config``, the model excepted, which
    records its own), so ``metarl.save_learner(path, learner)`` needs nothing else.
    ``eval_steps`` (default: ``inner_steps``) is how many inner steps ``predict`` and a
    loaded learner take at test time; set it after construction, it is saved too.

    Args:
        model: any ``nn.Module``; its trainable parameters are the meta-learned initialisation.
        rule: the inner update rule (its own parameters, if any, are meta-learned too).
        inner_steps: default number of inner updates.
        first_order: drop second-order terms of the meta-gradient.
        batching: ``"auto"``, ``"vmap"`` or ``"loop"`` (see ``resolve_batching``).
        chunk_size: with vmap, how many tasks to vectorise at once (None: all).
    """

    config_excludes = ("model",)

    def __init__(
        self,
        model: nn.Module,
        rule: InnerRule,
        inner_steps: int = 1,
        first_order: bool = False,
        batching: BatchingChoice = "auto",
        chunk_size: int | None = None,
    ) -> None:
        super().__init__()
        if inner_steps < 0:
            raise ValueError(f"inner_steps must be >= 0, got {inner_steps}")
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(
                f"chunk_size must be a positive number of tasks or None, got {chunk_size}"
            )
        self.model = model
        self.rule = rule
        self.inner_steps = inner_steps
        self.eval_steps = inner_steps
        self.first_order = first_order
        self.batching: Batching = resolve_batching(model, batching)
        self.chunk_size = chunk_size

    # -- evaluation of the model at given parameters -------------------------------------
    def params(self) -> Params:
        """The meta-learned initialisation (live parameters of the model)."""
        return named_params(self.model)

    def forward(self, *args: Any, params: Mapping[str, Tensor] | None = None) -> Any:
        """Run the model at ``params`` (default: the meta-learned initialisation)."""
        if params is None:
            return self.model(*args)
        return forward_with(self.model, params, *args)

    def supervised_loss(self, loss_fn: Callable[[Tensor, Tensor], Tensor]) -> InnerLoss:
        """Turn ``loss_fn(predictions, targets)`` into an inner loss on ``(x, y)`` data."""

        def inner_loss(params: Params, data: tuple[Tensor, Tensor]) -> Tensor:
            x, y = data
            return loss_fn(forward_with(self.model, params, x), y)

        return inner_loss

    # -- adaptation ----------------------------------------------------------------------
    def adapt(
        self,
        inner_loss: InnerLoss,
        data: Any,
        steps: int | None = None,
        params: Params | None = None,
        first_order: bool | None = None,
    ) -> Params:
        """Adapt to one task; ``params`` defaults to the meta-learned initialisation."""
        start, steps, first_order = self._inner_settings(params, steps, first_order)
        return adapt(start, inner_loss, data, self.rule, steps, first_order)

    def adapt_batch(
        self,
        inner_loss: InnerLoss,
        data: Any,
        steps: int | None = None,
        params: Params | None = None,
        first_order: bool | None = None,
        per_step_data: bool = False,
    ) -> Params:
        """Adapt to every task of ``data`` (leading task dimension); returns batched params.

        ``per_step_data``: every tensor has a step dimension after the task dimension, one
        mini-batch per inner step (see ``metarl.core.adapt.adapt``).
        """
        start, steps, first_order = self._inner_settings(params, steps, first_order)
        return adapt_batch(start, inner_loss, data, self.rule, steps, first_order, self.batching,
                           self.chunk_size, per_step_data)  # fmt: skip

    def _inner_settings(
        self, params: Params | None, steps: int | None, first_order: bool | None
    ) -> tuple[Params, int, bool]:
        return (
            self.params() if params is None else params,
            self.inner_steps if steps is None else steps,
            self.first_order if first_order is None else first_order,
        )

    def task_losses(self, loss: InnerLoss, batched_params: Params, data: Any) -> Tensor:
        """``loss(params_i, data_i)`` for every task: evaluates adapted parameters."""
        return map_tasks(loss, [batched_params, data], [0, 0], self.batching, self.chunk_size)

    def predict(
        self,
        support_x: Tensor,
        support_y: Tensor,
        query_x: Tensor,
        loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy,
        steps: int | None = None,
    ) -> Tensor:
        """Model outputs on ``query_x`` after ``steps`` (default ``eval_steps``) inner steps
        of ``loss_fn`` on one task's support set: ``[Q, N]`` logits for a classifier.

        Inputs are checked first: tensors (not NumPy arrays), finite, one label per support
        example, the shape the model takes (where it records one, as ``metarl.nn``'s networks
        do) and, for integer labels, a class its output layer has. A model normalising with
        the statistics of the batch at hand (``Conv4`` with ``norm="batch"``) classifies the
        queries together, so pass them as the batch it was trained on.
        """
        _check_inputs(self.model, support_x, support_y, query_x)
        if not support_y.is_floating_point():
            support_y = support_y.long()
        with torch.no_grad():  # torch.func.grad takes the inner gradients regardless
            adapted = self.adapt(
                self.supervised_loss(loss_fn), (support_x, support_y),
                steps=self.eval_steps if steps is None else steps, first_order=True,
            )  # fmt: skip
            return self(query_x, params=adapted)

    # -- outer objective -----------------------------------------------------------------
    def meta_losses(
        self, inner_loss: InnerLoss, support: Any, outer_loss: InnerLoss, query: Any
    ) -> Tensor:
        """Per-task outer losses after adapting on ``support``: a tensor ``[tasks]``."""
        return meta_losses(
            self.params(),
            inner_loss,
            support,
            outer_loss,
            query,
            self.rule,
            self.inner_steps,
            self.first_order,
            self.batching,
            self.chunk_size,
        )

    def meta_loss(self, batch: Any, loss_fn: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
        """Mean query loss after adaptation over a supervised batch of tasks.

        ``batch`` has ``support_x, support_y, query_x, query_y`` (attributes or keys), each
        with a leading task dimension. Call ``backward()`` on the result.
        """
        b = as_task_batch(batch)
        loss = self.supervised_loss(loss_fn)
        return self.meta_losses(
            loss, (b.support_x, b.support_y), loss, (b.query_x, b.query_y)
        ).mean()


class MAML(MetaLearner):
    """Model-Agnostic Meta-Learning (Finn, Abbeel and Levine, ICML 2017).

    Inner loop: ``inner_steps`` gradient steps of size ``inner_lr``. Outer loop: backprop
    through the inner loop (second order), or ``first_order=True`` for FOMAML.
    """

    def __init__(
        self,
        model: nn.Module,
        inner_lr: float = 0.01,
        inner_steps: int = 1,
        first_order: bool = False,
        batching: BatchingChoice = "auto",
        chunk_size: int | None = None,
    ) -> None:
        super().__init__(model, SGDRule(inner_lr), inner_steps, first_order, batching, chunk_size)


class MetaSGD(MetaLearner):
    """Meta-SGD (Li, Zhou, Chen and Li, 2017): MAML with learned per-parameter step sizes.

    ``inner_lr`` initialises the step sizes: a constant, or a ``(low, high)`` range drawn
    uniformly per entry. They are parameters of this module, so an optimiser over
    ``learner.parameters()`` meta-trains them with the initialisation.
    """

    def __init__(
        self,
        model: nn.Module,
        inner_lr: float | tuple[float, float] = 0.01,
        inner_steps: int = 1,
        first_order: bool = False,
        batching: BatchingChoice = "auto",
        chunk_size: int | None = None,
    ) -> None:
        rule = MetaSGDRule(named_params(model), inner_lr)
        super().__init__(model, rule, inner_steps, first_order, batching, chunk_size)


class Reptile(MetaLearner):
    """Reptile (Nichol, Achiam and Schulman, 2018): move the initialisation towards adapted weights.

    The inner loop is plain SGD (``inner_rule="sgd"``) or Adam with ``betas=(0, 0.999)``
    (``"adam"``, the paper's Omniglot runs) on the support data, with no gradient through
    it; ``inner_batch`` splits each task's support set into mini-batches of that size, one
    per step (shuffled once per meta-batch with ``generator``, default a generator seeded
    with 0, and cycled), where the paper's runs take 5 steps of 10 examples from 50.

    ``meta_losses`` returns a tensor whose *value* is each task's query loss after
    adaptation and whose mean has, as its *gradient* with respect to the initialisation,
    Reptile's pseudo-gradient ``theta - mean_i phi_i``. So ``loss.mean().backward()``
    followed by ``torch.optim.SGD(lr=epsilon).step()`` is exactly Reptile's update
    ``theta <- theta + epsilon * (mean_i phi_i - theta)``, and any optimiser may take the
    pseudo-gradient instead (Adam does too); a trust-region step cannot (see ``TRPO``).
    Test-time adaptation uses the same rule on the whole support set.
    """

    config_excludes = ("model", "generator")

    def __init__(
        self,
        model: nn.Module,
        inner_lr: float = 0.01,
        inner_steps: int = 5,
        batching: BatchingChoice = "auto",
        chunk_size: int | None = None,
        inner_rule: Literal["sgd", "adam"] = "sgd",
        inner_batch: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        if inner_rule not in ("sgd", "adam"):
            raise ValueError(f"inner_rule must be 'sgd' or 'adam', got {inner_rule!r}")
        if inner_batch is not None and inner_batch < 1:
            raise ValueError(f"inner_batch must be a positive size or None, got {inner_batch}")
        rule = SGDRule(inner_lr) if inner_rule == "sgd" else AdamRule(inner_lr)
        super().__init__(model, rule, inner_steps, True, batching, chunk_size)
        self.inner_batch = inner_batch
        self.generator = torch.Generator().manual_seed(0) if generator is None else generator

    def meta_losses(
        self, inner_loss: InnerLoss, support: Any, outer_loss: InnerLoss, query: Any
    ) -> Tensor:
        params = self.params()
        if self.inner_batch is None:
            adapted = self.adapt_batch(inner_loss, support, params=detach_params(params))
        else:
            minibatches = self._minibatches(support, self.inner_batch)
            adapted = self.adapt_batch(inner_loss, minibatches, params=detach_params(params),
                                       per_step_data=True)  # fmt: skip
        adapted = {name: p.detach() for name, p in adapted.items()}
        values = self.task_losses(outer_loss, adapted, query).detach()
        direction = reptile_pseudo_gradient(params, adapted)
        surrogate = sum((p * direction[name]).sum() for name, p in params.items())
        # Value: the query losses. Gradient of their mean: theta - mean_i phi_i.
        return values + (surrogate - surrogate.detach())

    def _minibatches(self, support: Any, batch_size: int) -> Any:
        """``[tasks, n, ...]`` leaves -> ``[tasks, steps, batch_size, ...]``: one random order
        of the ``n`` examples (shared by the tasks), cut into consecutive mini-batches and
        cycled when ``steps * batch_size > n``."""
        sizes = {t.shape[1] for t in pytree.tree_leaves(support) if isinstance(t, Tensor)}
        if len(sizes) != 1:
            raise ValueError(f"support tensors disagree on the number of examples: {sizes}")
        n = sizes.pop()
        order = torch.randperm(n, generator=self.generator, device=self.generator.device)
        index = order[torch.arange(self.inner_steps * batch_size, device=order.device) % n]
        index = index.view(self.inner_steps, batch_size)
        return pytree.tree_map(lambda t: t[:, index.to(t.device)], support)


def _check_inputs(model: nn.Module, support_x: Any, support_y: Any, query_x: Any) -> None:
    """Clear errors for inputs ``predict`` cannot classify (see its docstring)."""
    for name, value in (("support_x", support_x), ("support_y", support_y), ("query_x", query_x)):
        if not isinstance(value, Tensor):
            raise TypeError(
                f"{name} is a {type(value).__name__}; pass a torch.Tensor "
                "(torch.as_tensor(array) converts a NumPy array)"
            )
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise ValueError(f"{name} holds NaN or infinite values")
    if support_y.dim() == 0 or support_x.shape[0] != support_y.shape[0]:
        raise ValueError(
            f"{support_x.shape[0]} support examples but labels of shape {tuple(support_y.shape)}"
        )
    expected = getattr(model, "input_shape", None)
    for name, x in (("support_x", support_x), ("query_x", query_x)):
        if expected is not None and tuple(x.shape[1:]) != tuple(expected):
            raise ValueError(
                f"{name} has examples of shape {tuple(x.shape[1:])}; this model takes "
                f"{tuple(expected)} (a batch of them: [n, {', '.join(map(str, expected))}])"
            )
    classes = getattr(model, "output_size", None)
    if classes is not None and not support_y.is_floating_point():
        low, high = int(support_y.min()), int(support_y.max())
        if low < 0 or high >= classes:
            raise ValueError(
                f"support label {high if high >= classes else low} is out of range: this "
                f"learner's output layer has {classes} classes (labels 0..{classes - 1})"
            )


def as_task_batch(batch: Any) -> TaskBatch:
    """Read ``support_x, support_y, query_x, query_y`` from attributes or mapping keys."""
    fields = TaskBatch._fields
    if isinstance(batch, Mapping):
        missing = [f for f in fields if f not in batch]
        if missing:
            raise ValueError(f"batch is missing {missing}; expected keys {list(fields)}")
        return TaskBatch(*(batch[f] for f in fields))
    missing = [f for f in fields if not hasattr(batch, f)]
    if missing:
        raise ValueError(f"batch is missing {missing}; expected attributes {list(fields)}")
    return TaskBatch(*(getattr(batch, f) for f in fields))
