"""metarl: meta-learning with one adaptation core for RL, imitation and supervised data."""

__version__ = "0.1.0"
