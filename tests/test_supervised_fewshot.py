"""The few-shot learner interface (make, save, load, predict) and learning on synthetic data."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import load_experiment
from metarl.learners import learner_names, load_learner, make_learner, save_learner
from metarl.nn import MLP, Conv4
from metarl.supervised import ContextMLP, EpisodeSampler
from metarl.supervised.data import omniglot
from metarl.supervised.data.omniglot import load_image
from metarl.supervised.evaluate import accuracies_after_steps, adapted_to_support
from metarl.utils import load_checkpoint, save_checkpoint


def _prototype_data(classes: int = 40, per_class: int = 20, dim: int = 16, seed: int = 0):
    """Classes differ only in the first 4 features; the other 12 are loud noise.

    An untrained network adapting on one example per class is misled by the noise; a
    meta-learned initialisation can learn which features matter.
    """
    rng = np.random.default_rng(seed)
    prototypes = np.zeros((classes, dim))
    prototypes[:, :4] = rng.normal(size=(classes, 4))
    labels = np.repeat(np.arange(classes), per_class)
    noise = rng.normal(size=(len(labels), dim)) * np.r_[np.full(4, 0.3), np.full(dim - 4, 1.5)]
    return torch.tensor(prototypes[labels] + noise, dtype=torch.float32), labels


def mlp() -> MLP:
    return MLP(16, 5, hidden=(32,))


def build(kind: str, inner_lr: float, steps: int, model: torch.nn.Module | None = None):
    """A learner of ``kind`` on the synthetic data's network (CAML: a context MLP)."""
    if model is None:
        model = ContextMLP(16, 5, context_dim=32, hidden=(64,)) if kind == "caml" else mlp()
    step_size = {"initial_step": inner_lr} if kind == "lstm" else {"inner_lr": inner_lr}
    return make_learner(kind, model, inner_steps=steps, **step_size)


# inner step size, inner steps, outer learning rate, shots per class in meta-training (Reptile
# meta-trains on more shots than it is tested with, as in its paper's Omniglot runs)
SETTINGS = {
    "maml": (0.5, 1, 3e-3, 1), "fomaml": (0.5, 1, 3e-3, 1), "metasgd": (0.5, 1, 3e-3, 1),
    "reptile": (0.5, 5, 0.1, 5), "caml": (5.0, 2, 3e-3, 1), "gradagree": (0.5, 1, 3e-3, 1),
    "taml": (0.5, 1, 3e-3, 1), "taml-theil": (0.5, 1, 3e-3, 1), "lstm": (0.3, 3, 3e-3, 1),
    "concept-maml": (0.5, 1, 3e-3, 1), "concept-metasgd": (0.5, 1, 3e-3, 1),
}  # fmt: skip


# ADML clips its attacks to image bounds [0, 1]; tests/test_supervised_adml.py trains it.
@pytest.mark.parametrize("kind", [k for k in learner_names("gradient") if k != "adml"])
def test_every_learner_beats_chance_after_a_few_hundred_iterations(kind):
    torch.manual_seed(0)
    data, labels = _prototype_data()
    inner_lr, steps, outer_lr, train_shots = SETTINGS[kind]
    train = EpisodeSampler(data[:600], labels[:600], ways=5, shots=train_shots, queries=5, seed=0)
    test = EpisodeSampler(data[600:], labels[600:], ways=5, shots=1, queries=5, seed=1)
    learner = build(kind, inner_lr, steps)
    held_out = test.sample(200)
    before = accuracies_after_steps(learner, held_out, steps).mean().item()
    optimizer = torch.optim.Adam(learner.parameters(), lr=outer_lr)
    for _ in range(300):
        loss = learner.meta_loss(train.sample(8), F.cross_entropy)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = accuracies_after_steps(learner, held_out, steps).mean().item()
    # chance is 0.2; the untrained network adapting on one shot gets about 0.3
    assert after > 0.4 and after > before + 0.15, f"{kind}: {before:.2f} -> {after:.2f}"


def test_saved_learner_predicts_what_the_trained_one_does(tmp_path):
    torch.manual_seed(0)
    learner = build("metasgd", 0.3, 1)
    learner.eval_steps = 2
    with torch.no_grad():
        for p in learner.parameters():
            p.add_(0.1 * torch.randn_like(p))
    save_learner(tmp_path / "l.pt", learner)
    data, labels = _prototype_data()
    episode = EpisodeSampler(data, labels, ways=5, shots=2, queries=3, seed=0).sample(1)
    sx, sy, qx, qy = (t[0] for t in episode)
    logits = load_learner(tmp_path / "l.pt").predict(sx, sy, qx)
    assert logits.shape == (15, 5)
    adapted = learner.adapt(learner.supervised_loss(F.cross_entropy), (sx, sy), steps=2)
    torch.testing.assert_close(logits, learner(qx, params=adapted).detach())
    with pytest.raises(ValueError, match="support"):
        load_learner(tmp_path / "l.pt").predict(sx, sy[:3], qx)
    with pytest.raises(ValueError, match="5 classes"):  # a 7-way episode for a 5-way head
        load_learner(tmp_path / "l.pt").predict(sx[:7], torch.arange(7), qx)


def test_unknown_names_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown learner"):
        make_learner("no-such-learner", mlp(), inner_lr=0.1)
    with pytest.raises(ValueError, match="not registered"):  # a checkpoint naming a strange model
        save_learner(tmp_path / "l.pt", build("maml", 0.1, 1))
        state = load_checkpoint(tmp_path / "l.pt")
        state["model"]["class"] = "metarl.nn.ResNet"
        save_checkpoint(state, tmp_path / "strange.pt")
        load_learner(tmp_path / "strange.pt")


@pytest.mark.skipif(
    not (omniglot.default_root() / omniglot.ZIP_FILES[0]).is_file(),
    reason="the Omniglot zips are not next to this checkout (set METARL_DATA)",
)
def test_omniglot_script_runs_end_to_end_and_resumes(tmp_path):
    exp = load_experiment("omniglot")
    common = ["--meta-batch", "2", "--channels", "8", "--val-every", "2", "--val-episodes", "4",
              "--test-episodes", "4", "--checkpoint-every", "2", "--threads", "1",
              "--out", str(tmp_path)]  # fmt: skip
    exp.main([*common, "--iterations", "2"])
    result = exp.main([*common, "--iterations", "4", "--resume"])
    assert 0.0 <= result["test_accuracy"] <= 1.0 and result["best_iteration"] in (2, 4)
    steps = [line.split(",")[0] for line in (tmp_path / "metrics.csv").read_text().split()]
    assert steps == ["step", "0", "1", "2", "3", "4"]  # step 0 validates the start
    clf = load_learner(tmp_path / "learner.pt")
    assert json.loads((tmp_path / "results.json").read_text())["ways"] == 5
    # one episode straight from the zip through the public single-image loader
    zip_path = omniglot.default_root() / omniglot.ZIP_FILES[1]
    with zipfile.ZipFile(zip_path) as archive:
        names = [n for n in archive.namelist() if "/Sanskrit/" in n and n.endswith(".png")]
        by_char = {}
        for name in names:
            by_char.setdefault(name.split("/")[2], []).append(name)
        chars = sorted(by_char)[:5]
        support = torch.stack([load_image(archive.open(by_char[c][0])) for c in chars])
        query = torch.stack([load_image(archive.open(by_char[c][1])) for c in chars])
    logits = clf.predict(support, torch.arange(5), query)
    assert logits.shape == (5, 5) and torch.isfinite(logits).all()


def test_query_groups_classify_one_query_per_class_per_batch():
    torch.manual_seed(0)
    learner = build("maml", 0.4, 1, Conv4(ways=3, channels=4, image_size=16))
    labels = np.repeat(np.arange(6), 5)
    data = torch.rand(30, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    batch = EpisodeSampler(data, labels, ways=3, shots=1, queries=4, seed=0).sample(5)
    grouped = accuracies_after_steps(learner, batch, 2, query_groups=4)
    by_hand = torch.zeros(5)
    for j in range(4):  # queries are [c0 x4, c1 x4, c2 x4]: j, 4 + j, 8 + j is one per class
        part = batch._replace(query_x=batch.query_x[:, j::4], query_y=batch.query_y[:, j::4])
        assert part.query_y[0].tolist() == [0, 1, 2]
        by_hand += accuracies_after_steps(learner, part, 2) / 4
    torch.testing.assert_close(grouped, by_hand)
    # batch statistics make the grouping matter for this model ...
    one_batch = accuracies_after_steps(learner, batch, 2)
    logits = [learner(batch.query_x[0, j::4]) for j in range(4)]
    assert not torch.allclose(
        torch.cat(logits), learner(batch.query_x[0])[[0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]]
    )
    assert one_batch.shape == (5,)
    # ... and not for a model without them
    plain = build("maml", 0.5, 1)
    x, y = _prototype_data()
    episodes = EpisodeSampler(x, y, ways=5, shots=1, queries=3, seed=0).sample(4)
    torch.testing.assert_close(accuracies_after_steps(plain, episodes, 1, query_groups=3),
                               accuracies_after_steps(plain, episodes, 1))  # fmt: skip
    with pytest.raises(ValueError, match="divide"):
        accuracies_after_steps(plain, episodes, 1, query_groups=2)


@pytest.mark.parametrize("kind", [k for k in learner_names("gradient") if k != "adml"])
def test_evaluation_adapts_like_the_learner_without_recording_its_rule(kind):
    """``adapted_to_support`` equals each task's own ``adapt``; a learned rule's state carries
    no autograd graph (an LSTM rule's graph over every weight of 50 Conv-4 tasks once filled
    23 GB during validation, when it was killed for memory)."""
    torch.manual_seed(0)
    inner_lr, steps, _, _ = SETTINGS[kind]
    learner = build(kind, inner_lr, steps)
    x, y = _prototype_data()
    batch = EpisodeSampler(x, y, ways=5, shots=1, queries=3, seed=0).sample(3)
    recorded = []
    if kind == "lstm":
        learner.batching = "loop"  # as for Conv-4; inside vmap requires_grad is not visible
        step = learner.rule.step_with_state

        def recording_step(*args):
            out = step(*args)
            recorded.append(out[1][0].requires_grad)  # the LSTM's hidden state
            return out

        learner.rule.step_with_state = recording_step
    ours = adapted_to_support(learner, batch, steps)
    loss = learner.supervised_loss(F.cross_entropy)
    for task in range(3):
        data = (batch.support_x[task], batch.support_y[task])
        reference = learner.adapt(loss, data, steps=steps, first_order=True)
        for name, value in reference.items():
            torch.testing.assert_close(ours[name][task], value.detach())
            assert not ours[name].requires_grad  # CAML's shared weights too
    if kind == "lstm":
        evaluation, reference = recorded[: 3 * steps], recorded[3 * steps :]  # 3 tasks each
        assert evaluation == [False] * (3 * steps)
        assert reference == [True] * (3 * steps)  # adapt records them, as meta-training must
