"""Neural Turing machine: addressing against hand-computed values, gradients against finite
differences, the copy task's costs, and a small NTM learning to copy."""

import math

import pytest
import torch

from helpers import assert_grads_match_finite_differences
from metarl.supervised.addressing import (
    content_weights,
    interpolate,
    least_used,
    lru_write_weights,
    ntm_address,
    read,
    sharpen,
    shift,
    update_usage,
    write,
)
from metarl.supervised.copy_task import answer, bits_per_sequence, copy_batch, wrong_bits
from metarl.supervised.ntm import NeuralTuringMachine
from metarl.supervised.sequence_models import (
    LSTMSequenceModel,
    load_sequence_model,
    save_sequence_model,
)


def t(*rows):
    return torch.tensor(rows, dtype=torch.float64)


def test_content_weights_are_a_softmax_of_scaled_cosine_similarity():
    memory = t([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    w = content_weights(memory, t([2.0, 0.0]), torch.tensor([2.0], dtype=torch.float64))
    logits = 2.0 * torch.tensor([1.0, 0.0, 1 / math.sqrt(2)], dtype=torch.float64)
    assert torch.allclose(w[0], torch.softmax(logits, 0))


def test_interpolation_and_sharpening_by_hand():
    w = interpolate(t([1.0, 0.0]), t([0.0, 1.0]), torch.tensor([0.25], dtype=torch.float64))
    assert torch.allclose(w, t([0.25, 0.75]))
    sharp = sharpen(t([0.5, 0.25, 0.25]), torch.tensor([2.0], dtype=torch.float64))
    assert torch.allclose(sharp, t([2 / 3, 1 / 6, 1 / 6]))


def test_shift_moves_mass_circularly():
    one_hot = t([1.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0, 0.0])
    kernels = t([0.0, 0.0, 1.0], [0.5, 0.0, 0.5])  # +1 for the first row, half -1 / +1
    out = shift(one_hot, kernels)
    assert torch.allclose(out[0], t([0.0, 1.0, 0.0, 0.0, 0.0]))
    assert torch.allclose(out[1], t([0.0, 0.5, 0.0, 0.5, 0.0]))
    wrapped = shift(t([1.0, 0.0, 0.0, 0.0, 0.0]), t([1.0, 0.0, 0.0]))  # -1 wraps to the end
    assert torch.allclose(wrapped, t([0.0, 0.0, 0.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="odd"):
        shift(one_hot, t([0.5, 0.5], [0.5, 0.5]))


def test_read_and_write_by_hand():
    memory = torch.ones(1, 2, 2, dtype=torch.float64)
    w = t([1.0, 0.0])
    new = write(memory, w, erase=t([1.0, 0.0]), add=t([0.0, 2.0]))
    assert torch.allclose(new[0], t([0.0, 3.0], [1.0, 1.0]))
    assert torch.allclose(read(new, t([0.5, 0.5])), t([0.5, 2.0]))


def test_full_addressing_chains_the_pieces():
    g = torch.Generator().manual_seed(0)
    memory = torch.randn(3, 6, 4, generator=g, dtype=torch.float64)
    prev = torch.softmax(torch.randn(3, 6, generator=g, dtype=torch.float64), -1)
    key = torch.randn(3, 4, generator=g, dtype=torch.float64)
    beta, gate, gamma = t(1.0, 2.0, 3.0), t(0.2, 0.5, 0.9), t(1.0, 1.5, 4.0)
    kernel = torch.softmax(torch.randn(3, 3, generator=g, dtype=torch.float64), -1)
    got = ntm_address(memory, prev, key, beta, gate, kernel, gamma)
    for b in range(3):  # one example at a time, written out
        sim = torch.stack([torch.dot(key[b], m) / (key[b].norm() * m.norm()) for m in memory[b]])
        wg = gate[b] * torch.softmax(beta[b] * sim, 0) + (1 - gate[b]) * prev[b]
        ws = torch.stack([sum(wg[(i - s) % 6] * kernel[b, s + 1] for s in (-1, 0, 1))
                          for i in range(6)])  # fmt: skip
        want = ws ** gamma[b] / (ws ** gamma[b]).sum()
        assert torch.allclose(got[b], want)
    assert torch.allclose(got.sum(-1), torch.ones(3, dtype=torch.float64))


def test_least_recently_used_access_by_hand():
    usage = t([0.5, 0.1, 0.3, 0.1], [0.0, 0.2, 0.2, 0.9])
    assert torch.equal(least_used(usage, 2), t([0.0, 1.0, 0.0, 1.0], [1.0, 1.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="reads"):
        least_used(usage, 5)
    read_w, write_w = t([0.0, 1.0, 0.0, 0.0]), t([0.0, 0.0, 0.5, 0.5])
    assert torch.allclose(update_usage(usage[:1], read_w, write_w, decay=0.9),
                          t([0.45, 1.09, 0.77, 0.59]))  # fmt: skip
    w = lru_write_weights(
        torch.tensor([0.25], dtype=torch.float64), read_w, least_used(usage[:1], 1)
    )
    assert torch.allclose(w, t([0.0, 1.0, 0.0, 0.0]))  # least used is slot 1, also the read one
    w = lru_write_weights(torch.tensor([0.25], dtype=torch.float64), t([1.0, 0.0, 0.0, 0.0]),
                          t([0.0, 0.0, 0.0, 1.0]))  # fmt: skip
    assert torch.allclose(w, t([0.25, 0.0, 0.0, 0.75]))


def test_copy_batch_layout_and_costs():
    inputs, targets = copy_batch(3, 4, bits=5, generator=torch.Generator().manual_seed(1))
    assert inputs.shape == (9, 3, 6) and targets.shape == (4, 3, 5)
    assert torch.equal(inputs[:4, :, :5], targets)
    assert torch.equal(inputs[4, :, 5], torch.ones(3)) and inputs[5:].abs().sum() == 0
    assert inputs[:4, :, 5].abs().sum() == 0
    unsure = torch.zeros(4, 3, 5)  # probability 1/2 everywhere: one bit per target bit
    assert torch.allclose(bits_per_sequence(unsure, targets), torch.full((3,), 20.0))
    confident = 20 * (2 * targets - 1)
    assert bits_per_sequence(confident, targets).max() < 1e-6
    flipped = confident.clone()
    flipped[0, 0, :2] *= -1
    assert torch.equal(wrong_bits(flipped, targets), torch.tensor([2.0, 0.0, 0.0]))
    assert torch.equal(answer(torch.arange(9.0), 4), torch.arange(5.0, 9.0))


def test_ntm_gradients_match_finite_differences():
    torch.manual_seed(0)
    model = NeuralTuringMachine(3, 2, slots=5, width=3, hidden=4).double()
    inputs, targets = copy_batch(2, 2, bits=2, generator=torch.Generator().manual_seed(0))
    inputs, targets = inputs.double(), targets.double()

    def cost():
        return bits_per_sequence(answer(model(inputs), 2), targets).sum()

    cost().backward()
    names = ("write_params.weight", "read_params.bias", "controller.weight_hh", "initial_reads")
    assert_grads_match_finite_differences(model, cost, names)


def test_ntm_trace_weightings_are_distributions():
    model = NeuralTuringMachine(3, 2, slots=7, width=4, hidden=8, controller="feedforward")
    trace: dict = {}
    logits = model(torch.randn(5, 2, 3), trace)
    assert logits.shape == (5, 2, 2)
    for name in ("read", "write"):
        weights = torch.stack(trace[name])
        assert weights.shape == (5, 2, 1, 7)
        assert torch.allclose(weights.sum(-1), torch.ones(5, 2, 1), atol=1e-5)


def test_sequence_models_round_trip_through_their_files(tmp_path):
    x = torch.randn(6, 2, 5)
    for model in (
        NeuralTuringMachine(5, 4, slots=9, width=3, hidden=6),
        LSTMSequenceModel(5, 4, 8, 2),
    ):
        path = save_sequence_model(tmp_path / "model.pt", model)
        loaded = load_sequence_model(path)
        assert type(loaded) is type(model) and torch.allclose(loaded(x), model(x))
    torch.save({"format": "other"}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not a sequence model"):
        load_sequence_model(tmp_path / "bad.pt")


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="slots"):
        NeuralTuringMachine(3, 2, slots=0)
    with pytest.raises(ValueError, match="controller"):
        NeuralTuringMachine(3, 2, controller="gru")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="length"):
        copy_batch(2, 0)


def test_small_ntm_learns_to_copy_short_sequences():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = NeuralTuringMachine(5, 4, slots=8, width=6, hidden=24)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    inputs, targets = copy_batch(64, 3, bits=4, generator=torch.Generator().manual_seed(1))

    def held_out():
        with torch.no_grad():
            return bits_per_sequence(answer(model(inputs), 3), targets).mean().item()

    before = held_out()
    for _ in range(800):
        length = int(torch.randint(1, 4, (), generator=g))
        x, y = copy_batch(32, length, bits=4, generator=g)
        cost = bits_per_sequence(answer(model(x), length), y).mean()
        opt.zero_grad()
        cost.backward()
        opt.step()
    assert before > 10  # chance is 12 bits for 3 vectors of 4 bits
    assert held_out() < 0.1 * before  # about 0.15 bits after 800 updates
