"""``MetaRLTrainer.train``: the library's loop yields stats, logs to a run folder, resumes
bit for bit, and refuses what would mix or lose results."""

from __future__ import annotations

import csv

import pytest
import torch

import metarl  # noqa: F401
from metarl.core import MAML, TRPO
from metarl.rl import CategoricalMLPPolicy, MetaRLTrainer, MultiTaskSampler
from metarl.utils import RunError

BANDIT = {"arms": 3, "pulls": 1}


def _trainer(max_kl: float = 0.05) -> MetaRLTrainer:
    torch.manual_seed(0)
    policy = CategoricalMLPPolicy(4, 3, hidden=(8,))
    sampler = MultiTaskSampler("metarl/BernoulliBandit-v0", 5, horizon=1, seed=3, env_kwargs=BANDIT)
    return MetaRLTrainer(MAML(policy, inner_lr=1.0), sampler, TRPO(max_kl=max_kl))


def _losses(folder) -> list[float]:
    return [float(r["loss"]) for r in csv.DictReader((folder / "metrics.csv").open())]


def test_without_a_folder_it_yields_each_iterations_stats_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    stats = list(_trainer().train(iterations=3, tasks_per_batch=4))
    assert [s["iteration"] for s in stats] == [1, 2, 3]
    assert all(s["env_steps"] == 2 * 4 * 5 and s["steps_per_s"] > 0 for s in stats)
    assert list(tmp_path.iterdir()) == []


def test_a_stopped_run_resumes_to_the_uninterrupted_runs_numbers(tmp_path):
    full = list(_trainer().train(4, 3, tmp_path / "full", checkpoint_every=2))
    list(_trainer().train(2, 3, tmp_path / "cut", checkpoint_every=2))
    rest = list(_trainer().train(4, 3, tmp_path / "cut", checkpoint_every=2, resume=True))
    assert [s["iteration"] for s in rest] == [3, 4]  # only the iterations not yet done
    assert [s["loss"] for s in rest] == [s["loss"] for s in full[2:]]
    assert _losses(tmp_path / "cut") == _losses(tmp_path / "full")
    assert (tmp_path / "cut" / "checkpoint.pt").is_file()
    assert (tmp_path / "cut" / "tensorboard").is_dir()


def test_a_folder_holding_a_run_is_refused_unless_told_and_other_settings_too(tmp_path):
    list(_trainer().train(2, 3, tmp_path / "run", checkpoint_every=2))
    with pytest.raises(RunError, match="already holds a run.*--overwrite"):
        next(_trainer().train(2, 3, tmp_path / "run"))
    with pytest.raises(RunError, match=r"(?s)differ.*tasks_per_batch: 3 -> 5"):
        next(_trainer().train(2, 5, tmp_path / "run", checkpoint_every=2, resume=True))
    with pytest.raises(RunError, match=r"(?s)differ.*max_kl"):
        next(_trainer(max_kl=0.01).train(2, 3, tmp_path / "run", checkpoint_every=2, resume=True))
    with pytest.raises(RunError, match="at iteration 2, past the 1 iterations"):
        next(_trainer().train(1, 3, tmp_path / "run", checkpoint_every=2, resume=True))
    with pytest.raises(RunError, match="nothing to resume"):
        next(_trainer().train(2, 3, tmp_path / "missing", resume=True))
    again = list(_trainer().train(2, 3, tmp_path / "run", checkpoint_every=2, overwrite=True))
    assert len(again) == 2


@pytest.mark.parametrize(
    "bad", [dict(iterations=-1), dict(tasks_per_batch=0), dict(checkpoint_every=0)]
)
def test_bad_arguments_are_refused_before_any_sampling(bad):
    args = {"iterations": 2, "tasks_per_batch": 2, "checkpoint_every": 1, **bad}
    with pytest.raises(ValueError, match=">= 0, tasks_per_batch >= 1 and checkpoint_every >= 1"):
        next(_trainer().train(**args))
