"""Spoken words: the log-mel features and the word split."""

from __future__ import annotations

import numpy as np
import pytest

from metarl.supervised.data import spoken_words
from metarl.supervised.data.spoken_words import load_spoken_words, log_mel, mel_filterbank


def test_mel_filters_are_triangles_on_the_mel_scale():
    bank = mel_filterbank(10, n_fft=512, sample_rate=16_000)
    assert bank.shape == (10, 257) and bank.min() == 0.0 and bank.max() <= 1.0
    bins = np.fft.rfftfreq(512, 1 / 16_000)
    mel = 2595 * np.log10(1 + bins / 700)
    peaks = mel[bank.argmax(1)]
    step = 2595 * np.log10(1 + 8000 / 700) / 11  # 12 edges from 0 to Nyquist on the mel scale
    np.testing.assert_allclose(peaks, step * np.arange(1, 11), atol=step / 3)
    assert (np.diff(bank.argmax(1)) > 0).all()


@pytest.mark.parametrize("frequency", [300.0, 2_000.0])
def test_a_pure_tone_lights_the_band_of_its_frequency(frequency):
    t = np.arange(16_000) / 16_000
    features = log_mel(0.5 * np.sin(2 * np.pi * frequency * t), n_mels=40, frames=40)
    assert features.shape == (40, 40)
    assert abs(features.mean()) < 1e-5 and abs(features.std() - 1) < 1e-3  # standardised
    band = mel_filterbank(40) @ (np.abs(np.fft.rfftfreq(512, 1 / 16_000) - frequency) < 20)
    assert features.mean(1).argmax() == band.argmax()


@pytest.mark.skipif(
    not (spoken_words.data_root(None, "spoken_words") / spoken_words.ZIP_FILE).is_file(),
    reason="the spoken-words zip is not next to this checkout (set METARL_DATA)",
)
def test_the_word_split_has_twenty_speakers_per_word_and_no_shared_word():
    loaded = {split: load_spoken_words(split) for split in ("train", "val", "test")}
    assert {s: len(d.class_names) for s, d in loaded.items()} == {"train": 30, "val": 5, "test": 15}
    for data in loaded.values():
        assert set(np.bincount(data.labels).tolist()) == {20}
        assert data.features.shape[1:] == (40, 40) and np.isfinite(data.features).all()
    words = [set(d.class_names) for d in loaded.values()]
    assert not (words[0] & words[1] or words[0] & words[2] or words[1] & words[2])


def test_a_missing_or_corrupt_zip_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="spoken_words.zip"):
        load_spoken_words("train", tmp_path)
    (tmp_path / "spoken_words.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="corrupt spoken-words zip"):
        load_spoken_words("train", tmp_path, use_cache=False)
