"""A CSV logger that appends rows and survives a resumed run."""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from pathlib import Path


class CSVLogger:
    """Append rows of scalars to a CSV file; the header comes from the first row written.

    With ``resume_from`` set (the iteration a checkpoint was taken at), rows with
    ``step > resume_from`` are dropped first, so a resumed run does not log them twice.
    """

    def __init__(self, path: str | os.PathLike, resume_from: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fields: list[str] | None = None
        if resume_from is None:
            self.path.unlink(missing_ok=True)
        elif self.path.exists():
            with self.path.open(newline="") as f:
                rows = list(csv.DictReader(f))
            kept = [r for r in rows if int(float(r["step"])) <= resume_from]
            self.path.unlink()
            for row in kept:
                self.log(row)

    def log(self, row: Mapping[str, float | int | str | None]) -> None:
        """Append one row; it needs a ``step`` field and no field the first row lacked.

        Missing fields and ``None`` values are written as empty cells.
        """
        if "step" not in row:
            raise ValueError("every logged row needs a 'step' field")
        new = self._fields is None and not self.path.exists()
        if self._fields is None:
            self._fields = list(row)
        extra = [k for k in row if k not in self._fields]
        if extra:
            raise ValueError(
                f"{self.path}: fields {extra} are not in its header {self._fields}; log every "
                "field in the first row (an empty string where there is no value yet)"
            )
        with self.path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self._fields, restval="")
            if new:
                writer.writeheader()
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
