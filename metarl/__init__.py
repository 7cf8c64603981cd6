"""metarl: meta-learning with one adaptation core for RL, imitation and supervised data."""

__version__ = "0.1.0"

from metarl import envs  # noqa: E402  (registers the metarl/ environment ids)

__all__ = ["envs"]
