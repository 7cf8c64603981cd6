"""The experiment runner: refusals, verified checkpoints, resume, provenance, interrupts, plots."""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from metarl.utils import CheckpointError, Run, RunError, load_checkpoint, plot_curves
from metarl.utils.checkpoint import save_checkpoint

SCRIPT = "experiments/demo.py"


@dataclass
class _Settings:
    seed: int = 0
    shots: int = 5
    hidden: tuple[int, ...] = (8, 8)
    threads: int = 1
    resume: bool = False
    overwrite: bool = False


def _run(out: Path, settings: _Settings | None = None, argv: list[str] | None = None) -> Run:
    s = settings or _Settings()
    return Run(
        out, s, resume=s.resume, overwrite=s.overwrite, argv=argv or [], script=SCRIPT,
        ignore=("resume", "overwrite", "threads"),
    )  # fmt: skip


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_existing_run_is_refused_until_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    first = _run(out)
    first.restore()
    first.log(1, loss=0.5)
    first.save({"w": torch.ones(2)}, 1)
    first.close()
    (out / "notes.txt").write_text("not the run's")
    with pytest.raises(RunError) as e:
        _run(out)
    message = str(e.value)
    assert str(out) in message and "already holds a run" in message
    assert "--resume" in message and "--overwrite" in message
    _run(out, _Settings(overwrite=True))
    assert "removed" in capsys.readouterr().out
    left = sorted(p.name for p in out.iterdir())
    assert left == ["notes.txt", "settings.json"]  # the old checkpoint, CSV, events are gone


def test_resume_with_other_settings_lists_each_difference(tmp_path):
    out = tmp_path / "run"
    _run(out).save({}, 1)
    with pytest.raises(RunError) as e:
        _run(out, _Settings(seed=1, shots=10, threads=4, resume=True))
    message = str(e.value)
    assert "seed: 0 -> 1" in message and "shots: 5 -> 10" in message
    assert "threads" not in message and "hidden" not in message  # ignored; tuple == list
    _run(out, _Settings(threads=4, resume=True))  # only ignored settings differ: accepted


def test_resume_and_overwrite_together_are_refused(tmp_path):
    with pytest.raises(RunError, match="only one of them"):
        _run(tmp_path / "run", _Settings(resume=True, overwrite=True))


def test_resume_without_a_run_is_refused(tmp_path):
    out = tmp_path / "missing"
    with pytest.raises(RunError, match="nothing to resume") as e:
        _run(out, _Settings(resume=True))
    assert str(out) in str(e.value) and "drop --resume" in str(e.value)
    _run(out)  # a run that stopped before its first checkpoint
    with pytest.raises(RunError, match="nothing to resume.*--overwrite"):
        _run(out, _Settings(resume=True))


def test_flipped_bytes_are_caught_and_the_previous_checkpoint_named(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint({"w": torch.zeros(100)}, path, keep_previous=True)
    save_checkpoint({"w": torch.ones(100)}, path, keep_previous=True)
    assert torch.equal(load_checkpoint(tmp_path / "checkpoint.prev.pt")["w"], torch.zeros(100))
    data = bytearray(path.read_bytes())
    data[-300] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupted") as e:
        load_checkpoint(path)
    assert str(path) in str(e.value) and "checkpoint.prev.pt" in str(e.value)


def test_truncated_checkpoint_says_truncated(tmp_path):
    path = save_checkpoint({"w": torch.ones(100)}, tmp_path / "checkpoint.pt")
    size = path.stat().st_size
    path.write_bytes(path.read_bytes()[: size - 100])
    with pytest.raises(CheckpointError, match="truncated") as e:
        load_checkpoint(path)
    assert str(path) in str(e.value)


def test_legacy_checkpoints_load_and_a_truncated_one_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "old.pt"
    torch.save({"w": torch.ones(100), "iteration": 4}, path)
    assert load_checkpoint(path)["iteration"] == 4
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="cannot be read") as e:
        load_checkpoint(path)
    assert str(path) in str(e.value)


def test_committed_legacy_checkpoints_still_load():
    root = Path(__file__).resolve().parents[1] / "experiments" / "results"
    paths = [
        root / "sinusoid" / "maml-10shot-seed0" / "checkpoint.pt",
        root / "omniglot" / "maml-5way1shot-augclass-seed0" / "learner.pt",
    ]
    if not all(p.is_file() for p in paths):
        pytest.skip("committed results not present")
    assert load_checkpoint(paths[0])["iteration"] > 0
    assert "state_dict" in load_checkpoint(paths[1])


def test_resume_round_trip(tmp_path, capsys):
    out = tmp_path / "run"
    run = _run(out)
    assert run.restore() is None
    for it in run.progress(10, "train"):
        time.sleep(0.01)
        run.log(it + 1, loss=float(it), note="" if it else "first")
        if it + 1 == 3:
            saved_wall = load_checkpoint(run.save({"w": torch.full((2,), 3.0)}, 3))["elapsed"]
            expected = torch.rand(4)  # the draws the resumed run must repeat
        if it + 1 == 5:
            break  # stopped after logging past the checkpoint
    run.close()

    resumed = _run(out, _Settings(resume=True))
    state = resumed.restore()
    assert "resumed from" in capsys.readouterr().out
    assert torch.equal(state["w"], torch.full((2,), 3.0))
    assert resumed.start_iteration == 3
    assert resumed.elapsed == pytest.approx(saved_wall) and resumed.elapsed >= 0.03
    assert torch.equal(torch.rand(4), expected)
    bar = resumed.progress(5, "train")
    assert list(bar) == [3, 4]
    assert resumed.wall_s > resumed.elapsed  # this session's loop adds to the earlier one
    resumed.log(4, loss=40.0, note=None)
    resumed.close()
    rows = _rows(out / "metrics.csv")
    assert [r["step"] for r in rows] == ["1", "2", "3", "4"]
    assert rows[0]["note"] == "first" and rows[3] == {"step": "4", "loss": "40.0", "note": ""}
    assert any((out / "tensorboard").iterdir())


def test_provenance_and_results(tmp_path, capsys):
    out = tmp_path / "run"
    run = _run(out, argv=["--seed", "1", "--overwrite"], settings=_Settings(seed=1))
    run.save({}, 1)
    resumed = _run(out, _Settings(seed=1, resume=True), argv=["--seed", "1", "--resume"])
    resumed.restore()
    prov = resumed.provenance()
    assert prov["command"] == f"python {SCRIPT} --seed 1"
    assert prov["seed"] == 1 and "torch threads" in prov["machine"]
    assert {"python", "torch", "numpy", "metarl"} <= set(prov["versions"])
    assert prov["settings"]["shots"] == 5 and "train_wall_s" in prov and "date" in prov
    path = resumed.write_results({"score": 0.9, "curve": (1.0, 2.0)})
    resumed.finish()
    printed = capsys.readouterr().out
    assert f"results in {path}" in printed and f"run folder: {out}" in printed
    results = json.loads(path.read_text())
    assert list(results)[:3] == ["score", "curve", "command"]
    saved = json.loads((out / "settings.json").read_text())
    assert saved["command"] == f"python {SCRIPT} --seed 1"


def test_ctrl_c_prints_the_resume_command_and_exits_130(tmp_path, capsys):
    out = tmp_path / "run"
    run = _run(out, argv=["--seed", "0"])
    with pytest.raises(SystemExit) as e, run.interruptible():
        raise KeyboardInterrupt
    assert e.value.code == 130
    assert "no checkpoint was written yet" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e, run.interruptible():
        for it in run.progress(10):
            if it == 2:
                run.save({}, 2)
                raise KeyboardInterrupt
    assert e.value.code == 130
    printed = capsys.readouterr().out
    assert f"{out / 'checkpoint.pt'} at iteration 2" in printed
    assert f"python {SCRIPT} --seed 0 --resume" in printed
    assert "Traceback" not in printed


def test_status_prints_lines_without_a_terminal(tmp_path, capsys):
    run = _run(tmp_path / "run")
    for it in run.progress(4):
        run.status(it + 1, f"loss {it}", every=2)
    printed = capsys.readouterr().out
    assert "iteration 2: loss 1" in printed and "iteration 4: loss 3" in printed
    assert "iteration 1:" not in printed


def test_plot_curves_writes_a_png(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("step,train,val\n1,0.5,\n2,0.4,0.6\n3,0.3,\n4,0.2,0.5\n")
    png = plot_curves(path, "step", {"train": "train", "val": "validation"}, "loss",
                      tmp_path / "curve.png", title="demo")  # fmt: skip
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="no column"):
        plot_curves(path, "step", {"acc": "accuracy"}, "acc", tmp_path / "x.png")


def test_a_setting_added_since_the_record_is_judged_by_unrecorded(tmp_path):
    out = tmp_path / "old"
    save_checkpoint({"iteration": 2, "state": {}, "settings": {"seed": 0, "shots": 5}},
                    out / "checkpoint.pt")  # fmt: skip

    def resume(unrecorded):
        return Run(out, _Settings(resume=True), resume=True, argv=[], script=SCRIPT,
                   ignore=("resume", "overwrite", "threads"), unrecorded=unrecorded)  # fmt: skip

    with pytest.raises(RunError, match=r'hidden: "<absent>" -> \[8, 8\]'):
        resume(None)  # by default an absent setting is a difference
    with pytest.raises(RunError, match="hidden"):
        resume(lambda name, value: name == "hidden" and value == [4])
    resume(lambda name, value: name == "hidden" and value == [8, 8])


def test_start_run_turns_a_refusal_into_a_clean_exit(tmp_path):
    from metarl.utils import start_run

    start_run(tmp_path / "run", _Settings(), argv=[], script=SCRIPT)
    with pytest.raises(SystemExit, match="already holds a run"):
        start_run(tmp_path / "run", _Settings(), argv=[], script=SCRIPT)
