"""Sinusoid tasks, a short meta-training run that must improve, and resume of the experiment."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from helpers import load_experiment
from metarl.core import MAML, MetaSGD, Reptile
from metarl.supervised import MLP, SinusoidTasks
from metarl.supervised.evaluate import losses_after_steps
from metarl.utils import load_checkpoint


def test_tasks_follow_the_paper_distribution():
    dist = SinusoidTasks()
    batch, tasks = dist.sample(2000, 5, 7, torch.Generator().manual_seed(0))
    amp, phase = tasks[:, 0], tasks[:, 1]
    assert 0.1 <= amp.min() < 0.2 and 4.9 < amp.max() <= 5.0
    assert 0.0 <= phase.min() < 0.05 and math.pi - 0.05 < phase.max() <= math.pi
    assert batch.support_x.shape == (2000, 5, 1) and batch.query_y.shape == (2000, 7, 1)
    assert batch.support_x.min() >= -5 and batch.support_x.max() <= 5
    expected = amp.view(-1, 1, 1) * torch.sin(batch.query_x - phase.view(-1, 1, 1))
    torch.testing.assert_close(batch.query_y, expected)


def test_sampling_is_reproducible_from_a_seed():
    a, _ = SinusoidTasks().sample(4, 5, 5, torch.Generator().manual_seed(1))
    b, _ = SinusoidTasks().sample(4, 5, 5, torch.Generator().manual_seed(1))
    c, _ = SinusoidTasks().sample(4, 5, 5, torch.Generator().manual_seed(2))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a.support_x, c.support_x)


def test_bad_ranges_are_rejected():
    with pytest.raises(ValueError, match="amplitude"):
        SinusoidTasks(amplitude=(5.0, 0.1))


@pytest.mark.parametrize(
    "make",
    [
        lambda m: MAML(m, inner_lr=0.01),
        lambda m: MetaSGD(m, inner_lr=(0.005, 0.1)),
        lambda m: Reptile(m, inner_lr=0.02, inner_steps=5),
    ],
    ids=["maml", "metasgd", "reptile"],
)
def test_short_meta_training_beats_the_untrained_model(make):
    torch.manual_seed(0)
    learner = make(MLP(1, 1))
    g = torch.Generator().manual_seed(0)
    dist = SinusoidTasks()
    held_out, _ = dist.sample(200, 10, 50, torch.Generator().manual_seed(99))
    before = losses_after_steps(learner, held_out, F.mse_loss, [1]).mean()
    opt = torch.optim.Adam(learner.parameters(), lr=3e-3)
    for _ in range(400):
        batch, _ = dist.sample(25, 10, 10, g)
        loss = learner.meta_loss(batch, F.mse_loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = losses_after_steps(learner, held_out, F.mse_loss, [1]).mean()
    assert after < 0.5 * before, f"query MSE after one step went {before:.2f} -> {after:.2f}"


def test_experiment_resume_matches_an_uninterrupted_run(tmp_path):
    exp = load_experiment("sinusoid")
    common = [
        "--learner",
        "metasgd",
        "--shots",
        "5",
        "--eval-tasks",
        "20",
        "--log-every",
        "10",
        "--checkpoint-every",
        "20",
        "--seed",
        "3",
    ]
    exp.main([*common, "--iterations", "60", "--out", str(tmp_path / "full")])
    # A run stopped after its checkpoint at 40, then resumed to 60.
    exp.main([*common, "--iterations", "40", "--out", str(tmp_path / "cut")])
    exp.main([*common, "--iterations", "60", "--out", str(tmp_path / "cut"), "--resume"])
    full = load_checkpoint(tmp_path / "full" / "checkpoint.pt")
    cut = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")
    assert cut["iteration"] == full["iteration"] == 60
    for name, tensor in full["learner"].items():
        torch.testing.assert_close(cut["learner"][name], tensor, rtol=0, atol=0)
    rows = (tmp_path / "cut" / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows] == ["step", "10", "20", "30", "40", "50", "60"]
    results = json.loads((tmp_path / "cut" / "results.json").read_text())
    assert results["learner"] == "metasgd" and "1" in results["mse_after_steps"]


@pytest.mark.slow
def test_full_protocol_maml_reaches_the_published_10_shot_figure(tmp_path):
    """70,000 iterations (about 5 minutes on one core); the published 1-step MSE is 0.77."""
    results = load_experiment("sinusoid").main(
        ["--learner", "maml", "--shots", "10", "--seed", "1", "--out", str(tmp_path)]
    )
    assert results["mse_after_steps"]["1"]["mean"] <= 1.1 * 0.77
