"""Task-distribution environments, installed as ``metarl.envs``."""
