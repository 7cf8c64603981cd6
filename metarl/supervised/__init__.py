"""Few-shot supervised learning on the same adaptation core as the meta-RL learners."""

from metarl.supervised.data import SinusoidTasks
from metarl.supervised.models import MLP

__all__ = ["MLP", "SinusoidTasks"]
