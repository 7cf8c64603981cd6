"""Checksummed, atomic checkpoints.

A checkpoint file is a one-line ASCII header, ``METARL-CHECKPOINT 1 sha256=<hex> bytes=<n>``,
followed by the ``torch.save`` payload it describes. Files without the header (plain
``torch.save`` files, as older runs wrote them) still load, unverified.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

MAGIC = b"METARL-CHECKPOINT"
FORMAT_VERSION = 1
_HEADER = re.compile(rb"METARL-CHECKPOINT (\d+) sha256=([0-9a-f]{64}) bytes=(\d+)\n")


class CheckpointError(ValueError):
    """A checkpoint file that exists but cannot be trusted or read."""


def previous_path(path: str | os.PathLike) -> Path:
    """Where ``save_checkpoint(..., keep_previous=True)`` keeps the one before: ``X.prev.pt``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a synced temporary file beside it and ``os.replace``.

    ``path`` then holds either its old content or all of ``data``; no temporary is left behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _keep_as_previous(path: Path) -> None:
    """Make ``X.prev.pt`` a copy of ``X.pt`` while ``X.pt`` itself stays in place."""
    prev = previous_path(path)
    tmp = prev.with_name(f".{prev.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(path, tmp)
        except OSError:  # a file system without hard links
            shutil.copyfile(path, tmp)
        os.replace(tmp, prev)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_checkpoint(
    state: dict[str, Any], path: str | os.PathLike, keep_previous: bool = False
) -> Path:
    """Save ``state`` so that ``path`` is never left half-written; return ``path``.

    The file carries the payload's sha256 and length, which ``load_checkpoint`` checks. With
    ``keep_previous``, an existing ``X.pt`` is kept as ``X.prev.pt`` first. Keep ``state`` to
    tensors, numbers, strings and containers of them, so that it loads with ``weights_only``.
    """
    path = Path(path)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    digest = hashlib.sha256(payload).hexdigest()
    header = f"{MAGIC.decode()} {FORMAT_VERSION} sha256={digest} bytes={len(payload)}\n"
    if keep_previous and path.is_file():
        _keep_as_previous(path)
    return write_atomic(path, header.encode("ascii") + payload)


def _fallback_hint(path: Path) -> str:
    prev = previous_path(path)
    if prev.is_file():
        return f"; the previous checkpoint {prev} exists: copy it over {path.name} to use it"
    return ""


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint on the CPU with ``weights_only=True``, verifying it if it has a header.

    Raises ``FileNotFoundError`` if ``path`` is missing, and ``CheckpointError`` (naming the
    file, and a previous checkpoint beside it if there is one) if it is truncated, corrupted
    or otherwise unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    with path.open("rb") as f:
        start = f.read(len(MAGIC))
        if start != MAGIC:  # a plain torch.save file
            try:
                return torch.load(path, map_location="cpu", weights_only=True)
            except Exception as e:
                raise CheckpointError(
                    f"checkpoint {path} cannot be read ({type(e).__name__}: {e})"
                    + _fallback_hint(path)
                ) from e
        data = start + f.read()
    end = data.find(b"\n", 0, 200)
    match = _HEADER.fullmatch(data[: end + 1]) if end >= 0 else None
    if match is None:
        raise CheckpointError(f"checkpoint {path} has a damaged header" + _fallback_hint(path))
    version, digest, size = int(match[1]), match[2].decode(), int(match[3])
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format {version}; this metarl reads format {FORMAT_VERSION}"
        )
    payload = data[end + 1 :]
    if len(payload) < size:
        raise CheckpointError(
            f"checkpoint {path} is truncated: {len(payload)} of {size} payload bytes"
            + _fallback_hint(path)
        )
    if len(payload) > size or hashlib.sha256(payload).hexdigest() != digest:
        raise CheckpointError(
            f"checkpoint {path} is corrupted: its content does not match its sha256 checksum"
            + _fallback_hint(path)
        )
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({type(e).__name__}: {e})" + _fallback_hint(path)
        ) from e
