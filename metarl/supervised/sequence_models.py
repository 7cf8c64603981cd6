"""Sequence models over ``[T, B, features]``: the LSTM baseline, and saving / loading any of
them (``NeuralTuringMachine``, ``MemoryAugmentedNetwork``, ``LSTMSequenceModel``)."""

from __future__ import annotations

import os
from pathlib import Path

from torch import Tensor, nn

from metarl.supervised.mann import MemoryAugmentedNetwork
from metarl.supervised.ntm import NeuralTuringMachine
from metarl.utils.checkpoint import load_checkpoint, save_checkpoint


class LSTMSequenceModel(nn.Module):
    """The baseline: a stacked LSTM over ``[T, B, inputs]`` with a linear read-out (Graves et
    al. used three layers of 256 units on the copy task, Santoro et al. one of 200)."""

    def __init__(self, inputs: int, outputs: int, hidden: int = 256, layers: int = 3):
        super().__init__()
        if min(inputs, outputs, hidden, layers) < 1:
            raise ValueError("inputs, outputs, hidden and layers must be >= 1")
        self.inputs, self.hidden, self.layers = inputs, hidden, layers
        self.lstm = nn.LSTM(inputs, hidden, num_layers=layers)
        self.out = nn.Linear(hidden, outputs)

    def forward(self, inputs: Tensor, trace: dict[str, list[Tensor]] | None = None) -> Tensor:
        """Logits ``[T, B, outputs]``; ``trace`` is accepted for a common call and left empty."""
        return self.out(self.lstm(inputs)[0])

    def config(self) -> dict:
        """The constructor arguments other than ``inputs`` / ``outputs``."""
        return {"hidden": self.hidden, "layers": self.layers}


SequenceModel = NeuralTuringMachine | MemoryAugmentedNetwork | LSTMSequenceModel
SEQUENCE_MODEL_FORMAT = "metarl-sequence-model/1"
KINDS: dict[str, type[SequenceModel]] = {
    "ntm": NeuralTuringMachine,
    "mann": MemoryAugmentedNetwork,
    "lstm": LSTMSequenceModel,
}


def save_sequence_model(path: str | os.PathLike, model: SequenceModel) -> Path:
    """Write ``model`` (its kind, sizes and weights) atomically; see ``load_sequence_model``."""
    kind = next(name for name, cls in KINDS.items() if type(model) is cls)
    config = {"inputs": model.inputs, "outputs": model.out.out_features, **model.config()}
    return save_checkpoint({"format": SEQUENCE_MODEL_FORMAT, "kind": kind, "config": config,
                            "state": model.state_dict()}, path)  # fmt: skip


def load_sequence_model(path: str | os.PathLike) -> SequenceModel:
    """The model saved by ``save_sequence_model`` (verified, loaded ``weights_only``), in
    evaluation mode."""
    saved = load_checkpoint(path)
    if saved.get("format") != SEQUENCE_MODEL_FORMAT:
        raise ValueError(f"{path} is not a sequence model ({SEQUENCE_MODEL_FORMAT}): "
                         f"its format is {saved.get('format')!r}")  # fmt: skip
    model = KINDS[saved["kind"]](**saved["config"])
    model.load_state_dict(saved["state"])
    return model.eval()
