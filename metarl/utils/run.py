"""One experiment run in one output folder: refusals, resume, logging, provenance, results.

A script builds a ``Run`` first, then restores, trains, logs, saves and reports through it::

    run = Run(out, s, resume=s.resume, overwrite=s.overwrite, script="experiments/x.py")
    state = run.restore()  # None on a fresh run
    with run.interruptible():
        bar = run.progress(s.iterations, "training")
        for it in bar:
            ...
            run.log(it + 1, loss=loss, wall_s=run.wall_s)
            run.status(it + 1, f"loss {loss:.3f}")
            run.save({"model": model.state_dict()}, it + 1)
    run.write_results({"score": score})
    run.finish()
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime
import importlib.metadata
import json
import numbers
import os
import platform
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

import metarl
from metarl.utils.checkpoint import (
    CheckpointError,
    load_checkpoint,
    previous_path,
    save_checkpoint,
    write_atomic,
)
from metarl.utils.logging import CSVLogger

# The files and folders a Run writes; they mark a folder as holding a run, and --overwrite
# removes them (with a script's own ``outputs``), and nothing else.
RUN_FILES = (
    "settings.json",
    "checkpoint.pt",
    "checkpoint.prev.pt",
    "metrics.csv",
    "results.json",
    "tensorboard",
)
RUN_FLAGS = ("--resume", "--no-resume", "--overwrite", "--no-overwrite")
_BOOKKEEPING = ("iteration", "elapsed", "torch_rng")


class RunError(ValueError):
    """A run that cannot start as asked; the message names the problem and the fix."""


def machine() -> str:
    """The machine string every result records: architecture, cores, torch threads."""
    return f"{platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def versions() -> dict[str, str]:
    """Versions of Python and of the packages results depend on (those installed)."""
    found = {"python": platform.python_version()}
    for name in ("torch", "numpy", "gymnasium", "mujoco"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[name] = importlib.metadata.version(name)
    found["metarl"] = metarl.__version__
    return found


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars, tensors
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _to_json(value: Any) -> str:
    return json.dumps(value, indent=2, default=_json_default) + "\n"


def _round_trip(value: Any) -> Any:
    return json.loads(json.dumps(value, default=_json_default))


class _Progress(tqdm):
    """A tqdm bar that calls ``on_done`` when its loop ends (exhausted or left early)."""

    on_done: Callable[[], None] | None = None

    def __iter__(self) -> Iterator[Any]:
        try:
            yield from super().__iter__()
        finally:
            if self.on_done is not None:
                self.on_done()


class Run:
    """A run in the folder ``out`` with the settings dataclass ``settings``.

    Refuses (``RunError``) to: start over a folder holding a run without ``resume`` or
    ``overwrite``; resume where there is no checkpoint; resume with settings other than the
    saved ones (apart from ``ignore``); take both ``resume`` and ``overwrite``. A fresh run
    (after removing an old one if ``overwrite``) writes ``<out>/settings.json`` at once.
    ``argv`` (default ``sys.argv[1:]``) and ``script`` make the recorded command; ``outputs``
    names further files or folders the script writes into ``out``, removed by ``overwrite``.
    ``unrecorded(name, value)`` says whether a setting absent from the saved record (one
    added to the script after the run was made) may hold ``value`` on resume; by default
    an absent setting is a difference like any other.
    """

    def __init__(
        self,
        out: str | os.PathLike,
        settings: Any,
        *,
        resume: bool = False,
        overwrite: bool = False,
        argv: Sequence[str] | None = None,
        script: str | None = None,
        ignore: Iterable[str] = ("resume", "overwrite"),
        outputs: Iterable[str] = (),
        unrecorded: Callable[[str, Any], bool] | None = None,
    ) -> None:
        if not dataclasses.is_dataclass(settings) or isinstance(settings, type):
            raise TypeError(f"settings must be a dataclass instance, not {settings!r}")
        self.out = Path(out)
        self.settings = settings
        self.resumed = resume
        self.files = (*RUN_FILES, *outputs)
        self.ckpt_path = self.out / "checkpoint.pt"
        args = list(sys.argv[1:] if argv is None else argv)
        script = sys.argv[0] if script is None else script
        self.command = shlex.join(["python", script, *(a for a in args if a not in RUN_FLAGS)])
        self.start_iteration = 0
        self.elapsed = 0.0  # training wall time of the earlier sessions of a resumed run
        self._clock = 0.0  # training wall time of this session's finished loops
        self._tick: float | None = None  # start of the training loop running now
        self._ckpt: dict[str, Any] | None = None
        self._restored = False
        self._saved_iteration: int | None = None
        self._bar: tqdm | None = None
        self._csv: CSVLogger | None = None
        self._board: Any = None
        self._unrecorded = unrecorded
        if resume and overwrite:
            raise RunError(
                f"--resume continues the run in {self.out} and --overwrite deletes it: "
                "pass only one of them"
            )
        if resume:
            self._check_resume(set(ignore))
        else:
            self._start_fresh(overwrite)

    def _held(self) -> list[Path]:
        return [self.out / n for n in self.files if (self.out / n).exists()]

    def _start_fresh(self, overwrite: bool) -> None:
        held = self._held()
        if held and not overwrite:
            raise RunError(
                f"{self.out} already holds a run ({', '.join(p.name for p in held)}): pass "
                "--resume to continue it, --overwrite to replace it, or choose another --out"
            )
        for p in held:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
        if held:
            print(f"overwrite: removed {', '.join(p.name for p in held)} from {self.out}")
        record = {"command": self.command, "settings": dataclasses.asdict(self.settings)}
        write_atomic(self.out / "settings.json", _to_json(record).encode())

    def _check_resume(self, ignore: set[str]) -> None:
        if not self.ckpt_path.is_file():
            held = self._held()
            prev = previous_path(self.ckpt_path)
            fix = (
                f"copy {prev.name} over {self.ckpt_path.name} to resume from it, or drop "
                if prev.is_file()
                else "drop "
            )
            fix += "--resume and add --overwrite" if held else "--resume"
            fix += " to start a new run"
            raise RunError(f"nothing to resume at {self.out}: no {self.ckpt_path.name}; {fix}")
        try:
            self._ckpt = load_checkpoint(self.ckpt_path)
        except CheckpointError as e:
            raise RunError(str(e)) from e
        settings_path = self.out / "settings.json"
        if settings_path.is_file():
            saved = json.loads(settings_path.read_text())["settings"]
            self._compare(_round_trip(saved), ignore, settings_path)
        else:  # a run from before settings.json: its checkpoint may hold the settings
            saved = self._ckpt.get("settings")
            if isinstance(saved, dict):
                self._compare(_round_trip(saved), ignore, self.ckpt_path)
            record = {"command": self.command, "settings": dataclasses.asdict(self.settings)}
            write_atomic(settings_path, _to_json(record).encode())

    def _compare(self, saved: dict[str, Any], ignore: set[str], source: Path) -> None:
        new = _round_trip(dataclasses.asdict(self.settings))
        if self._unrecorded is not None:
            ignore = ignore | {
                k for k, v in new.items() if k not in saved and self._unrecorded(k, v)
            }
        missing = "<absent>"
        lines = [
            f"  {k}: {json.dumps(saved.get(k, missing))} -> {json.dumps(new.get(k, missing))}"
            for k in [*new, *(k for k in saved if k not in new)]
            if k not in ignore and saved.get(k, missing) != new.get(k, missing)
        ]
        if lines:
            raise RunError(
                f"cannot resume {self.out}: these settings differ from the saved ones in "
                f"{source} (saved -> new):\n" + "\n".join(lines) + "\nresume with the saved "
                "settings, or start a new run in another --out folder (or --overwrite this one)"
            )

    def restore(self) -> dict[str, Any] | None:
        """On resume, apply the checkpoint and return the caller's state; None on a fresh run.

        Sets ``start_iteration`` and ``elapsed`` and restores torch's global RNG.
        """
        if not self.resumed:
            return None
        assert self._ckpt is not None
        ckpt = self._ckpt
        self.start_iteration = int(ckpt["iteration"])
        self.elapsed = float(ckpt.get("elapsed", 0.0))
        self._saved_iteration = self.start_iteration
        if "torch_rng" in ckpt:
            torch.set_rng_state(ckpt["torch_rng"])
        self._restored = True
        print(f"resumed from {self.ckpt_path} at iteration {self.start_iteration}")
        if "state" in ckpt:
            return ckpt["state"]
        return {k: v for k, v in ckpt.items() if k not in _BOOKKEEPING}  # an older script's

    def exit_if_past(self, iterations: int) -> None:
        """After ``restore``: exit (``SystemExit``, the run closed) if the checkpoint is past
        ``iterations``, saying how many to ask for."""
        if self.start_iteration > iterations:
            self.close()
            raise SystemExit(
                f"the checkpoint in {self.out} is at iteration {self.start_iteration}, past "
                f"--iterations {iterations}: resume with --iterations >= {self.start_iteration}"
            )

    def _require_restored(self) -> None:
        if self.resumed and not self._restored:
            raise RunError("this run resumes: call run.restore() before training or logging")

    @property
    def wall_s(self) -> float:
        """Training wall time so far, over all sessions (the time spent in ``progress`` loops)."""
        running = time.perf_counter() - self._tick if self._tick is not None else 0.0
        return self.elapsed + self._clock + running

    def save(self, state: dict[str, Any], iteration: int) -> Path:
        """Checkpoint ``state`` as of ``iteration`` (atomic, checksummed, previous one kept).

        Stores the iteration, the training wall time and torch's global RNG state with it.
        """
        self._require_restored()
        ckpt = {
            "iteration": iteration,
            "elapsed": self.wall_s,
            "torch_rng": torch.get_rng_state(),
            "state": state,
        }
        save_checkpoint(ckpt, self.ckpt_path, keep_previous=True)
        self._saved_iteration = iteration
        return self.ckpt_path

    def log(self, step: int, **scalars: float | int | str | None) -> None:
        """Append a row to ``<out>/metrics.csv`` and the numbers to ``<out>/tensorboard``.

        The first row fixes the CSV's columns; ``None`` or ``""`` mark a missing value. On
        resume, rows past the checkpoint's iteration are dropped first.
        """
        self._require_restored()
        if self._csv is None:
            resume_from = self.start_iteration if self.resumed else None
            self._csv = CSVLogger(self.out / "metrics.csv", resume_from=resume_from)
            from torch.utils.tensorboard import SummaryWriter

            purge = self.start_iteration + 1 if self.resumed else None
            self._board = SummaryWriter(str(self.out / "tensorboard"), purge_step=purge)
        self._csv.log({"step": step, **scalars})
        for key, value in scalars.items():
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                self._board.add_scalar(key, value, step)

    def progress(self, total: int, desc: str = "") -> tqdm:
        """A progress bar over ``range(start_iteration, total)``; training time runs in it.

        It is disabled when stdout is not a terminal (``status`` then prints lines instead).
        """
        self._require_restored()

        def done() -> None:
            if self._tick is not None:
                self._clock += time.perf_counter() - self._tick
                self._tick = None

        bar = _Progress(
            range(self.start_iteration, total),
            initial=self.start_iteration,
            total=total,
            desc=desc,
            file=sys.stdout,
            disable=None,
        )
        bar.on_done = done
        self._bar = bar
        self._tick = time.perf_counter()
        return bar

    def status(self, it: int, text: str, every: int = 10) -> None:
        """Show ``text`` beside the bar; without a terminal, print it every ``every`` iterations."""
        if self._bar is not None and not self._bar.disable:
            self._bar.set_postfix_str(text)
        elif it % every == 0:
            print(f"iteration {it}: {text}", flush=True)

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """On Ctrl-C inside, say where the last checkpoint is and how to resume; exit 130."""
        try:
            yield
        except KeyboardInterrupt:
            if self._bar is not None:
                self._bar.close()
            self.close()
            if self._saved_iteration is None:
                print(
                    f"\ninterrupted: no checkpoint was written yet, so there is nothing to resume; "
                    f"start again with:\n  {self.command} --overwrite",
                    flush=True,
                )
            else:
                print(
                    f"\ninterrupted: last checkpoint {self.ckpt_path} at iteration "
                    f"{self._saved_iteration}; resume with:\n  {self.command} --resume",
                    flush=True,
                )
            raise SystemExit(130) from None

    def provenance(self) -> dict[str, Any]:
        """Command (no --resume/--overwrite), seed, machine, versions, wall time, date, settings."""
        return {
            "command": self.command,
            "seed": getattr(self.settings, "seed", None),
            "machine": machine(),
            "versions": versions(),
            "train_wall_s": round(self.wall_s, 1),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "settings": dataclasses.asdict(self.settings),
        }

    def write_results(self, results: Mapping[str, Any], name: str = "results.json") -> Path:
        """Write ``results`` then the provenance (results' keys win) to ``<out>/<name>``."""
        merged = {**results, **{k: v for k, v in self.provenance().items() if k not in results}}
        path = write_atomic(self.out / name, _to_json(merged).encode())
        print(f"results in {path}")
        return path

    def close(self) -> None:
        """Close the TensorBoard writer (if one was opened)."""
        if self._board is not None:
            self._board.close()
            self._board = None

    def finish(self) -> None:
        """Close the run and print its folder; every script calls it at the end."""
        self.close()
        print(f"run folder: {self.out}")


def start_run(out: str | os.PathLike, settings: Any, **kwargs: Any) -> Run:
    """``Run(out, settings, ...)`` for a script's ``main``: ``resume`` and ``overwrite`` come
    from the settings (False where it has none), and a refusal exits with its message
    (``SystemExit``) instead of a traceback. ``kwargs`` go to ``Run``."""
    try:
        return Run(
            out,
            settings,
            resume=getattr(settings, "resume", False),
            overwrite=getattr(settings, "overwrite", False),
            **kwargs,
        )
    except RunError as err:
        raise SystemExit(str(err)) from err


def plot_curves(
    csv_path: str | os.PathLike,
    x: str,
    ys: Mapping[str, str],
    ylabel: str,
    png_path: str | os.PathLike,
    title: str | None = None,
) -> Path:
    """Plot columns ``ys`` (column -> label) of a CSV against column ``x`` into a PNG.

    Rows with an empty cell in ``x`` or a plotted column are skipped for that column.
    """
    from matplotlib.figure import Figure  # no pyplot: no global backend, nothing left open

    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        columns = reader.fieldnames or []
    unknown = [c for c in (x, *ys) if c not in columns]
    if unknown:
        raise ValueError(f"{csv_path} has no column(s) {unknown}; its columns are {columns}")
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for column, label in ys.items():
        points = [(float(r[x]), float(r[column])) for r in rows if r[x] != "" and r[column] != ""]
        ax.plot([p[0] for p in points], [p[1] for p in points], label=label)
    ax.set(xlabel=x, ylabel=ylabel, title=title or "")
    ax.legend()
    fig.tight_layout()
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=110)
    return png_path


def collect_results(
    folder: str | os.PathLike,
    pattern: str = "*/results.json",
    link_from: str | os.PathLike | None = None,
) -> list[dict[str, Any]]:
    """The results files under ``folder`` matching ``pattern`` (sorted), each as its JSON
    with ``run`` (its run folder's name) and, with ``link_from``, ``link`` (the run folder
    relative to ``link_from``, for links in a report written there)."""
    found = []
    for path in sorted(Path(folder).glob(pattern)):
        result = {**json.loads(path.read_text()), "run": path.parent.name}
        if link_from is not None:
            result["link"] = Path(os.path.relpath(path.parent, link_from)).as_posix()
        found.append(result)
    return found


def readme_notes(folder: str | os.PathLike) -> list[str]:
    """``folder``'s ``README.md`` as report lines (a blank line, then its text), or none."""
    readme = Path(folder) / "README.md"
    return ["", readme.read_text().rstrip()] if readme.is_file() else []
