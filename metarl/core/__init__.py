"""The adaptation core shared by every meta-learner in metarl.

- ``params``: functional parameters (dicts of tensors applied with ``functional_call``);
- ``rules``: inner update rules (SGD step, Meta-SGD's learned step sizes);
- ``adapt``: adapt one task, or a batch of tasks with vmap or a reference loop;
- ``outer``: outer updates that are not plain backprop (Reptile), and ``check_outer``;
- ``trpo``: the ``TRPO`` trust-region outer step;
- ``learners``: MAML / FOMAML, Meta-SGD and Reptile built from the pieces above.
"""

from metarl.core.adapt import InnerLoss, adapt, adapt_batch, map_tasks, meta_losses
from metarl.core.learners import (
    MAML,
    MetaLearner,
    MetaSGD,
    Reptile,
    TaskBatch,
    as_task_batch,
    resolve_batching,
    vmap_unsafe_layers,
)
from metarl.core.outer import check_outer, reptile_pseudo_gradient
from metarl.core.params import (
    Params,
    detach_params,
    forward_with,
    named_params,
    stack_params,
    unstack_params,
)
from metarl.core.rules import AdamRule, InnerRule, MetaSGDRule, SGDRule, StatefulRule
from metarl.core.trpo import TRPO, TRPOStats, conjugate_gradient, trpo_step

__all__ = [
    "MAML",
    "AdamRule",
    "InnerLoss",
    "InnerRule",
    "MetaLearner",
    "MetaSGD",
    "MetaSGDRule",
    "Params",
    "Reptile",
    "SGDRule",
    "StatefulRule",
    "TRPO",
    "TRPOStats",
    "TaskBatch",
    "adapt",
    "adapt_batch",
    "as_task_batch",
    "check_outer",
    "conjugate_gradient",
    "detach_params",
    "forward_with",
    "map_tasks",
    "meta_losses",
    "named_params",
    "reptile_pseudo_gradient",
    "resolve_batching",
    "stack_params",
    "trpo_step",
    "unstack_params",
    "vmap_unsafe_layers",
]
