"""Few-shot supervised learning on the same adaptation core as the meta-RL learners."""

from metarl.supervised.data import SinusoidTasks, load_omniglot
from metarl.supervised.episodes import EpisodeSampler
from metarl.supervised.models import MLP

__all__ = ["MLP", "EpisodeSampler", "SinusoidTasks", "load_omniglot"]
