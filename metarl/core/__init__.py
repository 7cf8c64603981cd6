"""The adaptation core shared by every meta-learner in metarl.

- ``params``: functional parameters (dicts of tensors applied with ``functional_call``);
- ``rules``: inner update rules (SGD step, Meta-SGD's learned step sizes);
- ``adapt``: adapt one task, or a batch of tasks with vmap or a reference loop;
- ``outer``: outer updates that are not plain backprop (Reptile);
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
from metarl.core.outer import reptile_pseudo_gradient, reptile_update
from metarl.core.params import (
    Params,
    detach_params,
    forward_with,
    named_params,
    stack_params,
    unstack_params,
)
from metarl.core.rules import AdamRule, InnerRule, MetaSGDRule, SGDRule, StatefulRule

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
    "TaskBatch",
    "adapt",
    "adapt_batch",
    "as_task_batch",
    "detach_params",
    "forward_with",
    "map_tasks",
    "meta_losses",
    "named_params",
    "reptile_pseudo_gradient",
    "reptile_update",
    "resolve_batching",
    "stack_params",
    "unstack_params",
    "vmap_unsafe_layers",
]
