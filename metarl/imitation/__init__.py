"""Meta-imitation learning on metarl.core: experts, demonstrations, behaviour-cloning losses.

MIL (Finn, Yu, Zhang, Abbeel and Levine, 2017) is any ``metarl.core`` learner with
``bc_loss`` as its inner and outer loss on ``DemoTasks``' support and query demonstrations;
domain-adaptive meta-learning (Yu et al. 2018) is ``DomainAdaptiveMAML``, whose inner loss
is learned and sees the support demonstrations' observations only (``observed``).
"""

from metarl.imitation.demos import (
    DemoDatasetError,
    Demonstrations,
    generate_demos,
    load_demos,
    save_demos,
)
from metarl.imitation.domain_adaptive import (
    DomainAdaptiveMAML,
    ObservationLoss,
    ObservedDemo,
    observed,
)
from metarl.imitation.experts import Navigation2DExpert, make_expert
from metarl.imitation.losses import DemoData, bc_loss
from metarl.imitation.tasks import DemoTasks

__all__ = [
    "DemoData",
    "DemoDatasetError",
    "DemoTasks",
    "Demonstrations",
    "DomainAdaptiveMAML",
    "Navigation2DExpert",
    "ObservationLoss",
    "ObservedDemo",
    "bc_loss",
    "generate_demos",
    "load_demos",
    "make_expert",
    "observed",
    "save_demos",
]
