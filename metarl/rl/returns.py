"""Discounted returns and generalised advantage estimation on padded, masked episodes."""

from __future__ import annotations

import torch
from torch import Tensor


def discounted_returns(rewards: Tensor, mask: Tensor, gamma: float) -> Tensor:
    """``G_h = sum_k gamma^k r_{h+k}`` within each episode; zero on padded steps.

    ``rewards`` and ``mask`` are ``[..., H]``; the time dimension is last.
    """
    returns = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[..., 0])
    for h in range(rewards.shape[-1] - 1, -1, -1):
        running = (rewards[..., h] + gamma * running) * mask[..., h]
        returns[..., h] = running
    return returns


def gae_advantages(
    rewards: Tensor, values: Tensor, mask: Tensor, gamma: float, lam: float
) -> Tensor:
    """Generalised advantage estimation (Schulman et al., 2016) with ``values [..., H]``.

    The value after the last valid step is taken as zero: episodes end by termination or at
    the horizon, as in the MAML code. ``lam=1`` gives ``returns - values``.
    """
    values = values * mask
    next_values = torch.cat((values[..., 1:], torch.zeros_like(values[..., :1])), dim=-1)
    deltas = (rewards + gamma * next_values - values) * mask
    return discounted_returns(deltas, mask, gamma * lam)


def normalize_advantages(advantages: Tensor, mask: Tensor, eps: float = 1e-8) -> Tensor:
    """Zero mean, unit variance over the valid steps of each task (dimensions after the first)."""
    dims = tuple(range(1, advantages.dim()))
    count = mask.sum(dims, keepdim=True).clamp_min(1)
    mean = (advantages * mask).sum(dims, keepdim=True) / count
    var = (((advantages - mean) * mask) ** 2).sum(dims, keepdim=True) / count
    return (advantages - mean) / (var.sqrt() + eps) * mask
