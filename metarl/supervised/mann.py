"""Memory-augmented neural network with least-recently-used access (Santoro, Bartunov,
Botvinick, Wierstra & Lillicrap, "Meta-learning with memory-augmented neural networks",
ICML 2016).

An LSTM controller reads the step's input and the previous read vectors. Each head emits a
key ``k`` (with a strength ``beta = softplus``, a small addition to the paper's plain
cosine softmax) and a write gate ``sigmoid(alpha)``. Per step, for every head::

    w_w   = sigmoid(alpha) * w_r(t-1) + (1 - sigmoid(alpha)) * w_lu(t-1)     write weighting
    M     = M * (1 - w_lu(t-1)) + sum_heads w_w k^T        clear the least used, write keys
    w_r   = softmax(beta * cos(k, M[i]))                   read weighting (content only)
    r     = sum_i w_r[i] M[i]
    w_u   = decay * w_u(t-1) + sum_heads (w_r + w_w)       usage
    w_lu  = the ``heads`` least-used slots of w_u

so a head either writes where it last read (updating a memory) or to a rarely used slot
(storing a new one). The output is a linear map of the controller output and the reads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metarl.supervised.addressing import (
    content_weights,
    least_used,
    lru_write_weights,
    read,
    update_usage,
)


class MemoryAugmentedNetwork(nn.Module):
    """A MANN over sequences ``[T, B, inputs]`` producing logits ``[T, B, outputs]``.

    Args:
        inputs: input features per step (image and previous label).
        outputs: classes.
        slots: memory rows (128 in the paper).
        width: memory row width (40).
        hidden: LSTM controller units (200).
        heads: read heads, each with its write (4).
        decay: usage decay ``gamma`` (0.95).
        memory_init: the constant every memory cell starts at.
        initial_strength: the key strength ``beta`` every head starts with (before any
            training; a sharp start lets reads pick out single slots from the beginning).
    """

    def __init__(
        self,
        inputs: int,
        outputs: int,
        slots: int = 128,
        width: int = 40,
        hidden: int = 200,
        heads: int = 4,
        decay: float = 0.95,
        memory_init: float = 1e-6,
        initial_strength: float = 10.0,
    ):
        super().__init__()
        sizes = {"inputs": inputs, "outputs": outputs, "slots": slots, "width": width,
                 "hidden": hidden, "heads": heads}  # fmt: skip
        for name, value in sizes.items():
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if heads > slots:
            raise ValueError(f"{heads} heads need at least as many slots, got {slots}")
        if not 0 <= decay <= 1:
            raise ValueError(f"decay must be in [0, 1], got {decay}")
        if not initial_strength > 0:
            raise ValueError(f"initial_strength must be positive, got {initial_strength}")
        self.inputs, self.slots, self.width, self.hidden = inputs, slots, width, hidden
        self.heads, self.decay, self.memory_init = heads, decay, memory_init
        self.initial_strength = initial_strength
        self.controller = nn.LSTMCell(inputs + heads * width, hidden)
        self.head_params = nn.Linear(hidden, heads * (width + 2))  # key, beta, alpha
        self.out = nn.Linear(hidden + heads * width, outputs)
        with torch.no_grad():  # beta = softplus(raw): raw = log(exp(strength) - 1)
            bias = self.head_params.bias.view(heads, width + 2)
            bias[:, width] = initial_strength + torch.log(
                -torch.expm1(torch.tensor(-initial_strength))
            )

    def forward(self, inputs: Tensor, trace: dict[str, list[Tensor]] | None = None) -> Tensor:
        """Logits ``[T, B, outputs]`` for ``inputs: [T, B, inputs]``; with a ``trace`` dict,
        the read and write weightings (``[B, heads, N]``) of every step are appended to
        ``trace["read"]`` and ``trace["write"]``."""
        steps, batch = inputs.shape[:2]
        memory = inputs.new_full((batch, self.slots, self.width), self.memory_init)
        usage = inputs.new_zeros(batch, self.slots)
        unused = least_used(usage, self.heads)
        read_w = inputs.new_zeros(batch, self.heads, self.slots)
        read_w[:, :, 0] = 1.0
        reads = inputs.new_zeros(batch, self.heads * self.width)
        h = c = inputs.new_zeros(batch, self.hidden)
        outputs = []
        for t in range(steps):
            h, c = self.controller(torch.cat([inputs[t], reads], -1), (h, c))
            params = self.head_params(h).view(batch, self.heads, self.width + 2)
            keys, beta, alpha = params.split((self.width, 1, 1), -1)
            write_w = lru_write_weights(torch.sigmoid(alpha), read_w, unused[:, None])
            memory = memory * (1 - unused[:, :, None])
            memory = memory + torch.einsum("bhn,bhw->bnw", write_w, keys)
            read_w = content_weights(memory, keys, F.softplus(beta))
            reads = read(memory, read_w).flatten(1)
            usage = update_usage(usage, read_w, write_w, self.decay)
            unused = least_used(usage, self.heads)
            outputs.append(self.out(torch.cat([h, reads], -1)))
            if trace is not None:
                trace.setdefault("read", []).append(read_w.detach())
                trace.setdefault("write", []).append(write_w.detach())
        return torch.stack(outputs)

    def config(self) -> dict:
        """The constructor arguments other than ``inputs`` / ``outputs``."""
        return {"slots": self.slots, "width": self.width,
                "hidden": self.hidden, "heads": self.heads, "decay": self.decay,
                "memory_init": self.memory_init,
                "initial_strength": self.initial_strength}  # fmt: skip
