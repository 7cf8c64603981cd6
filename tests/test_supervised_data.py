"""Omniglot loading (split, deduplication, cache, errors) and the N-way K-shot episode sampler."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch

from helpers import fake_omniglot, png_bytes
from metarl.supervised.data import omniglot
from metarl.supervised.data.omniglot import (
    SPLITS,
    load_image,
    load_omniglot,
    protocol_classes,
    split_seed,
    subset_classes,
    with_rotations,
)
from metarl.supervised.episodes import EpisodeSampler


@pytest.fixture
def fake_root(tmp_path, monkeypatch):
    monkeypatch.setenv("METARL_CACHE", str(tmp_path / "cache"))
    (tmp_path / "data").mkdir()
    return fake_omniglot(tmp_path / "data")


def test_splits_are_disjoint_and_duplicated_alphabets_are_read_once(fake_root):
    loaded = {split: load_omniglot(split, fake_root) for split in SPLITS}
    train = loaded["train"]
    assert train.class_names == [f"{a}/character0{c}" for a in ("Greek", "Korean") for c in (1, 2)]
    assert np.bincount(train.labels).tolist() == [3, 3, 3, 3]  # Greek not doubled
    assert len(loaded["val"].class_names) == 1 and len(loaded["test"].class_names) == 3
    names = [set(data.class_names) for data in loaded.values()]
    assert all(not (a & b) for i, a in enumerate(names) for b in names[i + 1 :])
    assert train.images.shape == (12, 28, 28) and train.images.dtype == np.uint8
    assert train.images.max() == 255 and np.median(train.images) == 0  # strokes 255, paper 0


def test_second_load_comes_from_the_cache(fake_root, monkeypatch):
    first = load_omniglot("test", fake_root)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr(omniglot, "_read_split", no_decoding)
    second = load_omniglot("test", fake_root)
    np.testing.assert_array_equal(first.images, second.images)
    assert first.class_names == second.class_names


def test_missing_and_corrupt_files_are_named(fake_root, tmp_path):
    with pytest.raises(FileNotFoundError, match="images_background_small1.zip"):
        load_omniglot("train", tmp_path / "nowhere")
    (fake_root / "images_background_small2.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="corrupt Omniglot zip: .*small2.zip"):
        load_omniglot("train", fake_root, use_cache=False)
    with zipfile.ZipFile(fake_root / "images_background_small2.zip", "w") as archive:
        archive.writestr("images_background_small2/Sanskrit/character01/bad.png", b"garbage")
    with pytest.raises(ValueError, match="character01/bad.png"):
        load_omniglot("test", fake_root, use_cache=False)
    with pytest.raises(ValueError, match="split"):
        load_omniglot("meta-test", fake_root)


@pytest.mark.parametrize("protocol", ["vinyals", "lake"])
def test_full_protocols_split_characters_without_overlap(protocol):
    splits = protocol_classes(protocol, [964, 659], seed=3, val_characters=100)
    sizes = {name: len(chars) for name, chars in splits.items()}
    expected = {"vinyals": (1100, 100, 423), "lake": (864, 100, 659)}[protocol]
    assert (sizes["train"], sizes["val"], sizes["test"]) == expected
    sets = [set(chars) for chars in splits.values()]
    assert all(not (a & b) for i, a in enumerate(sets) for b in sets[i + 1 :])
    assert len(set().union(*sets)) == 964 + 659  # every character in exactly one split
    if protocol == "lake":  # the background set trains, the evaluation set tests
        assert {s for s, _ in splits["test"]} == {1} and {s for s, _ in splits["train"]} == {0}
    else:  # pooled: both sets on both sides
        assert {s for s, _ in splits["train"]} == {s for s, _ in splits["test"]} == {0, 1}
    assert protocol_classes(protocol, [964, 659], seed=3) == splits
    other = protocol_classes(protocol, [964, 659], seed=4)
    assert other["val"] != splits["val"]  # the seed draws the split (lake: only its val share)
    assert (other["test"] == splits["test"]) == (protocol == "lake")
    with pytest.raises(ValueError, match="val_characters"):
        protocol_classes(protocol, [964, 659], val_characters=5000)


def test_full_protocols_name_the_missing_zip(fake_root):
    with pytest.raises(FileNotFoundError, match="images_background.zip"):
        load_omniglot("train", fake_root, protocol="vinyals")
    with pytest.raises(ValueError, match="protocol"):
        load_omniglot("train", fake_root, protocol="omniglot")


def test_load_image_gives_the_learners_input(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(png_bytes(0, dot=(0, 0)))
    x = load_image(path)
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32
    assert x[0, 0, 0] == 1.0 and x[0, -1, -1] == 0.0  # stroke top-left, paper elsewhere


def test_rotations_are_new_classes():
    images = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    data = omniglot.LabelledImages(images, np.array([0, 1]), ["a", "b"])
    rotated = with_rotations(data)
    assert rotated.class_names[:4] == ["a/rot0", "a/rot90", "a/rot180", "a/rot270"]
    assert sorted(rotated.labels.tolist()) == list(range(8))
    np.testing.assert_array_equal(rotated.images[2], np.rot90(images[0]))  # a, 90 degrees
    assert rotated.labels[2] == 1


def test_mirrored_classes_complete_the_eight_symmetries():
    images = np.random.default_rng(0).integers(0, 256, (2, 4, 4), dtype=np.uint8)
    data = omniglot.LabelledImages(images, np.array([0, 1]), ["a", "b"])
    both = with_rotations(data, mirror=True)
    assert len(both.class_names) == 16 and sorted(both.labels.tolist()) == list(range(16))
    variants = {both.class_names[label]: both.images[i] for i, label in enumerate(both.labels)}
    np.testing.assert_array_equal(variants["a-mirror/rot0"], images[0, :, ::-1])
    np.testing.assert_array_equal(variants["b-mirror/rot90"], np.rot90(images[1, :, ::-1]))
    symmetries = {variants[f"a{m}/rot{r}"].tobytes() for m in ("", "-mirror")
                  for r in (0, 90, 180, 270)}  # fmt: skip
    assert len(symmetries) == 8  # a random image has eight distinct symmetric copies


def test_episodes_have_the_right_shapes_labels_and_no_overlap():
    labels = np.repeat(np.arange(10), 6)
    data = torch.arange(60, dtype=torch.float32).view(60, 1, 1, 1).expand(60, 1, 2, 2)
    sampler = EpisodeSampler(data, labels, ways=5, shots=2, queries=3, seed=0)
    batch = sampler.sample(4)
    assert batch.support_x.shape == (4, 10, 1, 2, 2) and batch.query_x.shape == (4, 15, 1, 2, 2)
    assert batch.support_y.tolist()[0] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    for t in range(4):
        support_ids = batch.support_x[t, :, 0, 0, 0].long().tolist()
        query_ids = batch.query_x[t, :, 0, 0, 0].long().tolist()
        assert not set(support_ids) & set(query_ids)
        for ids, ys in ((support_ids, batch.support_y[t]), (query_ids, batch.query_y[t])):
            classes = labels[ids]
            # every episode label maps to one original class, and the classes differ
            mapping = {int(y): int(c) for y, c in zip(ys, classes)}
            assert len(mapping) == 5 and len(set(mapping.values())) == 5
            assert all(mapping[int(y)] == c for y, c in zip(ys, classes))
    again = EpisodeSampler(data, labels, ways=5, shots=2, queries=3, seed=0).sample(4)
    assert all(torch.equal(a, b) for a, b in zip(batch, again))


def test_episode_sampler_rejects_impossible_requests():
    labels = np.repeat(np.arange(3), 4)
    data = np.zeros((12, 5, 5), np.uint8)
    with pytest.raises(ValueError, match="need 5 classes"):
        EpisodeSampler(data, labels, ways=5, shots=1, queries=1)
    with pytest.raises(ValueError, match="need 3 classes with >= 5 examples"):
        EpisodeSampler(data, labels, ways=3, shots=2, queries=3)
    with pytest.raises(ValueError, match="labels"):
        EpisodeSampler(data, labels[:5], ways=2, shots=1)
    x = EpisodeSampler(data, labels, ways=2, shots=1, queries=1).sample(1).support_x
    assert x.shape == (1, 2, 1, 5, 5) and x.dtype == torch.float32


def test_each_split_draws_its_own_episodes_from_one_run_seed():
    seeds = {split: split_seed(7, split) for split in SPLITS}
    assert seeds == {"train": 7, "val": 8, "test": 9}  # what the committed runs were scored on
    images = np.arange(40, dtype=np.uint8).repeat(4).reshape(40, 2, 2)
    labels = np.arange(40) // 4
    val = EpisodeSampler(images, labels, 5, 1, 1, seed=seeds["val"]).sample(2)
    test = EpisodeSampler(images, labels, 5, 1, 1, seed=seeds["test"]).sample(2)
    assert not torch.equal(val.support_x, test.support_x)
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        split_seed(7, "dev")


@pytest.mark.skipif(
    not (omniglot.default_root() / omniglot.ZIP_FILES[0]).is_file(),
    reason="the Omniglot zips are not next to this checkout (set METARL_DATA)",
)
def test_real_omniglot_split_matches_the_design():
    loaded = {split: load_omniglot(split) for split in SPLITS}
    counts = {split: len(data.class_names) for split, data in loaded.items()}
    assert counts == {"train": 183, "val": 17, "test": 42}
    for data in loaded.values():
        assert set(np.bincount(data.labels).tolist()) == {20}  # 20 drawers per character
    alphabets = {split: {n.split("/")[0] for n in d.class_names} for split, d in loaded.items()}
    assert alphabets == {split: set(names) for split, names in SPLITS.items()}


def test_grouped_episodes_draw_all_their_classes_from_one_group():
    labels = np.repeat(np.arange(12), 3)
    data = torch.arange(36, dtype=torch.float32).view(36, 1, 1, 1)
    groups = np.array([0] * 5 + [1] * 4 + [2] * 3)  # group 2 is too small for 4-way
    sampler = EpisodeSampler(data, labels, ways=4, shots=1, queries=1, seed=0,
                             class_groups=groups)  # fmt: skip
    batch = sampler.sample(200)
    seen = set()
    for t in range(200):
        classes = labels[batch.support_x[t, :, 0, 0, 0].long().numpy()]
        assert len(set(groups[classes])) == 1
        seen.add(int(groups[classes[0]]))
    assert seen == {0, 1}
    with pytest.raises(ValueError, match="one group per label"):
        EpisodeSampler(data, labels, 4, 1, 1, class_groups=groups[:5])
    with pytest.raises(ValueError, match="no class group"):
        EpisodeSampler(data, labels, 6, 1, 1, class_groups=groups)


def test_alphabet_groups_separate_alphabets_and_rotations():
    names = ["Greek/a", "Greek/b", "Korean/a"]
    data = with_rotations(
        omniglot.LabelledImages(np.zeros((3, 2, 2), np.uint8), np.arange(3), names)
    )
    groups = omniglot.alphabet_groups(data)
    assert len(groups) == 12 and len(set(groups.tolist())) == 8  # 2 alphabets x 4 angles
    name_of = dict(enumerate(data.class_names))
    for i in range(12):
        for j in range(12):
            alphabet_i, _, angle_i = name_of[i].split("/")
            alphabet_j, _, angle_j = name_of[j].split("/")
            same = (alphabet_i, angle_i) == (alphabet_j, angle_j)
            assert (groups[i] == groups[j]) == same
    plain = omniglot.alphabet_groups(omniglot.LabelledImages(data.images[:3], np.arange(3), names))
    assert plain.tolist() == [0, 0, 1]


def test_subset_classes_keeps_whole_classes_relabelled_and_reproducible():
    images = np.arange(6 * 2).reshape(12, 1, 1).astype(np.uint8)  # image i belongs to class i // 2
    data = omniglot.LabelledImages(images, np.arange(12) // 2, [f"A/c{i}" for i in range(6)])
    part = subset_classes(data, 3, seed=0)
    assert part.labels.tolist() == [0, 0, 1, 1, 2, 2]
    originals = [int(name[3:]) for name in part.class_names]
    assert originals == sorted(originals) and len(set(originals)) == 3
    for image, label in zip(part.images[:, 0, 0], part.labels):  # every image kept its class
        assert image // 2 == originals[label]
    assert subset_classes(data, 3, seed=0).class_names == part.class_names
    draws = {tuple(subset_classes(data, 3, seed=k).class_names) for k in range(10)}
    assert len(draws) > 1  # the seed picks the classes
    with pytest.raises(ValueError, match="count must lie in"):
        subset_classes(data, 7, seed=0)


@pytest.mark.skipif(
    not (omniglot.default_root() / omniglot.FULL_ZIP_FILES[0]).is_file(),
    reason="the full Omniglot zips are not next to this checkout (set METARL_DATA)",
)
def test_real_full_omniglot_protocols():
    for protocol, counts in (("vinyals", (1100, 100, 423)), ("lake", (864, 100, 659))):
        loaded = [load_omniglot(split, protocol=protocol) for split in ("train", "val", "test")]
        assert tuple(len(d.class_names) for d in loaded) == counts
        for data in loaded:
            assert set(np.bincount(data.labels).tolist()) == {20}  # 20 drawers per character
            assert data.images.shape[1:] == (28, 28)
        names = [set(d.class_names) for d in loaded]
        assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])


def test_semi_supervised_episodes_keep_unlabelled_and_distractor_examples_apart():
    from metarl.supervised.episodes import SemiSupervisedEpisodeSampler

    labels = np.repeat(np.arange(12), 10)  # 12 classes x 10 examples
    data = torch.arange(len(labels), dtype=torch.float32).view(-1, 1)  # an example = its index
    sampler = SemiSupervisedEpisodeSampler(
        data, labels, ways=3, shots=2, queries=3, unlabelled=4, distractors=2, seed=0
    )
    batch = sampler.sample(5)
    assert batch.support_x.shape == (5, 6, 1) and batch.query_x.shape == (5, 9, 1)
    assert batch.unlabelled_x.shape == (5, (3 + 2) * 4, 1)
    for t in range(5):
        support, query, unlabelled = (
            getattr(batch, f)[t, :, 0].long().numpy()
            for f in ("support_x", "query_x", "unlabelled_x")
        )
        everything = np.concatenate([support, query, unlabelled])
        assert len(set(everything.tolist())) == len(everything)  # no example twice
        episode_classes = set(labels[support].tolist())
        assert set(labels[query].tolist()) == episode_classes
        assert len(episode_classes) == 3
        counts = np.bincount(labels[unlabelled], minlength=12)
        assert all(counts[c] == 4 for c in episode_classes)  # 4 unlabelled of each class
        distractors = set(np.flatnonzero(counts).tolist()) - episode_classes
        assert len(distractors) == 2 and all(counts[c] == 4 for c in distractors)
        # support labels name the classes consistently with the queries
        for y, x in ((batch.support_y[t], support), (batch.query_y[t], query)):
            for way in range(3):
                assert len(set(labels[x[y.numpy() == way]].tolist())) == 1
    with pytest.raises(ValueError, match="distractor"):
        SemiSupervisedEpisodeSampler(data, labels, ways=10, shots=1, queries=1, distractors=3)
