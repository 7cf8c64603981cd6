"""The linear feature baseline of the MAML / rllab code, fitted per task in one batched solve."""

from __future__ import annotations

import torch
from torch import Tensor

from metarl.rl.episodes import Episodes
from metarl.rl.returns import discounted_returns


def baseline_features(observations: Tensor, mask: Tensor) -> Tensor:
    """``[obs, obs^2, t, t^2, t^3, 1]`` per step with ``t = step / 100`` (rllab's features)."""
    horizon = observations.shape[-2]
    t = torch.arange(horizon, dtype=observations.dtype) / 100.0
    t = t.expand(observations.shape[:-1]).unsqueeze(-1)
    obs = observations.clamp(-10, 10)
    ones = torch.ones_like(t)
    features = torch.cat((obs, obs**2, t, t**2, t**3, ones), dim=-1)
    return features * mask.unsqueeze(-1)


def fit_linear_baseline(
    episodes: Episodes, gamma: float, reg: float = 1e-5, max_tries: int = 5
) -> Tensor:
    """Fit a ridge regression of discounted returns on features for each task; return values.

    Returns the fitted values ``[T, E, H]`` (zero on padded steps). As in rllab, the ridge
    coefficient grows tenfold until the solve is finite (and the system positive definite).
    """
    with torch.no_grad():
        obs, mask = episodes.observations.double(), episodes.mask.double()
        returns = discounted_returns(episodes.rewards.double(), mask, gamma)
        x = baseline_features(obs, mask).flatten(1, 2)  # [T, E*H, F]
        y = returns.flatten(1, 2).unsqueeze(-1)  # [T, E*H, 1]
        xtx, xty = x.transpose(1, 2) @ x, x.transpose(1, 2) @ y
        eye = torch.eye(xtx.shape[-1], dtype=xtx.dtype)
        for attempt in range(max_tries):
            # Cholesky, not LU: the normal equations are symmetric positive definite, and
            # oneMKL's batched LU hangs on them when many feature columns are zero (an Ant
            # body that never touches anything gives zero contact-force features).
            factor, info = torch.linalg.cholesky_ex(xtx + reg * 10**attempt * eye)
            coeffs = torch.cholesky_solve(xty, factor)
            if (info == 0).all() and torch.isfinite(coeffs).all():
                break
        values = (x @ coeffs).squeeze(-1).view_as(returns) * mask
    return values.to(episodes.rewards.dtype)
