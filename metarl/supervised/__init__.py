"""Few-shot supervised learning on the same adaptation core as the meta-RL learners."""

from metarl.learners import load_learner, make_learner, save_learner
from metarl.nn import MLP, Conv4, Conv4Maps, TaskBatchNorm2d
from metarl.supervised.adml import ADML
from metarl.supervised.caml import CAML, ContextMLP
from metarl.supervised.data import SinusoidTasks, load_omniglot
from metarl.supervised.episodes import EpisodeSampler
from metarl.supervised.gradient_agreement import GradientAgreementMAML
from metarl.supervised.lstm_meta_learner import LSTMMetaLearner
from metarl.supervised.matching import MatchingNet
from metarl.supervised.prototypes import GaussianProtoNet, ProtoNet, SemiSupervisedProtoNet
from metarl.supervised.relation import RelationNet
from metarl.supervised.siamese import SiameseNet
from metarl.supervised.taml import TAML

__all__ = [
    "ADML",
    "CAML",
    "ContextMLP",
    "MLP",
    "MatchingNet",
    "ProtoNet",
    "RelationNet",
    "SemiSupervisedProtoNet",
    "SiameseNet",
    "Conv4",
    "Conv4Maps",
    "EpisodeSampler",
    "GaussianProtoNet",
    "GradientAgreementMAML",
    "LSTMMetaLearner",
    "SinusoidTasks",
    "TAML",
    "TaskBatchNorm2d",
    "load_learner",
    "load_omniglot",
    "make_learner",
    "save_learner",
]
