"""Deep meta-learning in concept space (Zhou, Wu & Li, "Deep Meta-Learning: Learning to Learn
in the Concept Space", 2018).

The network is split into a *concept generator* (every layer but the last) and a
*meta-learner* acting on its output, the concept (the last layer). The inner loop adapts
only the last layer, by MAML's gradient steps or Meta-SGD's learned per-parameter steps; the
outer loop trains the whole network, and a *concept discriminator* (a linear classifier on
the concept) is trained jointly on an external labelled set (for Omniglot: the
meta-training characters with their labels), so the concepts also carry what ordinary
supervised training teaches. The experiment adds ``concept_loss`` on an external batch to
``meta_loss``.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from metarl.core.learners import BatchingChoice, MetaLearner
from metarl.core.params import Params, named_params
from metarl.core.rules import MetaSGDRule, SGDRule


def last_layer(model: nn.Module) -> tuple[str, nn.Module]:
    """The name and module of the last submodule owning parameters directly (the layer that
    maps concepts to outputs)."""
    owners = [(name, m) for name, m in model.named_modules()
              if any(True for _ in m.parameters(recurse=False))]  # fmt: skip
    if not owners or owners[-1][0] == "":
        raise ValueError("the model needs a last layer that is a submodule with parameters")
    return owners[-1]


class ConceptSpaceLearner(MetaLearner):
    """MAML or Meta-SGD in concept space (see the module docstring).

    Args:
        model: the whole network; its last parametrised submodule (``last_layer``) is the
            meta-learner adapted in the inner loop, the rest the concept generator.
        inner_lr: inner step size (Meta-SGD: its initial value).
        inner_steps: inner steps.
        meta_sgd: learn per-parameter step sizes (Meta-SGD) instead of one step (MAML).
        first_order: drop second-order terms of the meta-gradient.
        external_classes: classes of the external labelled set the concept discriminator
            predicts (0: no discriminator).
        batching, chunk_size: as for ``MetaLearner``.
    """

    def __init__(
        self,
        model: nn.Module,
        inner_lr: float = 0.4,
        inner_steps: int = 1,
        meta_sgd: bool = False,
        first_order: bool = False,
        external_classes: int = 0,
        batching: BatchingChoice = "auto",
        chunk_size: int | None = None,
    ) -> None:
        name, layer = last_layer(model)
        self._prefix = name + "."
        adapted = {k: p for k, p in named_params(model).items() if k.startswith(self._prefix)}
        rule = MetaSGDRule(adapted, inner_lr) if meta_sgd else SGDRule(inner_lr)
        super().__init__(model, rule, inner_steps, first_order, batching, chunk_size)
        if external_classes < 0:
            raise ValueError(f"external_classes must be >= 0, got {external_classes}")
        self.meta_sgd, self.external_classes = meta_sgd, external_classes
        concept_dim = getattr(layer, "in_features", None)
        if external_classes and concept_dim is None:
            raise ValueError("the concept discriminator needs a last layer with in_features")
        self.discriminator = nn.Linear(concept_dim, external_classes) if external_classes else None

    def params(self) -> Params:
        """The last layer's parameters: the only ones the inner loop adapts (the concept
        generator's enter the inner loop as they are and learn in the outer loop)."""
        return {k: p for k, p in named_params(self.model).items() if k.startswith(self._prefix)}

    def concepts(self, x: Tensor) -> Tensor:
        """The concept generator's output for ``x``: the last layer's input."""
        captured: list[Tensor] = []
        layer = self.model.get_submodule(self._prefix[:-1])
        hook = layer.register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
        try:
            self.model(x)
        finally:
            hook.remove()
        return captured[0]

    def concept_loss(self, x: Tensor, y: Tensor) -> Tensor:
        """The concept discriminator's cross-entropy on an external labelled batch."""
        if self.discriminator is None:
            raise ValueError("this learner has no concept discriminator (external_classes=0)")
        return F.cross_entropy(self.discriminator(self.concepts(x)), y)
