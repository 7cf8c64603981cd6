"""One interface for every trained few-shot classifier: build, save, load, predict.

    learner = build_learner("maml", {"name": "Conv4", "ways": 5}, inner_lr=0.4, inner_steps=1)
    ...meta-train learner...
    save_learner("maml.pt", learner, "maml", {"name": "Conv4", "ways": 5}, eval_steps=3)

    clf = load_learner("maml.pt")                      # weights_only=True
    logits = clf.predict(support_x, support_y, query_x)  # [Q, N] for one episode

A checkpoint holds only tensors, numbers and strings: the learner kind, the model's
constructor arguments, the learner's settings and its state dict.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metarl.core import MAML, MetaLearner, MetaSGD, Reptile
from metarl.supervised.adml import ADML
from metarl.supervised.caml import CAML, ContextMLP
from metarl.supervised.gradient_agreement import GradientAgreementMAML
from metarl.supervised.lstm_meta_learner import LSTMMetaLearner
from metarl.supervised.models import MLP, Conv4
from metarl.supervised.taml import TAML
from metarl.utils import load_checkpoint, save_checkpoint

MODELS: dict[str, type[nn.Module]] = {"Conv4": Conv4, "MLP": MLP, "ContextMLP": ContextMLP}
LEARNERS = (
    "maml", "fomaml", "metasgd", "reptile", "caml", "gradagree", "taml", "taml-theil", "adml",
    "lstm",
)  # fmt: skip


def build_model(spec: Mapping[str, Any]) -> nn.Module:
    """``{"name": "Conv4", **kwargs}`` -> the model (``MODELS`` lists the names)."""
    kwargs = dict(spec)
    name = kwargs.pop("name", None)
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {list(MODELS)}")
    return MODELS[name](**kwargs)


def build_learner(
    kind: str,
    model_spec: Mapping[str, Any],
    inner_lr: float,
    inner_steps: int,
    options: Mapping[str, Any] | None = None,
) -> MetaLearner:
    """A fresh learner of ``kind`` (one of ``LEARNERS``) around a model built from its spec.

    ``options``: further keyword arguments of the learner's class, where it has any
    (Reptile: ``inner_rule``, ``inner_batch``).
    """
    model = build_model(model_spec)
    options = dict(options or {})
    if options and kind != "reptile":
        raise ValueError(f"learner {kind!r} takes no options, got {sorted(options)}")
    if kind == "maml":
        return MAML(model, inner_lr, inner_steps)
    if kind == "fomaml":
        return MAML(model, inner_lr, inner_steps, first_order=True)
    if kind == "metasgd":
        return MetaSGD(model, inner_lr, inner_steps)
    if kind == "reptile":
        return Reptile(model, inner_lr, inner_steps, **options)
    if kind == "caml":
        return CAML(model, inner_lr, inner_steps)
    if kind == "gradagree":
        return GradientAgreementMAML(model, inner_lr, inner_steps)
    if kind == "lstm":  # inner_lr: the input gate's starting value (a step size below 1)
        return LSTMMetaLearner(model, inner_steps, initial_step=inner_lr)
    if kind == "adml":
        return ADML(model, inner_lr, inner_steps)
    if kind in ("taml", "taml-theil"):
        variant = "entropy" if kind == "taml" else "theil"
        return TAML(model, inner_lr, inner_steps, variant=variant)
    raise ValueError(f"unknown learner {kind!r}; known: {list(LEARNERS)}")


class FewShotClassifier:
    """A meta-trained learner ready to classify episodes: adapt on the support set, predict."""

    def __init__(self, learner: MetaLearner, eval_steps: int, ways: int | None = None) -> None:
        self.learner = learner
        self.eval_steps = eval_steps
        self.ways = ways  # classes of the model's output layer; None: not recorded
        self._loss = learner.supervised_loss(F.cross_entropy)

    def predict(self, support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
        """Query logits ``[Q, N]`` after ``eval_steps`` inner steps on one episode's support.

        A Conv-4 with ``norm="batch"`` normalises ``query_x`` with its own statistics
        (transductive, as in training): classify queries together, not one at a time; the
        Omniglot learners were trained and tested on batches of one query per class.
        """
        if support_x.shape[0] != support_y.shape[0]:
            raise ValueError(f"{support_x.shape[0]} support examples, {support_y.shape[0]} labels")
        if self.ways is not None and int(support_y.max()) >= self.ways:
            raise ValueError(
                f"support label {int(support_y.max())} is out of range: this learner's output "
                f"layer has {self.ways} classes (it was meta-trained on {self.ways}-way episodes)"
            )
        with torch.no_grad():  # torch.func.grad takes the inner gradients regardless
            adapted = self.learner.adapt(
                self._loss, (support_x, support_y.long()), steps=self.eval_steps, first_order=True
            )
            return self.learner(query_x, params=adapted)


def save_learner(
    path: str | os.PathLike,
    learner: MetaLearner,
    kind: str,
    model_spec: Mapping[str, Any],
    eval_steps: int,
    inner_lr: float,
    extra: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
) -> None:
    """Write everything ``load_learner`` needs (atomically), plus ``extra`` plain values.

    ``options``: the ``build_learner`` options the learner was built with.
    """
    save_checkpoint(
        {
            "kind": kind,
            "model": dict(model_spec),
            "inner_lr": float(inner_lr),
            "inner_steps": int(learner.inner_steps),
            "eval_steps": int(eval_steps),
            "options": dict(options or {}),
            "state_dict": learner.state_dict(),
            "extra": dict(extra or {}),
        },
        path,
    )


def load_learner(path: str | os.PathLike) -> FewShotClassifier:
    """Load a checkpoint written by ``save_learner`` (``weights_only=True``)."""
    state = load_checkpoint(path)
    learner = build_learner(
        state["kind"], state["model"], state["inner_lr"], state["inner_steps"],
        state.get("options", {}),
    )  # fmt: skip
    learner.load_state_dict(state["state_dict"])
    learner.eval()
    return FewShotClassifier(learner, state["eval_steps"], output_classes(state["model"]))


def output_classes(model_spec: Mapping[str, Any]) -> int | None:
    """The number of classes a model built from ``model_spec`` outputs, where the spec says."""
    size = model_spec.get("ways", model_spec.get("out_features"))
    return None if size is None else int(size)
