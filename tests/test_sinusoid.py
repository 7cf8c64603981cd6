"""Sinusoid tasks, a short meta-training run that must improve, and the experiment script:
resume, refusals of bad settings and of an existing run."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
import torch.nn.functional as F

from helpers import ROOT, load_experiment
from metarl import make_learner
from metarl.nn import MLP
from metarl.supervised import SinusoidTasks
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
        lambda m: make_learner("maml", m, inner_lr=0.01),
        lambda m: make_learner("metasgd", m, inner_lr=(0.005, 0.1)),
        lambda m: make_learner(
            "reptile", m, inner_lr=0.02, inner_steps=5, generator=torch.Generator().manual_seed(0)
        ),
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
    for name, tensor in full["state"]["learner"].items():
        torch.testing.assert_close(cut["state"]["learner"][name], tensor, rtol=0, atol=0)
    rows = (tmp_path / "cut" / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows] == ["step", "10", "20", "30", "40", "50", "60"]
    results = json.loads((tmp_path / "cut" / "results.json").read_text())
    assert results["learner"] == "metasgd" and "1" in results["mse_after_steps"]


# A tiny run: a couple of iterations and a small evaluation.
TINY = ["--iterations", "2", "--meta-batch", "2", "--eval-tasks", "2", "--eval-points", "5"]
TINY += ["--eval-max-steps", "1", "--log-every", "1"]


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--queries", "0"),
        ("--meta-batch", "0"),
        ("--iterations", "-3"),
        ("--checkpoint-every", "0"),
        ("--checkpoint-every", "-1"),
        ("--eval-tasks", "0"),
        ("--eval-tasks", "1"),
        ("--eval-points", "0"),
        ("--eval-max-steps", "0"),
        ("--shots", "0"),
        ("--inner-lr", "0"),
        ("--inner-steps", "0"),
        ("--outer-lr", "-1e-3"),
        ("--metasgd-init", "0.1 0.005"),
        ("--metasgd-init", "0 0.1"),
        ("--log-every", "0"),
        ("--threads", "0"),
        ("--learner", "maml2"),
    ],
)
def test_bad_settings_exit_2_naming_the_flag_before_any_work(tmp_path, capsys, flag, value):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as e:
        load_experiment("sinusoid").main([*TINY, flag, *value.split(), "--out", str(out)])
    assert e.value.code == 2
    assert flag in capsys.readouterr().err
    assert not out.exists()  # nothing written: no settings, no checkpoint


def test_a_second_run_into_the_same_folder_needs_resume_or_overwrite(tmp_path, capsys):
    exp = load_experiment("sinusoid")
    out = tmp_path / "run"
    exp.main([*TINY, "--out", str(out)])
    first = (out / "checkpoint.pt").read_bytes()
    with pytest.raises(SystemExit, match="--overwrite") as e:
        exp.main([*TINY, "--seed", "1", "--out", str(out)])
    assert str(out) in str(e.value) and "--resume" in str(e.value)
    assert (out / "checkpoint.pt").read_bytes() == first  # the first run is left alone
    results = exp.main([*TINY, "--seed", "1", "--out", str(out), "--overwrite"])
    assert results["seed"] == 1 and "--overwrite" not in results["command"]
    assert f"run folder: {out}" in capsys.readouterr().out


def test_resume_with_other_settings_is_refused(tmp_path):
    exp = load_experiment("sinusoid")
    out = tmp_path / "run"
    exp.main([*TINY, "--out", str(out)])
    with pytest.raises(SystemExit, match="shots: 10 -> 5"):
        exp.main([*TINY, "--shots", "5", "--out", str(out), "--resume"])
    with pytest.raises(SystemExit, match="past --iterations 1"):
        exp.main([*TINY, "--iterations", "1", "--out", str(out), "--resume"])


@pytest.mark.slow
def test_full_protocol_maml_reaches_the_published_10_shot_figure(tmp_path):
    """70,000 iterations (about 5 minutes on one core); the published 1-step MSE is 0.77."""
    results = load_experiment("sinusoid").main(
        ["--learner", "maml", "--shots", "10", "--seed", "1", "--out", str(tmp_path)]
    )
    assert results["mse_after_steps"]["1"]["mean"] <= 1.1 * 0.77


@pytest.mark.parametrize("learner", ["maml", "fomaml", "metasgd", "reptile"])
def test_every_learner_trains_and_reports(tmp_path, learner):
    results = load_experiment("sinusoid").main(
        [*TINY, "--learner", learner, "--out", str(tmp_path)]
    )
    assert results["learner"] == learner and set(results["mse_after_steps"]) == {"0", "1"}
    assert {"command", "machine", "train_wall_s", "settings"} <= set(results)


def test_a_committed_legacy_run_resumes_and_reproduces_its_results(tmp_path):
    """The committed runs' checkpoints are plain ``torch.save`` files with their settings in
    them; resuming a copy at its last iteration only evaluates, and must give its numbers."""
    committed = ROOT / "experiments" / "results" / "sinusoid" / "maml-10shot-seed0"
    if not (committed / "checkpoint.pt").is_file():
        pytest.skip("committed results not present")
    copy = tmp_path / committed.name
    shutil.copytree(committed, copy)
    expected = json.loads((committed / "results.json").read_text())
    command = expected["command"].split()[2:]  # the recorded flags, --out replaced below
    out = command.index("--out")
    command[out + 1] = str(copy)
    results = load_experiment("sinusoid").main([*command, "--resume"])
    # Bit for bit on the machine that made the run; another CPU's matmul kernels (AVX-512 /
    # AMX against AVX2) differ in the last bits, which ten adaptation steps carry to ~1e-5.
    for steps, stats in expected["mse_after_steps"].items():
        assert results["mse_after_steps"][steps] == pytest.approx(stats, rel=1e-4)
    assert results["train_wall_s"] == expected["train_wall_s"]
