"""Neural Turing machine (Graves, Wayne & Danihelka, 2014).

An LSTM (or feed-forward) controller reads the input and the previous step's read vectors;
its output parametrises each head's addressing (key ``k``, strength ``beta = softplus``,
interpolation gate ``g = sigmoid``, shift kernel ``s = softmax`` over ``-R..R``, sharpening
``gamma = 1 + softplus``; see ``metarl.supervised.addressing``). Read heads return
``sum_i w[i] M[i]``; write heads erase (``e = sigmoid``) then add (``a = tanh``). The output is
a linear map of the controller output and the new read vectors.

Initial state: memory filled with a small constant (the initialisation Collier & Beel, 2018,
found most reliable), every head's weighting focused on slot 0 (so location addressing can
step through memory from a known place), learned initial read vectors.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metarl.supervised.addressing import ntm_address, read, write

Controller = Literal["lstm", "feedforward"]


class NeuralTuringMachine(nn.Module):
    """An NTM over sequences ``[T, B, inputs]`` producing logits ``[T, B, outputs]``.

    Args:
        inputs: input features per step.
        outputs: output features per step.
        slots: memory rows ``N`` (128 in the paper's copy task).
        width: memory row width ``M`` (20).
        hidden: controller units (100).
        read_heads: number of read heads (1).
        write_heads: number of write heads (1).
        shift_radius: shifts ``-R..R`` the heads can make per step (1).
        controller: ``"lstm"`` or ``"feedforward"`` (one tanh layer).
        memory_init: the constant every memory cell starts at.
    """

    def __init__(
        self,
        inputs: int,
        outputs: int,
        slots: int = 128,
        width: int = 20,
        hidden: int = 100,
        read_heads: int = 1,
        write_heads: int = 1,
        shift_radius: int = 1,
        controller: Controller = "lstm",
        memory_init: float = 1e-6,
    ):
        super().__init__()
        sizes = {"inputs": inputs, "outputs": outputs, "slots": slots, "width": width,
                 "hidden": hidden, "read_heads": read_heads}  # fmt: skip
        for name, value in sizes.items():
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if write_heads < 0 or shift_radius < 0 or 2 * shift_radius + 1 > slots:
            raise ValueError(f"need write_heads >= 0 and 0 <= 2 * shift_radius + 1 <= slots, got "
                             f"{write_heads}, {shift_radius}, {slots}")  # fmt: skip
        if controller not in ("lstm", "feedforward"):
            raise ValueError(f"controller must be 'lstm' or 'feedforward', got {controller!r}")
        self.inputs, self.slots, self.width, self.hidden = inputs, slots, width, hidden
        self.read_heads, self.write_heads, self.shift_radius = read_heads, write_heads, shift_radius
        self.controller_kind, self.memory_init = controller, memory_init
        controller_in = inputs + read_heads * width
        if controller == "lstm":
            self.controller = nn.LSTMCell(controller_in, hidden)
        else:
            self.controller = nn.Linear(controller_in, hidden)
        address_size = width + 3 + 2 * shift_radius + 1  # key, beta, gate, gamma, shifts
        self.read_params = nn.Linear(hidden, read_heads * address_size)
        self.write_params = nn.Linear(hidden, write_heads * (address_size + 2 * width))
        self.initial_reads = nn.Parameter(torch.randn(read_heads, width) * 0.01)
        self.out = nn.Linear(hidden + read_heads * width, outputs)

    def _address(self, memory: Tensor, previous: Tensor, params: Tensor) -> Tensor:
        w, shifts = self.width, 2 * self.shift_radius + 1
        key, beta, gate, gamma, kernel = params.split((w, 1, 1, 1, shifts), dim=-1)
        return ntm_address(memory, previous, key, F.softplus(beta), torch.sigmoid(gate),
                           torch.softmax(kernel, -1), 1 + F.softplus(gamma))  # fmt: skip

    def forward(self, inputs: Tensor, trace: dict[str, list[Tensor]] | None = None) -> Tensor:
        """Logits ``[T, B, outputs]`` for ``inputs: [T, B, inputs]``. When ``trace`` is a dict,
        the read and write weightings of every step are appended to ``trace["read"]`` and
        ``trace["write"]`` (``[B, heads, N]`` each), for plotting what the heads did."""
        steps, batch = inputs.shape[:2]
        memory = inputs.new_full((batch, self.slots, self.width), self.memory_init)
        focused = inputs.new_zeros(batch, self.slots)
        focused[:, 0] = 1.0
        reads_w = [focused] * self.read_heads
        writes_w = [focused] * self.write_heads
        reads = [self.initial_reads[i].expand(batch, -1) for i in range(self.read_heads)]
        h = c = inputs.new_zeros(batch, self.hidden)
        outputs = []
        for t in range(steps):
            x = torch.cat([inputs[t], *reads], -1)
            if self.controller_kind == "lstm":
                h, c = self.controller(x, (h, c))
            else:
                h = torch.tanh(self.controller(x))
            if self.write_heads:
                size = self.write_params.out_features // self.write_heads
                for i, p in enumerate(self.write_params(h).split(size, -1)):
                    address, erase, add = p.split(
                        (size - 2 * self.width, self.width, self.width), -1
                    )
                    writes_w[i] = self._address(memory, writes_w[i], address)
                    memory = write(memory, writes_w[i], torch.sigmoid(erase), torch.tanh(add))
            read_all = self.read_params(h).split(
                self.read_params.out_features // self.read_heads, -1
            )
            for i, p in enumerate(read_all):
                reads_w[i] = self._address(memory, reads_w[i], p)
                reads[i] = read(memory, reads_w[i])
            outputs.append(self.out(torch.cat([h, *reads], -1)))
            if trace is not None:
                trace.setdefault("read", []).append(torch.stack(reads_w, 1).detach())
                if self.write_heads:
                    trace.setdefault("write", []).append(torch.stack(writes_w, 1).detach())
        return torch.stack(outputs)

    def config(self) -> dict:
        """The constructor arguments other than ``inputs`` / ``outputs``."""
        return {"slots": self.slots, "width": self.width, "hidden": self.hidden,
                "read_heads": self.read_heads, "write_heads": self.write_heads,
                "shift_radius": self.shift_radius, "controller": self.controller_kind,
                "memory_init": self.memory_init}  # fmt: skip
