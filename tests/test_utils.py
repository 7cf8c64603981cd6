"""Checkpoints, CSV logging and the settings parser."""

from __future__ import annotations

import csv

import pytest
import torch

from metarl.utils import CSVLogger, load_checkpoint, save_checkpoint


def test_checkpoint_round_trip_with_weights_only(tmp_path):
    state = {"w": torch.randn(3, 2), "it": 7, "rng": torch.Generator().manual_seed(1).get_state()}
    path = save_checkpoint(state, tmp_path / "sub" / "ckpt.pt")
    loaded = load_checkpoint(path)
    assert loaded["it"] == 7 and torch.equal(loaded["w"], state["w"])
    assert [p.name for p in path.parent.iterdir()] == ["ckpt.pt"]  # no temporary left behind


class _Unpicklable:
    def __reduce__(self):
        raise RuntimeError("cannot pickle this")


def test_checkpoint_failure_leaves_the_previous_file(tmp_path):
    path = save_checkpoint({"v": 1}, tmp_path / "ckpt.pt")
    with pytest.raises(RuntimeError, match="cannot pickle"):
        save_checkpoint({"v": _Unpicklable()}, path)
    assert load_checkpoint(path)["v"] == 1
    assert len(list(tmp_path.iterdir())) == 1


def test_missing_checkpoint_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pt"):
        load_checkpoint(tmp_path / "nowhere.pt")


def test_csv_logger_resume_drops_rows_past_the_checkpoint(tmp_path):
    log = CSVLogger(tmp_path / "m.csv")
    for step in (1, 2, 3):
        log.log({"step": step, "loss": step * 0.5})
    resumed = CSVLogger(tmp_path / "m.csv", resume_from=2)
    resumed.log({"step": 3, "loss": 9.0})
    with (tmp_path / "m.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["step"], r["loss"]) for r in rows] == [("1", "0.5"), ("2", "1.0"), ("3", "9.0")]
