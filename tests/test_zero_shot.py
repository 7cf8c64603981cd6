"""The attribute shapes and zero-shot learners: relation networks and the attribute reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import metarl
from metarl.supervised.data.shapes import ATTRIBUTES, attribute_vector, make_shapes
from metarl.supervised.zero_shot import AttributeClassifier, ZeroShotRelationNet

GROUPS = [len(v) for v in ATTRIBUTES.values()]


@pytest.fixture(scope="module")
def shapes():
    return make_shapes(per_class=6, unseen=30, seed=0)


def test_unseen_classes_are_new_combinations_of_seen_values(shapes):
    assert shapes.images.shape == (150 * 6, 3, 32, 32) and len(shapes.attributes) == 150
    assert len(shapes.unseen) == 30 and not set(shapes.seen) & set(shapes.unseen)
    seen_values = shapes.attributes[shapes.seen].max(0)
    assert (seen_values == 1).all()  # every attribute value appears among the seen classes
    np.testing.assert_array_equal(
        attribute_vector(("triangle", "blue", "large", "outline")),
        np.eye(5)[2].tolist() + np.eye(5)[2].tolist() + [0, 1] + [0, 0, 1],
    )
    again = make_shapes(per_class=6, unseen=30, seed=0)
    assert np.array_equal(again.images, shapes.images) and np.array_equal(
        again.unseen, shapes.unseen
    )
    assert not np.array_equal(make_shapes(per_class=6, unseen=30, seed=1).unseen, shapes.unseen)


def test_the_attribute_reference_scores_a_class_by_its_values_log_probabilities():
    learner = AttributeClassifier(torch.nn.Flatten(), embedding_dim=2, groups=(2, 3))
    with torch.no_grad():
        learner.head.weight.copy_(torch.eye(5, 2))
        learner.head.bias.zero_()
    x = torch.tensor([[1.0, 0.0]])  # logits (1, 0 | 0, 0, 0)
    attributes = torch.tensor([[1.0, 0, 0, 1, 0], [0, 1.0, 0, 0, 1]])
    first = torch.log_softmax(torch.tensor([1.0, 0.0]), 0)
    expected = torch.tensor([[first[0] - np.log(3), first[1] - np.log(3)]])
    torch.testing.assert_close(learner.predict(x, attributes), expected)


def _vector_classes(generator: torch.Generator):
    """48 classes, the combinations of three attribute groups (4, 4 and 3 values); an
    example is a fixed random linear image of its class's attribute vector plus noise."""
    combos = torch.cartesian_prod(torch.arange(4), torch.arange(4), torch.arange(3))
    attributes = torch.cat([torch.eye(4)[combos[:, 0]], torch.eye(4)[combos[:, 1]],
                            torch.eye(3)[combos[:, 2]]], 1)  # fmt: skip
    projection = torch.randn(11, 24, generator=generator)

    def examples(labels: torch.Tensor) -> torch.Tensor:
        noise = 0.3 * torch.randn(len(labels), 24, generator=generator)
        return attributes[labels] @ projection + noise

    return attributes, examples


@pytest.mark.parametrize("kind", ["relation", "attributes"])
def test_trained_on_seen_classes_both_recognise_unseen_ones(kind, tmp_path):
    """Class-balanced batches of 8 seen classes; then the 10 held-out combinations."""
    from metarl.nn import MLP

    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    attributes, examples = _vector_classes(generator)
    unseen = torch.tensor([1, 6, 11, 16, 21, 26, 31, 36, 41, 46])
    seen = torch.tensor([c for c in range(48) if c not in unseen.tolist()])
    encoder = MLP(24, 32, hidden=(64,))
    if kind == "relation":
        learner = ZeroShotRelationNet(encoder, attribute_dim=11, embedding_dim=32, hidden=64)
    else:
        learner = AttributeClassifier(encoder, embedding_dim=32, groups=(4, 4, 3))
    optimiser = torch.optim.Adam(learner.parameters(), lr=1e-3)
    for _ in range(600):
        classes = seen[torch.randperm(len(seen), generator=generator)[:8]]
        labels = torch.arange(8).repeat_interleave(4)
        loss = learner.loss(examples(classes[labels]), labels, attributes[classes])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    test_labels = unseen.repeat_interleave(20)
    guesses = unseen[learner.predict(examples(test_labels), attributes[unseen]).argmax(-1)]
    accuracy = (guesses == test_labels).float().mean().item()
    assert accuracy > 0.5, accuracy  # chance among the 10 unseen classes: 0.1
    metarl.save_learner(tmp_path / "z.pt", learner)
    loaded = metarl.load_learner(tmp_path / "z.pt")
    x = examples(unseen)
    torch.testing.assert_close(loaded.predict(x, attributes), learner.predict(x, attributes))


def test_the_experiment_scores_unseen_combinations_and_resumes_bit_for_bit(tmp_path):
    from helpers import load_experiment

    exp = load_experiment("zero_shot")
    args = ["--per-class", "8", "--channels", "8", "--hidden", "16", "--checkpoint-every", "2"]
    straight = exp.main([*args, "--steps", "4", "--out", str(tmp_path / "a")])
    assert straight["unseen_classes"] == 30 and straight["unseen_images"] == 30 * 8
    assert straight["chance"] == pytest.approx(1 / 30)
    exp.main([*args, "--steps", "2", "--out", str(tmp_path / "b")])
    resumed = exp.main([*args, "--steps", "4", "--out", str(tmp_path / "b"), "--resume"])
    assert resumed["unseen_accuracy"] == straight["unseen_accuracy"]
    a = metarl.load_learner(tmp_path / "a" / "learner.pt").state_dict()
    b = metarl.load_learner(tmp_path / "b" / "learner.pt").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(SystemExit, match="--held-back"):
        exp.main([*args, "--per-class", "5", "--out", str(tmp_path / "c")])
