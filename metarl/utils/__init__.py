"""Small, boring helpers: checkpoints, seeding, CSV logging."""

from metarl.utils.checkpoint import load_checkpoint, save_checkpoint
from metarl.utils.logging import CSVLogger
from metarl.utils.seeding import seed_everything

__all__ = ["CSVLogger", "load_checkpoint", "save_checkpoint", "seed_everything"]
