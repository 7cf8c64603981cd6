"""Meta-reinforcement learning on metarl.core: sampler, policies, baselines, losses, trainer;
the context-based learners beside it: RL^2 (recurrent policy, trial sampler, PPO) and PEARL
(context encoder, soft actor-critic, per-task replay)."""

from metarl.rl.baselines import fit_linear_baseline
from metarl.rl.episodes import Episodes, PolicyGradientData
from metarl.rl.losses import policy_gradient_data, reinforce_loss, surrogate_and_kl
from metarl.rl.pearl import PEARL, ContextEncoder, PEARLTrainer
from metarl.rl.policies import CategoricalMLPPolicy, GaussianMLPPolicy, TanhGaussianMLPPolicy
from metarl.rl.ppo import PPO
from metarl.rl.recurrent import GRUPolicy
from metarl.rl.replay import TaskReplay, Transitions
from metarl.rl.returns import discounted_returns, gae_advantages, normalize_advantages
from metarl.rl.rl2 import RL2, RL2Trainer
from metarl.rl.sampler import MultiTaskSampler
from metarl.rl.trainer import Evaluation, MetaRLTrainer
from metarl.rl.trials import Trials, TrialSampler

__all__ = [
    "CategoricalMLPPolicy",
    "ContextEncoder",
    "Episodes",
    "Evaluation",
    "GRUPolicy",
    "GaussianMLPPolicy",
    "MetaRLTrainer",
    "MultiTaskSampler",
    "PEARL",
    "PEARLTrainer",
    "PPO",
    "PolicyGradientData",
    "RL2",
    "RL2Trainer",
    "TanhGaussianMLPPolicy",
    "TaskReplay",
    "Transitions",
    "TrialSampler",
    "Trials",
    "discounted_returns",
    "fit_linear_baseline",
    "gae_advantages",
    "normalize_advantages",
    "policy_gradient_data",
    "reinforce_loss",
    "surrogate_and_kl",
]
