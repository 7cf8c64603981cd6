"""Meta-imitation learning on metarl.core: experts, demonstrations, behaviour-cloning losses.

MIL (Finn, Yu, Zhang, Abbeel and Levine, 2017) is any ``metarl.core`` learner with
``bc_loss`` as its inner and outer loss on ``DemoTasks``' support and query demonstrations.
"""

from metarl.imitation.demos import (
    DemoDatasetError,
    Demonstrations,
    generate_demos,
    load_demos,
    save_demos,
)
from metarl.imitation.experts import Navigation2DExpert, make_expert
from metarl.imitation.losses import DemoData, bc_loss
from metarl.imitation.tasks import DemoTasks

__all__ = [
    "DemoData",
    "DemoDatasetError",
    "DemoTasks",
    "Demonstrations",
    "Navigation2DExpert",
    "bc_loss",
    "generate_demos",
    "load_demos",
    "make_expert",
    "save_demos",
]
