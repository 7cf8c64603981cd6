"""The spoken-words audio set as log-mel spectrogram "images" for few-shot word recognition.

``spoken_words.zip`` holds ``spoken_words/<word>/speakerNN.wav``: 50 words by the same 20
synthetic speakers, 16 kHz mono 16-bit, about a second each. The split is by word (sorted):
the first 30 for meta-training, the next 5 for meta-validation, the last 15 for the test.

Features, computed here with NumPy (no audio dependency): each clip is cut or zero-padded
to ``seconds`` (1.0), framed with a Hann window of 25 ms every ``seconds / frames``, its
power spectrum (512-point FFT) pooled by ``n_mels`` triangular mel filters (HTK mel scale,
0-8 kHz), then ``log(energy + 1e-6)``, standardised per clip. The result is a
``[n_mels, frames]`` array per clip (40 x 40 by default: square, for ``metarl.nn.Conv4``
with ``image_size=40``), cached as an ``.npz`` in the user cache directory.

    features, labels, words = load_spoken_words("train")   # float32 [600, 40, 40]
"""

from __future__ import annotations

import io
import wave
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from metarl.utils.data import cached_arrays, data_root, file_fingerprint

ZIP_FILE = "spoken_words.zip"
SPLIT_WORDS = {"train": slice(0, 30), "val": slice(30, 35), "test": slice(35, 50)}
SAMPLE_RATE = 16_000


class LabelledClips(NamedTuple):
    """Features ``float32 [N, n_mels, frames]``, labels ``[N]`` and each class's word."""

    features: np.ndarray
    labels: np.ndarray
    class_names: list[str]


def mel_filterbank(n_mels: int, n_fft: int = 512, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Triangular filters ``[n_mels, n_fft // 2 + 1]`` evenly spaced on the HTK mel scale
    from 0 Hz to the Nyquist frequency, each peaking at 1."""

    def mel(hz: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    def hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    edges = hz(np.linspace(0.0, mel(np.array(sample_rate / 2)), n_mels + 2))
    bins = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    low, centre, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins - low) / (centre - low)
    falling = (high - bins) / (high - centre)
    return np.clip(np.minimum(rising, falling), 0.0, None)


def log_mel(
    signal: np.ndarray,
    n_mels: int = 40,
    frames: int = 40,
    seconds: float = 1.0,
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """The standardised log-mel spectrogram ``[n_mels, frames]`` of a mono ``signal`` in
    [-1, 1] (see the module docstring)."""
    length = int(seconds * sample_rate)
    clip = np.zeros(length, np.float64)
    clip[: min(length, len(signal))] = signal[:length]
    window, n_fft = int(0.025 * sample_rate), 512
    hop = (length - window) / max(frames - 1, 1)
    starts = np.round(np.arange(frames) * hop).astype(int)
    taper = np.hanning(window)
    segments = np.stack([clip[s : s + window] * taper for s in starts])  # [frames, window]
    power = np.abs(np.fft.rfft(segments, n_fft)) ** 2  # [frames, n_fft // 2 + 1]
    energy = mel_filterbank(n_mels, n_fft, sample_rate) @ power.T  # [n_mels, frames]
    features = np.log(energy + 1e-6)
    return ((features - features.mean()) / (features.std() + 1e-6)).astype(np.float32)


def load_spoken_words(
    split: str,
    root: str | Path | None = None,
    n_mels: int = 40,
    frames: int = 40,
    use_cache: bool = True,
) -> LabelledClips:
    """The log-mel features of one split's clips (``"train"``, ``"val"``, ``"test"``), one
    class per word; ``FileNotFoundError`` naming a missing zip, ``ValueError`` naming a
    corrupt zip or clip."""
    if split not in SPLIT_WORDS:
        raise ValueError(f"split must be one of {list(SPLIT_WORDS)}, got {split!r}")
    root = Path(root) if root is not None else data_root(None, "spoken_words")
    path = root / ZIP_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"spoken-words zip not found: {path} (pass the folder holding {ZIP_FILE} as root "
            "/ --data, or set METARL_DATA to the folder above spoken_words/)"
        )
    name = f"spoken-words-{split}-{n_mels}x{frames}-{file_fingerprint([path])}.npz"

    def arrays() -> dict[str, np.ndarray]:
        features, labels, words = _read(path, split, n_mels, frames)
        return {"features": features, "labels": labels, "class_names": np.array(words)}

    data = cached_arrays(name, use_cache, arrays)
    return LabelledClips(data["features"], data["labels"], data["class_names"].tolist())


def _read(path: Path, split: str, n_mels: int, frames: int) -> LabelledClips:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise ValueError(f"corrupt spoken-words zip: {path}") from error
    with archive:
        members = [m for m in archive.namelist() if m.endswith(".wav") and m.count("/") == 2]
        words = sorted({m.split("/")[1] for m in members})
        if len(words) != 50:
            raise ValueError(f"{path} holds {len(words)} words, expected 50")
        chosen = words[SPLIT_WORDS[split]]
        features, labels = [], []
        for label, word in enumerate(chosen):
            for member in sorted(m for m in members if m.split("/")[1] == word):
                features.append(log_mel(_samples(archive.read(member), f"{path}:{member}"),
                                        n_mels, frames))  # fmt: skip
                labels.append(label)
    return LabelledClips(np.stack(features), np.array(labels, np.int64), chosen)


def _samples(data: bytes, name: str) -> np.ndarray:
    """A 16 kHz mono 16-bit WAV's samples in [-1, 1]."""
    try:
        with wave.open(io.BytesIO(data)) as clip:
            if (clip.getnchannels(), clip.getsampwidth(), clip.getframerate()) != (
                1,
                2,
                SAMPLE_RATE,
            ):
                raise ValueError(f"{name}: expected 16 kHz mono 16-bit audio")
            raw = clip.readframes(clip.getnframes())
    except (wave.Error, EOFError) as error:
        raise ValueError(f"corrupt or unreadable clip: {name}") from error
    return np.frombuffer(raw, "<i2").astype(np.float64) / 32768.0
