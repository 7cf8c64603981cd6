"""Task data for supervised few-shot learning."""

from metarl.supervised.data.sinusoid import SinusoidTasks

__all__ = ["SinusoidTasks"]
