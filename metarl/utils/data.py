"""Where data sets live: an explicit root, or ``$METARL_DATA``; never a guess."""

from __future__ import annotations

import os
from pathlib import Path

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
