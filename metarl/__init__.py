"""metarl: meta-learning with one adaptation core for RL, imitation and supervised data."""

__version__ = "0.1.0"

from metarl import envs  # noqa: E402  (registers the metarl/ environment ids)
from metarl.learners import load_learner, make_learner, register_learner, save_learner  # noqa: E402

__all__ = ["envs", "load_learner", "make_learner", "register_learner", "save_learner"]
