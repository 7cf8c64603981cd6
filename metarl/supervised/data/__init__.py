"""Task data for supervised few-shot learning."""

from metarl.supervised.data.omniglot import LabelledImages, load_image, load_omniglot
from metarl.supervised.data.sinusoid import SinusoidTasks

__all__ = ["LabelledImages", "SinusoidTasks", "load_image", "load_omniglot"]
