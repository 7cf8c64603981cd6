"""The copy task of Graves et al. (2014) and its costs.

A sequence of ``length`` random binary vectors of ``bits`` bits is presented, followed by a
delimiter (a flag on an extra input channel); the model must then reproduce the sequence
with no further input. Inputs are ``[2 * length + 1, B, bits + 1]``, targets
``[length, B, bits]``, and the model's answer is its output over the last ``length`` steps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def copy_batch(
    batch: int, length: int, bits: int = 8, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """``(inputs, targets)`` for ``batch`` copy sequences of ``length`` vectors (see module)."""
    if batch < 1 or length < 1 or bits < 1:
        raise ValueError(f"batch, length and bits must be >= 1, got {batch}, {length}, {bits}")
    targets = torch.randint(0, 2, (length, batch, bits), generator=generator).float()
    inputs = torch.zeros(2 * length + 1, batch, bits + 1)
    inputs[:length, :, :bits] = targets
    inputs[length, :, bits] = 1.0
    return inputs, targets


def answer(logits: Tensor, length: int) -> Tensor:
    """The model's answer: its logits over the last ``length`` steps."""
    return logits[-length:]


def bits_per_sequence(logits: Tensor, targets: Tensor) -> Tensor:
    """Cross-entropy of the answer in bits, summed over steps and bits: ``[B]``
    (the cost of Graves et al.'s figures)."""
    nats = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    return nats.sum((0, 2)) / math.log(2)


def wrong_bits(logits: Tensor, targets: Tensor) -> Tensor:
    """Bits of the thresholded answer that differ from the target, per sequence: ``[B]``."""
    return ((logits > 0).float() != targets).float().sum((0, 2))
