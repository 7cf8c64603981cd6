"""Where data sets live: an explicit root, or ``$METARL_DATA``; never a guess."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

DATA_ENV = "METARL_DATA"


def data_root(root: str | os.PathLike | None = None, subfolder: str = "") -> Path:
    """``root`` if given, else ``$METARL_DATA``; joined with ``subfolder`` (``"omniglot"``).

    Raises ``FileNotFoundError`` naming both ways to say where the data is when neither is
    set. Library code never looks for data relative to its own files.
    """
    if root is None:
        env = os.environ.get(DATA_ENV)
        if not env:
            what = f"the {subfolder} data" if subfolder else "data"
            raise FileNotFoundError(
                f"no data root for {what}: pass the folder that holds it (--data, or the "
                f"root argument) or set {DATA_ENV} to the folder that holds {subfolder or 'it'}/"
            )
        return Path(env) / subfolder
    return Path(root)


def cache_dir() -> Path:
    """``$METARL_CACHE`` or ``$XDG_CACHE_HOME/metarl`` (default ``~/.cache/metarl``)."""
    env = os.environ.get("METARL_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "metarl"


def file_fingerprint(paths: Sequence[Path]) -> str:
    """A short hash of the files' names, sizes and modification times: part of a cache
    file's name, so a changed data file is read again."""
    digest = hashlib.sha1()
    for path in paths:
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    return digest.hexdigest()[:12]


def cached_arrays(
    name: str, use_cache: bool, read: Callable[[], Mapping[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """``read()``'s named arrays, through the ``.npz`` file ``name`` in ``cache_dir()``:
    read from it when it exists (and ``use_cache``), else computed and written atomically
    (a concurrent reader never sees half a file)."""
    cached = cache_dir() / name
    if use_cache and cached.is_file():
        with np.load(cached) as data:
            return {key: data[key] for key in data.files}
    arrays = dict(read())
    if use_cache:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(partial, **arrays)
        partial.replace(cached)
    return arrays
