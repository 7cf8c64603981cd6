"""Meta-reinforcement learning on metarl.core: sampler, policies, baselines, losses, trainer."""

from metarl.rl.baselines import fit_linear_baseline
from metarl.rl.episodes import Episodes, PolicyGradientData
from metarl.rl.losses import policy_gradient_data, reinforce_loss, surrogate_and_kl
from metarl.rl.policies import CategoricalMLPPolicy, GaussianMLPPolicy
from metarl.rl.returns import discounted_returns, gae_advantages, normalize_advantages
from metarl.rl.sampler import MultiTaskSampler
from metarl.rl.trainer import MetaRLTrainer

__all__ = [
    "CategoricalMLPPolicy",
    "Episodes",
    "GaussianMLPPolicy",
    "MetaRLTrainer",
    "MultiTaskSampler",
    "PolicyGradientData",
    "discounted_returns",
    "fit_linear_baseline",
    "gae_advantages",
    "normalize_advantages",
    "policy_gradient_data",
    "reinforce_loss",
    "surrogate_and_kl",
]
