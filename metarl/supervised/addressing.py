"""Memory addressing for memory-augmented networks, batched over a leading axis.

The pieces of the neural Turing machine's addressing (Graves, Wayne & Danihelka, 2014,
section 3.3) and the least-recently-used access of memory-augmented neural networks
(Santoro et al., ICML 2016). Memories are ``[batch, slots, width]``, weightings over the
slots ``[batch, slots]``; every function is pure, so ``vmap`` and autograd go through it.

NTM addressing, one head, one step::

    w_c   = softmax(beta * cos(k, M[i]))                 content
    w_g   = g * w_c + (1 - g) * w_prev                   interpolation
    w~[i] = sum_j w_g[j] * s[(i - j) mod N]              circular shift
    w[i]  = w~[i]^gamma / sum_j w~[j]^gamma              sharpening
"""

from __future__ import annotations

import torch
from torch import Tensor


def content_weights(memory: Tensor, key: Tensor, beta: Tensor, eps: float = 1e-8) -> Tensor:
    """``softmax_i(beta * cos(key, memory[i]))`` for ``key: [B, W]`` (``beta: [B]`` or
    ``[B, 1]``) or one key per head, ``key: [B, H, W]`` (``beta: [B, H]`` or ``[B, H, 1]``);
    the weighting has the key's shape with ``W`` replaced by the slots ``N``."""
    batch, width = key.shape[0], key.shape[-1]
    keys = key.reshape(batch, -1, width)
    unit_keys = keys / keys.norm(dim=-1, keepdim=True).clamp_min(eps)
    unit_rows = memory / memory.norm(dim=-1, keepdim=True).clamp_min(eps)
    similarity = torch.einsum("bhw,bnw->bhn", unit_keys, unit_rows)
    weights = torch.softmax(beta.reshape(batch, -1, 1) * similarity, dim=-1)
    return weights.reshape(*key.shape[:-1], memory.shape[1])


def interpolate(content: Tensor, previous: Tensor, gate: Tensor) -> Tensor:
    """``gate * content + (1 - gate) * previous`` for weightings ``[B, N]`` (``gate: [B]`` or
    ``[B, 1]`` in ``[0, 1]``) or ``[B, H, N]`` (``gate: [B, H]`` or ``[B, H, 1]``);
    ``previous`` broadcasts against ``content``."""
    gate = gate.reshape(*content.shape[:-1], 1)
    return gate * content + (1 - gate) * previous


def shift(weights: Tensor, kernel: Tensor) -> Tensor:
    """Circular convolution of ``weights: [B, N]`` with ``kernel: [B, 2R + 1]`` over the shifts
    ``-R..R``: ``out[i] = sum_s kernel[s] * weights[(i - s) mod N]``, so all mass at slot
    ``j`` moves to slot ``j + 1`` under the kernel ``(0, 0, 1)`` (shift by +1)."""
    radius = (kernel.shape[-1] - 1) // 2
    if kernel.shape[-1] != 2 * radius + 1:
        raise ValueError(f"the shift kernel needs an odd length, got {kernel.shape[-1]}")
    if 2 * radius + 1 > weights.shape[-1]:
        raise ValueError(f"{kernel.shape[-1]} shifts do not fit {weights.shape[-1]} slots")
    rolled = torch.stack([weights.roll(s, dims=-1) for s in range(-radius, radius + 1)], -1)
    return (rolled * kernel[:, None, :]).sum(-1)


def sharpen(weights: Tensor, gamma: Tensor, eps: float = 1e-12) -> Tensor:
    """``w^gamma / sum w^gamma``; ``gamma: [B]`` or ``[B, 1]``, at least 1."""
    powered = (weights + eps) ** gamma.reshape(-1, 1)
    return powered / powered.sum(-1, keepdim=True)


def ntm_address(
    memory: Tensor,
    previous: Tensor,
    key: Tensor,
    beta: Tensor,
    gate: Tensor,
    kernel: Tensor,
    gamma: Tensor,
) -> Tensor:
    """The full NTM addressing (module docstring): content, interpolation, shift, sharpen."""
    gated = interpolate(content_weights(memory, key, beta), previous, gate)
    return sharpen(shift(gated, kernel), gamma)


def read(memory: Tensor, weights: Tensor) -> Tensor:
    """The read vector ``sum_i w[i] M[i]``: ``[B, W]`` for ``weights: [B, N]``, ``[B, H, W]``
    for one weighting per head, ``[B, H, N]``."""
    return torch.einsum("b...n,bnw->b...w", weights, memory)


def write(memory: Tensor, weights: Tensor, erase: Tensor, add: Tensor) -> Tensor:
    """``M[i] * (1 - w[i] e) + w[i] a`` (erase then add); ``erase`` in ``[0, 1]``, ``[B, W]``."""
    memory = memory * (1 - weights[:, :, None] * erase[:, None, :])
    return memory + weights[:, :, None] * add[:, None, :]


def least_used(usage: Tensor, reads: int) -> Tensor:
    """The indicator ``[B, N]`` of the ``reads`` least-used slots (smallest ``usage``); ties go
    to the lower index, so exactly ``reads`` slots are marked."""
    if not 1 <= reads <= usage.shape[-1]:
        raise ValueError(f"reads must be in 1..{usage.shape[-1]}, got {reads}")
    smallest = usage.argsort(dim=-1, stable=True)[..., :reads]
    return torch.zeros_like(usage).scatter(-1, smallest, 1.0)


def lru_write_weights(gate: Tensor, previous_read: Tensor, previous_least_used: Tensor) -> Tensor:
    """MANN's write weighting ``sigmoid(alpha) w_r(t-1) + (1 - sigmoid(alpha)) w_lu(t-1)``,
    ``gate = sigmoid(alpha)``, shaped as for ``interpolate``: per head, ``previous_read`` is
    ``[B, H, N]``, ``gate`` ``[B, H, 1]`` and ``previous_least_used`` ``[B, 1, N]``."""
    return interpolate(previous_read, previous_least_used, gate)


def update_usage(
    usage: Tensor, read_weights: Tensor, write_weights: Tensor, decay: float
) -> Tensor:
    """MANN's usage ``w_u(t) = decay * w_u(t-1) + w_r(t) + w_w(t)`` (read weights summed over
    heads when given as ``[B, heads, N]``)."""
    if read_weights.dim() == 3:
        read_weights = read_weights.sum(1)
    if write_weights.dim() == 3:
        write_weights = write_weights.sum(1)
    return decay * usage + read_weights + write_weights
