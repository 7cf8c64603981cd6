"""One registry of meta-learners by name, and checkpoints that describe themselves.

    learner = make_learner("fomaml", Conv4(ways=5), inner_lr=0.4)
    ...meta-train...
    save_learner("maml.pt", learner)              # the learner says what it is
    learner = load_learner("maml.pt")             # weights_only=True; adapts and predicts again
    logits = learner.predict(support_x, support_y, query_x)

A name stands for a learner class plus fixed arguments (``"fomaml"`` is ``MAML`` with
``first_order=True``). Classes are named by import path and imported on first use, so the
table needs none of the subpackages loaded; ``register_learner`` adds a user's own.

A checkpoint holds only plain values and tensors: the learner's and the model's
constructor arguments (``metarl.config.describe``), ``eval_steps``, the state dict and the
caller's ``extra`` values. Files written by the first checkpoint format (a learner
``kind`` string and a model spec) still load.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from torch import nn

from metarl.config import build, class_path, describe, resolve
from metarl.utils.checkpoint import load_checkpoint, save_checkpoint

FORMAT = "metarl-learner/2"

LEARNERS: dict[str, tuple[str, dict[str, Any]]] = {
    "maml": ("metarl.core.learners.MAML", {}),
    "fomaml": ("metarl.core.learners.MAML", {"first_order": True}),
    "metasgd": ("metarl.core.learners.MetaSGD", {}),
    "reptile": ("metarl.core.learners.Reptile", {}),
    "caml": ("metarl.supervised.caml.CAML", {}),
    "gradagree": ("metarl.supervised.gradient_agreement.GradientAgreementMAML", {}),
    "taml": ("metarl.supervised.taml.TAML", {"variant": "entropy"}),
    "taml-theil": ("metarl.supervised.taml.TAML", {"variant": "theil"}),
    "adml": ("metarl.supervised.adml.ADML", {}),
    "lstm": ("metarl.supervised.lstm_meta_learner.LSTMMetaLearner", {}),
    "concept-maml": ("metarl.supervised.concept_space.ConceptSpaceLearner", {}),
    "concept-metasgd": ("metarl.supervised.concept_space.ConceptSpaceLearner", {"meta_sgd": True}),
    "protonet": ("metarl.supervised.prototypes.ProtoNet", {}),
    "gaussian-protonet": ("metarl.supervised.prototypes.GaussianProtoNet", {}),
    "semisupervised-protonet": ("metarl.supervised.prototypes.SemiSupervisedProtoNet", {}),
    "matching": ("metarl.supervised.matching.MatchingNet", {}),
    "matching-fce": ("metarl.supervised.matching.MatchingNet", {"fce": True}),
    "relation": ("metarl.supervised.relation.RelationNet", {}),
    "siamese": ("metarl.supervised.siamese.SiameseNet", {}),
    "metanet": ("metarl.supervised.meta_networks.MetaNetwork", {}),
    "daml": ("metarl.imitation.domain_adaptive.DomainAdaptiveMAML", {}),
    "rl2": ("metarl.rl.rl2.RL2", {}),
    "pearl": ("metarl.rl.pearl.PEARL", {}),
}
# Families by module: metric learners classify by distances or learned similarities (no
# gradient steps at test time); imitation learners adapt on demonstrations; every other
# registered learner adapts by gradient steps on a supervised loss; context learners adapt
# in a recurrent state (RL^2) or a posterior over a latent task (PEARL).
FAMILY_MODULES = {
    "metric": (
        "metarl.supervised.prototypes.",
        "metarl.supervised.matching.",
        "metarl.supervised.relation.",
        "metarl.supervised.siamese.",
        "metarl.supervised.meta_networks.",
    ),
    "imitation": ("metarl.imitation.",),
    "context": ("metarl.rl.rl2.", "metarl.rl.pearl."),
}


def learner_names(family: str) -> list[str]:
    """Registered names of one family: ``"gradient"`` (supervised, adapted by gradient
    steps), ``"metric"``, ``"imitation"`` or ``"context"`` (see ``FAMILY_MODULES``)."""
    if family == "gradient":
        others = tuple(p for prefixes in FAMILY_MODULES.values() for p in prefixes)
        return sorted(n for n, (path, _) in LEARNERS.items() if not path.startswith(others))
    if family not in FAMILY_MODULES:
        raise ValueError(f"family must be 'gradient' or one of {sorted(FAMILY_MODULES)}")
    return sorted(n for n, (p, _) in LEARNERS.items() if p.startswith(FAMILY_MODULES[family]))


def register_learner(name: str, cls: type, **fixed: Any) -> None:
    """Make ``make_learner(name, model, ...)`` build ``cls(model, **fixed, ...)``."""
    if name in LEARNERS:
        raise ValueError(f"a learner named {name!r} is already registered")
    LEARNERS[name] = (class_path(cls), dict(fixed))


def make_learner(name: str, model: nn.Module, **kwargs: Any) -> Any:
    """A fresh learner of the registered ``name`` around ``model``.

    ``kwargs`` are the class's own constructor arguments (``inner_lr``, ``inner_steps``...;
    the LSTM meta-learner's step size is ``initial_step``); an argument the class does not
    take is a ``TypeError`` naming it.
    """
    if name not in LEARNERS:
        raise ValueError(f"unknown learner {name!r}; registered: {sorted(LEARNERS)}")
    path, fixed = LEARNERS[name]
    clash = sorted(set(fixed) & set(kwargs))
    if clash:
        raise ValueError(f"learner {name!r} fixes {clash}; pass a different name instead")
    return resolve(path)(model, **fixed, **kwargs)


def save_learner(
    path: str | os.PathLike, learner: nn.Module, extra: Mapping[str, Any] | None = None
) -> None:
    """Write ``learner`` (model, settings, weights, ``eval_steps``) so ``load_learner``
    rebuilds it; ``extra``: plain values to keep beside it (an iteration, a score)."""
    save_checkpoint(
        {
            "format": FORMAT,
            "learner": describe(learner),
            "model": describe(learner.model),
            "eval_steps": int(learner.eval_steps),
            "state_dict": learner.state_dict(),
            "extra": dict(extra or {}),
        },
        path,
    )


def load_learner(path: str | os.PathLike) -> Any:
    """The learner saved at ``path`` (``weights_only=True``), in eval mode, ready to
    ``predict`` (supervised) or to adapt a policy on fresh episodes (RL)."""
    state = load_checkpoint(path)
    if "kind" in state:
        learner = _from_first_format(state)
    elif state.get("format") == FORMAT:
        learner = build(state["learner"], build(state["model"]))
    else:
        raise ValueError(f"{path} is not a learner checkpoint (no learner description in it)")
    learner.load_state_dict(state["state_dict"])
    learner.eval_steps = int(state["eval_steps"])
    return learner.eval()


# The first format named a learner kind and a model; these are what the kinds meant.
_FIRST_FORMAT_MODELS = {
    "Conv4": "metarl.nn.Conv4",
    "MLP": "metarl.nn.MLP",
    "ContextMLP": "metarl.supervised.caml.ContextMLP",
}


def _from_first_format(state: Mapping[str, Any]) -> Any:
    spec = dict(state["model"])
    model = resolve(_FIRST_FORMAT_MODELS[spec.pop("name")])(**spec)
    kind, steps, lr = state["kind"], state["inner_steps"], state["inner_lr"]
    if kind == "lstm":  # its step size was recorded as inner_lr
        return make_learner(kind, model, inner_steps=steps, initial_step=lr)
    return make_learner(kind, model, inner_lr=lr, inner_steps=steps, **state.get("options", {}))
