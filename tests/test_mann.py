"""Memory-augmented neural network: delayed-label episodes by hand, least-recently-used
writes, gradients against finite differences, and learning to bind labels within an episode."""

import numpy as np
import pytest
import torch

from helpers import assert_grads_match_finite_differences
from metarl.supervised.label_sequences import (
    LabelSequenceSampler,
    instance_accuracy,
    instance_numbers,
)
from metarl.supervised.mann import MemoryAugmentedNetwork
from metarl.supervised.sequence_models import (
    LSTMSequenceModel,
    load_sequence_model,
    save_sequence_model,
)


def coded_images(classes: int, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """2 x 2 images whose every pixel holds the class id + 1: the class is readable."""
    labels = np.repeat(np.arange(classes), per_class)
    return np.broadcast_to((labels + 1.0)[:, None, None], (len(labels), 2, 2)).copy(), labels


def test_instance_numbers_count_earlier_drawings_of_the_same_label():
    targets = torch.tensor([[0, 1], [1, 1], [0, 0], [0, 1], [1, 0]])
    assert torch.equal(instance_numbers(targets, 2),
                       torch.tensor([[0, 0], [0, 1], [1, 0], [2, 2], [1, 1]]))  # fmt: skip
    logits = torch.nn.functional.one_hot(torch.tensor([[0, 0], [1, 1], [1, 0], [0, 0], [1, 0]]), 2)
    acc = instance_accuracy(logits.float(), targets, instance_numbers(targets, 2), (1, 2, 3))
    assert acc == {1: (3, 4), 2: (3, 4), 3: (1, 2)}


def test_episodes_bind_each_label_to_one_class_and_delay_it_one_step():
    images, labels = coded_images(7, 5)
    episodes = LabelSequenceSampler(images, labels, ways=3, instances=4, scale=1.0)
    x, y, instance = episodes.sample(6, torch.Generator().manual_seed(0))
    assert x.shape == (12, 6, 4 + 3) and y.shape == (12, 6) and episodes.input_size == 7
    assert torch.equal(x[0, :, 4:], torch.zeros(6, 3))
    assert torch.equal(x[1:, :, 4:], torch.nn.functional.one_hot(y[:-1], 3).float())
    for b in range(6):
        assert sorted(y[:, b].tolist()) == [0] * 4 + [1] * 4 + [2] * 4
        class_of = {}
        for t in range(12):  # one class per label, three distinct classes per episode
            class_of.setdefault(int(y[t, b]), set()).add(float(x[t, b, 0]))
        assert all(len(v) == 1 for v in class_of.values())
        assert len(set.union(*class_of.values())) == 3
    assert torch.equal(instance, instance_numbers(y, 3))
    with pytest.raises(ValueError, match="cannot make"):
        LabelSequenceSampler(images, labels, ways=3, instances=6)


def test_rotation_keeps_a_class_consistent_within_an_episode():
    images = np.zeros((8, 3, 3))
    images[:, 0, 0] = 1.0  # a dot in one corner; rotations move it to another corner
    episodes = LabelSequenceSampler(images, np.repeat([0, 1], 4), ways=2, instances=4,
                                    rotate=True, scale=1.0)  # fmt: skip
    x, y, _ = episodes.sample(20, torch.Generator().manual_seed(3))
    corners = set()
    for b in range(20):
        for label in (0, 1):
            pixels = {tuple(x[t, b, :9].tolist()) for t in range(8) if y[t, b] == label}
            assert len(pixels) == 1  # every drawing of the character got the same rotation
            corners |= pixels
    assert len(corners) == 4


def test_writes_go_to_the_least_used_slots_when_the_gate_is_closed():
    torch.manual_seed(0)
    model = MemoryAugmentedNetwork(3, 2, slots=6, width=4, hidden=5, heads=2)
    with torch.no_grad():
        bias = model.head_params.bias.view(2, 6)
        bias[:, -1] = -50.0  # sigmoid(alpha) ~ 0: write to the least-used slots only
    trace: dict = {}
    model(torch.randn(3, 1, 3), trace)
    writes = torch.stack(trace["write"])[:, 0]  # [steps, heads, slots]
    assert torch.allclose(writes[0], torch.tensor([[1.0, 1, 0, 0, 0, 0]] * 2), atol=1e-6)
    reads = torch.stack(trace["read"])[:, 0]
    assert torch.allclose(reads.sum(-1), torch.ones(3, 2), atol=1e-5)
    usage = 0.95 * 0 + reads[0].sum(0) + writes[0].sum(0)
    expected = torch.zeros(6)
    expected[usage.argsort(stable=True)[:2]] = 1.0
    assert torch.allclose(writes[1], expected.expand(2, 6), atol=1e-6)


def test_mann_gradients_match_finite_differences():
    torch.manual_seed(0)
    model = MemoryAugmentedNetwork(4, 3, slots=5, width=3, hidden=4, heads=2).double()
    x = torch.randn(4, 2, 4, dtype=torch.float64)
    y = torch.randint(0, 3, (4, 2))

    def loss():
        return torch.nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten())

    loss().backward()
    names = ("head_params.weight", "controller.weight_ih", "out.bias")
    assert_grads_match_finite_differences(model, loss, names, index_value=1)


def test_mann_round_trips_through_its_file(tmp_path):
    model = MemoryAugmentedNetwork(4, 3, slots=7, width=3, hidden=6, heads=2)
    loaded = load_sequence_model(save_sequence_model(tmp_path / "m.pt", model))
    x = torch.randn(5, 2, 4)
    assert isinstance(loaded, MemoryAugmentedNetwork) and torch.allclose(loaded(x), model(x))
    with pytest.raises(ValueError, match="heads"):
        MemoryAugmentedNetwork(4, 3, slots=2, heads=3)


def test_small_mann_learns_to_bind_labels_within_an_episode():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    protos = torch.randn(40, 4, 4, generator=g)
    drawings = (protos[:, None] + 0.3 * torch.randn(40, 6, 4, 4, generator=g)).reshape(-1, 4, 4)
    labels = np.repeat(np.arange(40), 6)
    train = LabelSequenceSampler(drawings[:180].numpy(), labels[:180], 3, 4, scale=1.0)
    test = LabelSequenceSampler(drawings[180:].numpy(), labels[180:], 3, 4, scale=1.0)
    model = MemoryAugmentedNetwork(train.input_size, 3, slots=16, width=8, hidden=32, heads=1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x_test, y_test, k_test = test.sample(200, torch.Generator().manual_seed(5))

    def later_instances() -> float:
        with torch.no_grad():
            acc = instance_accuracy(model(x_test), y_test, k_test, (3, 4))
        return sum(c for c, _ in acc.values()) / sum(n for _, n in acc.values())

    before = later_instances()
    for _ in range(600):
        x, y, _ = train.sample(16, g)
        loss = torch.nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    # label exclusivity alone gives about 0.46 on these; binding drawings to labels ~0.7
    assert before < 0.5 and later_instances() > 0.62


def test_lstm_baseline_shapes():
    model = LSTMSequenceModel(7, 3, hidden=8, layers=1)
    assert model(torch.randn(12, 4, 7)).shape == (12, 4, 3)


def test_heads_start_with_the_chosen_key_strength():
    model = MemoryAugmentedNetwork(4, 3, slots=8, width=5, hidden=6, heads=3, initial_strength=7.0)
    raw_beta = model.head_params.bias.view(3, 7)[:, 5]
    torch.testing.assert_close(torch.nn.functional.softplus(raw_beta), torch.full((3,), 7.0))
    with pytest.raises(ValueError, match="initial_strength"):
        MemoryAugmentedNetwork(4, 3, initial_strength=0.0)
