"""Random affine episode augmentation: geometry, per-class consistency, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metarl.supervised.data.augment import ClassMix, RandomAffine, compose
from metarl.supervised.episodes import EpisodeSampler


class _Highest:
    """A stand-in generator whose uniform draws all return the top of their range."""

    def uniform(self, low, high, size):
        return np.full(size, high, dtype=float)


def _images(n: int, size: int = 8) -> torch.Tensor:
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(n))


def test_zero_ranges_leave_images_unchanged():
    x = _images(6).view(1, 2, 3, 1, 8, 8)
    identity = RandomAffine("image", rotation=0, shift=0, scale=(1, 1), shear=0)
    torch.testing.assert_close(identity(x, np.random.default_rng(0)), x)


def test_a_quarter_turn_is_rot90_and_a_shift_moves_by_whole_pixels():
    x = _images(1).view(1, 1, 1, 1, 8, 8)
    turn = RandomAffine("image", rotation=90, shift=0, scale=(1, 1), shear=0)
    out = turn(x, _Highest())[0, 0, 0, 0]
    assert any(torch.allclose(out, torch.rot90(x[0, 0, 0, 0], k), atol=1e-5) for k in (1, 3))
    shift = RandomAffine("image", rotation=0, shift=0.25, scale=(1, 1), shear=0)
    out = shift(x, _Highest())[0, 0, 0, 0]  # 0.25 of 8 pixels = 2 pixels (up and left)
    torch.testing.assert_close(out[:-2, :-2], x[0, 0, 0, 0, 2:, 2:])
    assert out[-2:].abs().max() == 0 and out[:, -2:].abs().max() == 0  # zeros shifted in


def test_per_class_draws_one_transform_per_class():
    same = _images(1).expand(12, -1, -1, -1).reshape(2, 2, 3, 1, 8, 8)  # one image everywhere
    out = RandomAffine("class")(same, np.random.default_rng(0))
    for t in range(2):
        for c in range(2):
            assert torch.equal(out[t, c, 0], out[t, c, 1]) and torch.equal(
                out[t, c, 0], out[t, c, 2]
            )
    assert not torch.equal(out[0, 0, 0], out[0, 1, 0])
    per_image = RandomAffine("image")(same, np.random.default_rng(0))
    assert not torch.equal(per_image[0, 0, 0], per_image[0, 0, 1])


def test_both_composes_a_class_draw_with_a_half_range_image_draw():
    x = _images(1).view(1, 1, 1, 1, 8, 8)
    turn = RandomAffine("both", rotation=60, shift=0, scale=(1, 1), shear=0)
    out = turn(x, _Highest())[0, 0, 0, 0]  # 60 + 30 degrees
    assert any(torch.allclose(out, torch.rot90(x[0, 0, 0, 0], k), atol=1e-5) for k in (1, 3))
    shift = RandomAffine("both", rotation=0, shift=0.25, scale=(1, 1), shear=0)
    out = shift(x, _Highest())[0, 0, 0, 0]  # 2 + 1 pixels
    torch.testing.assert_close(out[:-3, :-3], x[0, 0, 0, 0, 3:, 3:])
    assert out[-3:].abs().max() == 0
    same = _images(1).expand(4, -1, -1, -1).reshape(1, 2, 2, 1, 8, 8)
    both = RandomAffine("both")(same, np.random.default_rng(0))
    assert not torch.equal(both[0, 0, 0], both[0, 0, 1])  # images of a class differ


def test_class_mix_superimposes_each_class_with_the_next_episodes_same_way():
    x = torch.rand(3, 2, 4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ClassMix(0.0)(x, np.random.default_rng(0)), x)
    out = ClassMix(1.0)(x, np.random.default_rng(0))
    torch.testing.assert_close(out[1], torch.maximum(x[1], x[0]))  # image j with image j
    torch.testing.assert_close(out[0], torch.maximum(x[0], x[2]))
    one = ClassMix(1.0)(x[:1], np.random.default_rng(0))  # one episode: the next way
    torch.testing.assert_close(one[0, 0], torch.maximum(x[0, 0], x[0, 1]))
    half = ClassMix(0.5)(x, np.random.default_rng(1))
    kept = [torch.equal(half[t, c], x[t, c]) for t in range(3) for c in range(2)]
    assert 0 < sum(kept) < 6  # some classes mixed, some kept, whole classes at a time
    chained = compose(ClassMix(1.0), RandomAffine("class", rotation=0, shift=0, scale=(1, 1),
                                                  shear=0))  # fmt: skip
    torch.testing.assert_close(chained(x, np.random.default_rng(0)), out)
    with pytest.raises(ValueError, match="prob"):
        ClassMix(1.5)


def test_augmented_episodes_are_reproducible_and_differ_from_plain_ones():
    labels = np.repeat(np.arange(6), 4)
    data = _images(24)
    make = lambda t: EpisodeSampler(data, labels, 3, 1, 2, seed=3, transform=t)  # noqa: E731
    a, b = make(RandomAffine()).sample(4), make(RandomAffine()).sample(4)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    plain = make(None).sample(4)
    assert torch.equal(a.support_y, plain.support_y)
    assert not torch.allclose(a.support_x, plain.support_x)


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="per"):
        RandomAffine("episode")
    with pytest.raises(ValueError, match="scale"):
        RandomAffine(scale=(0.0, 1.0))


def test_elastic_warps_are_bounded_smooth_and_drawn_per_class():
    dot = torch.zeros(1, 1, 1, 1, 28, 28)
    dot[..., 14, 14] = 1.0
    warp = RandomAffine("image", rotation=0, shift=0, scale=(1, 1), shear=0, elastic=0.12)
    rng = np.random.default_rng(0)
    moved = []
    for _ in range(20):
        out = warp(dot, rng)[0, 0, 0, 0]
        assert out.sum() > 0.5  # the dot survives the resampling
        rows, cols = torch.nonzero(out > 0, as_tuple=True)
        moved.append(max((rows - 14).abs().max().item(), (cols - 14).abs().max().item()))
    # 0.12 of the half-width of 14 pixels: at most 1.7 pixels, plus one for bilinear spread
    assert max(moved) <= 3 and max(moved) >= 1
    fields = warp.warps(3, torch.Size([28, 28]), rng)
    assert fields.shape == (3, 28, 28, 2) and fields.abs().max() <= 0.12
    assert (
        fields[:, 1:] - fields[:, :-1]
    ).abs().max() <= 2 * 0.12 / 9 * 1.01  # +-0.12 corners 9 px apart

    same = _images(1, 28).expand(8, -1, -1, -1).reshape(2, 2, 2, 1, 28, 28)
    per_class = RandomAffine("class", rotation=0, shift=0, scale=(1, 1), shear=0, elastic=0.12)
    out = per_class(same, np.random.default_rng(1))
    assert torch.equal(out[0, 0, 0], out[0, 0, 1]) and not torch.equal(out[0, 0, 0], out[0, 1, 0])
    with pytest.raises(ValueError, match="elastic"):
        RandomAffine("class", elastic=-0.1)
