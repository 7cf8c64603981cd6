"""Small, boring helpers: checkpoints, seeding, CSV logging and the experiment runner."""

from metarl.utils.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from metarl.utils.logging import CSVLogger
from metarl.utils.run import Run, RunError, machine, plot_curves, start_run, versions
from metarl.utils.seeding import seed_everything

__all__ = [
    "CSVLogger",
    "CheckpointError",
    "Run",
    "RunError",
    "load_checkpoint",
    "machine",
    "plot_curves",
    "save_checkpoint",
    "seed_everything",
    "start_run",
    "versions",
]
