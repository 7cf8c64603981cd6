"""Conv-4 and its vmap-safe batch norm: shapes, the norm against torch's, vmap against loop."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from helpers import assert_vmap_matches_loop
from metarl.core import MAML, TaskBatch, resolve_batching
from metarl.nn import MLP, Conv4, TaskBatchNorm2d


@pytest.mark.parametrize("norm", ["batch", "group", "none"])
def test_conv4_maps_omniglot_images_to_logits(norm):
    model = Conv4(ways=5, norm=norm)
    assert model(torch.randn(7, 1, 28, 28)).shape == (7, 5)
    convs = 640 + 3 * (64 * 64 * 9 + 64)  # the standard Conv-4's convolution weights
    norms = {"batch": 4 * 128, "group": 4 * 128, "none": 0}[norm]
    assert sum(p.numel() for p in model.parameters()) == convs + norms + 64 * 5 + 5


def test_strided_conv4_is_the_maml_code_omniglot_network():
    model = Conv4(ways=5, downsample="stride")
    x = torch.randn(7, 1, 28, 28)
    features = model.features(x)
    assert features.shape == (7, 64, 2, 2)  # 28 -> 14 -> 7 -> 4 -> 2 with stride-2 convolutions
    torch.testing.assert_close(model(x), model.head(features.mean(dim=(2, 3))))
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in model.modules())
    sizes = [sum(p.numel() for p in m.parameters()) for m in (model, Conv4(ways=5))]
    assert sizes[0] == sizes[1]  # the same weights, used with stride 2


def test_task_batch_norm_is_batch_norm_with_batch_statistics(float64):
    norm = TaskBatchNorm2d(3)
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([0.5, 2.0, -1.0]))
        norm.bias.copy_(torch.tensor([0.1, 0.0, 3.0]))
    x = torch.randn(6, 3, 5, 5)
    expected = F.batch_norm(x, None, None, norm.weight, norm.bias, training=True, eps=norm.eps)
    torch.testing.assert_close(norm(x), expected)


@pytest.mark.parametrize(("norm", "downsample"), [("batch", "maxpool"), ("group", "maxpool"),
                                                  ("batch", "stride")])  # fmt: skip
def test_conv4_meta_gradients_agree_between_vmap_and_loop(float64, norm, downsample):
    torch.manual_seed(0)
    model = Conv4(ways=3, channels=8, image_size=16, norm=norm, downsample=downsample)
    learner = MAML(model, inner_lr=0.1)
    assert learner.batching == "loop"  # "auto": the loop is the faster path for convolutions
    g = torch.Generator().manual_seed(1)
    batch = TaskBatch(
        torch.randn(4, 6, 1, 16, 16, generator=g),
        torch.randint(0, 3, (4, 6), generator=g),
        torch.randn(4, 9, 1, 16, 16, generator=g),
        torch.randint(0, 3, (4, 9), generator=g),
    )
    assert_vmap_matches_loop(learner, batch, F.cross_entropy, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("downsample", ["maxpool", "stride"])
def test_conv4_second_order_meta_gradient_matches_finite_differences(float64, downsample):
    # The loop path normalises with F.batch_norm: its double backward must be exact.
    torch.manual_seed(0)
    model = Conv4(ways=3, channels=4, image_size=16, downsample=downsample)
    learner = MAML(model, inner_lr=0.3, inner_steps=3, batching="loop")
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(3).repeat(2, 2)
    batch = TaskBatch(torch.rand(2, 6, 1, 16, 16, generator=g), labels,
                      torch.rand(2, 6, 1, 16, 16, generator=g), labels)  # fmt: skip
    learner.meta_loss(batch, F.cross_entropy).backward()
    params = list(learner.parameters())
    direction = [torch.randn_like(p) for p in params]
    analytic = sum((p.grad * d).sum() for p, d in zip(params, direction))

    def loss_at(t: float) -> float:
        with torch.no_grad():
            for p, d in zip(params, direction):
                p.add_(t * d)
            value = learner.meta_loss(batch, F.cross_entropy).item()
            for p, d in zip(params, direction):
                p.sub_(t * d)
        return value

    eps = 1e-6  # small: batch statistics over few values make the loss sharply curved
    numeric = (loss_at(eps) - loss_at(-eps)) / (2 * eps)
    assert abs(numeric) > 0.1
    assert analytic.item() == pytest.approx(numeric, rel=1e-5)


def test_conv4_rejects_bad_settings():
    with pytest.raises(ValueError, match="norm"):
        Conv4(ways=5, norm="layer")
    with pytest.raises(ValueError, match="too small"):
        Conv4(ways=5, image_size=8)
    with pytest.raises(ValueError, match="downsample"):
        Conv4(ways=5, downsample="avgpool")


def test_auto_batching_takes_the_loop_for_convolutions_and_vmap_for_mlps():
    assert resolve_batching(Conv4(ways=5, channels=8), "auto") == "loop"
    assert resolve_batching(MLP(3, 2), "auto") == "vmap"


def test_mlp_xavier_init_is_glorot_uniform_with_zero_biases():
    torch.manual_seed(0)
    model = MLP(17, 6, hidden=(100, 100), init="xavier")
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    for layer in linears:
        fan_out, fan_in = layer.weight.shape
        bound = (6 / (fan_in + fan_out)) ** 0.5
        assert layer.weight.abs().max() <= bound
        # Uniform on [-b, b]: standard deviation b / sqrt(3), within sampling error.
        assert abs(layer.weight.std().item() - bound / 3**0.5) < 0.1 * bound
        assert torch.count_nonzero(layer.bias) == 0
    # The default keeps nn.Linear's initialisation: nonzero biases, weights within 1/sqrt(fan_in).
    default = MLP(17, 6, hidden=(100, 100))
    assert all(torch.count_nonzero(m.bias) > 0 for m in default if isinstance(m, torch.nn.Linear))
    with pytest.raises(ValueError, match="init must be one of"):
        MLP(3, 1, init="orthogonal")
