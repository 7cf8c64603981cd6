"""The copy task (Graves, Wayne & Danihelka, 2014): a neural Turing machine against an LSTM.

Trains ``--model ntm`` (LSTM or feed-forward controller, one read and one write head,
128 x 20 memory) or ``--model lstm`` (three layers of 256 units) to copy sequences of 1 to
``--max-length`` random 8-bit vectors, then measures the cost (bits per sequence) and the
wrong bits at the lengths in ``--test-lengths``, including lengths never seen in training.

    python experiments/ntm_copy.py --model ntm --seed 0
    python experiments/ntm_copy.py --model lstm --seed 0

Writes into ``--out``: ``settings.json``, ``metrics.csv`` (training cost per batch and
validation cost at length ``--max-length``, against sequences seen), ``checkpoint.pt``
(``--resume``), ``model.pt`` (the weights with the lowest validation cost, for
``load_sequence_model``), ``cost.png``, ``copy-<L>.png``
(targets, outputs and, for the NTM, the heads' weightings on one test sequence per length)
and ``results.json``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import torch

from metarl.supervised.copy_task import answer, bits_per_sequence, copy_batch, wrong_bits
from metarl.supervised.ntm import NeuralTuringMachine
from metarl.supervised.sequence_models import LSTMSequenceModel, save_sequence_model
from metarl.utils import seed_everything, start_run
from metarl.utils.cli import NonEmpty, Positive, parse_settings
from metarl.utils.run import plot_curves

SCRIPT = "experiments/ntm_copy.py"
Count = Annotated[int, Positive]
RESUME_MAY_CHANGE = ("resume", "overwrite", "out", "threads", "sequences", "test_lengths")


@dataclass
class Settings:
    """Train a sequence model on the copy task and test it on longer sequences."""

    model: Literal["ntm", "lstm"] = "ntm"  # the model to train
    controller: Literal["lstm", "feedforward"] = "lstm"  # ntm: the controller
    sequences: Count = 320_000  # training sequences in all
    batch: Count = 32  # sequences per update (one length per batch)
    min_length: Count = 1  # shortest training sequence
    max_length: Count = 20  # longest training sequence
    bits: Count = 8  # bits per vector
    slots: Count = 128  # ntm: memory rows
    width: Count = 20  # ntm: memory row width
    hidden: Count = 100  # ntm: controller units; lstm: units per layer (256 in the paper)
    layers: Count = 3  # lstm: layers
    optimizer: Literal["rmsprop", "adam"] = "adam"  # Adam, or the paper's RMSprop
    lr: Annotated[float, Positive] = 1e-3  # learning rate (the paper: RMSprop at 1e-4)
    momentum: float = 0.9  # rmsprop: momentum
    clip: Annotated[float, Positive] = 1.0  # gradient norm clipped to this
    val_every: Count = 50  # updates between validations and checkpoints
    val_sequences: Count = 64  # validation sequences (length --max-length, fixed)
    test_lengths: Annotated[tuple[int, ...], Positive, NonEmpty] = (10, 20, 30, 50, 120)
    test_sequences: Count = 100  # test sequences per length
    seed: int = 0  # seeds the initialisation and the training sequences
    out: str | None = None  # run folder (None: runs/copy/<model>-seed<seed>)
    resume: bool = False  # continue the run in --out
    overwrite: bool = False  # delete the run in --out and start again
    threads: Count = 1  # torch threads


def make_model(s: Settings) -> NeuralTuringMachine | LSTMSequenceModel:
    if s.model == "ntm":
        return NeuralTuringMachine(s.bits + 1, s.bits, s.slots, s.width, s.hidden,
                                   controller=s.controller)  # fmt: skip
    return LSTMSequenceModel(s.bits + 1, s.bits, s.hidden, s.layers)


@torch.no_grad()
def evaluate(model: torch.nn.Module, length: int, count: int, bits: int, seed: int) -> dict:
    """Mean bits per sequence and wrong bits on ``count`` fixed sequences of ``length``."""
    g = torch.Generator().manual_seed(seed)
    inputs, targets = copy_batch(count, length, bits, g)
    logits = answer(model(inputs), length)
    wrong = wrong_bits(logits, targets)
    return {"bits_per_sequence": bits_per_sequence(logits, targets).mean().item(),
            "wrong_bits_per_sequence": wrong.mean().item(),
            "wrong_bits_percent": 100 * wrong.sum().item() / targets.numel()}  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    s = parse_settings(Settings, argv)
    if s.min_length > s.max_length:
        raise SystemExit(f"--min-length {s.min_length} is above --max-length {s.max_length}")
    if s.model == "ntm" and max(s.test_lengths) > s.slots:
        raise SystemExit(f"test length {max(s.test_lengths)} does not fit {s.slots} memory slots")
    torch.set_num_threads(s.threads)
    seed_everything(s.seed)
    out = Path(s.out or f"runs/copy/{s.model}-seed{s.seed}")
    model = make_model(s)
    if s.optimizer == "rmsprop":
        opt = torch.optim.RMSprop(model.parameters(), lr=s.lr, momentum=s.momentum, alpha=0.95)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=s.lr)
    g = torch.Generator().manual_seed(s.seed)
    best = {"val_bits": math.inf, "update": 0, "state": model.state_dict()}
    updates = math.ceil(s.sequences / s.batch)
    run = start_run(out, s, argv=argv, script=SCRIPT, ignore=RESUME_MAY_CHANGE,
                    outputs=("model.pt", "cost.png",
                             *(f"copy-{n}.png" for n in s.test_lengths)))  # fmt: skip
    with run.interruptible():
        state = run.restore()
        if state is not None:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            g.set_state(state["generator"])
            best = state["best"]
            run.exit_if_past(updates)
        for it in run.progress(updates, f"{s.model} on the copy task"):
            length = int(torch.randint(s.min_length, s.max_length + 1, (), generator=g))
            inputs, targets = copy_batch(s.batch, length, s.bits, g)
            cost = bits_per_sequence(answer(model(inputs), length), targets).mean()
            opt.zero_grad()
            cost.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), s.clip)
            opt.step()
            val = None
            if (it + 1) % s.val_every == 0 or it + 1 == updates:
                val = evaluate(model, s.max_length, s.val_sequences, s.bits, 10_000 + s.seed)
                if val["bits_per_sequence"] < best["val_bits"]:
                    state_now = {k: v.clone() for k, v in model.state_dict().items()}
                    best = {"val_bits": val["bits_per_sequence"], "update": it + 1,
                            "state": state_now}  # fmt: skip
                run.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                          "generator": g.get_state(), "best": best}, it + 1)  # fmt: skip
                text = (
                    f"cost {cost.item():.3g} bits, validation "
                    f"{val['bits_per_sequence']:.3g} bits at length {s.max_length}"
                )
                run.status(it + 1, text, every=1)
            val = val or {}
            run.log(it + 1, sequences=(it + 1) * s.batch, length=length, cost_bits=cost.item(),
                    val_bits=val.get("bits_per_sequence"),
                    val_wrong_bits=val.get("wrong_bits_per_sequence"),
                    wall_s=run.wall_s)  # fmt: skip
    model.load_state_dict(best["state"])
    save_sequence_model(out / "model.pt", model)
    plot_curves(out / "metrics.csv", "sequences",
                {"cost_bits": "training batch", "val_bits": f"validation, length {s.max_length}"},
                "cost per sequence (bits)", out / "cost.png",
                title=f"copy task: {s.model}, lengths {s.min_length}-{s.max_length}")  # fmt: skip
    model.eval()
    tests = {}
    for length in s.test_lengths:
        tests[str(length)] = evaluate(model, length, s.test_sequences, s.bits, 20_000 + s.seed)
        plot_copy(model, length, s.bits, 30_000 + s.seed, out / f"copy-{length}.png")
    result = {"model": s.model, "controller": s.controller if s.model == "ntm" else None,
              "sequences_seen": updates * s.batch, "test_sequences": s.test_sequences,
              "chosen_update": best["update"], "chosen_val_bits": best["val_bits"],
              "test": tests}  # fmt: skip
    run.write_results(result)
    run.finish()
    for length, r in tests.items():
        print(f"length {length}: {r['bits_per_sequence']:.4g} bits per sequence, "
              f"{r['wrong_bits_percent']:.3g}% wrong bits")  # fmt: skip
    return result


@torch.no_grad()
def plot_copy(model: torch.nn.Module, length: int, bits: int, seed: int, png: Path) -> None:
    """Target, output and (for the NTM) the write and read weightings of one sequence."""
    from matplotlib.figure import Figure

    inputs, targets = copy_batch(1, length, bits, torch.Generator().manual_seed(seed))
    trace: dict[str, list[torch.Tensor]] = {}
    outputs = torch.sigmoid(answer(model(inputs, trace), length))[:, 0].T.numpy()
    panels = [("target", targets[:, 0].T.numpy()), ("output", outputs)]
    for name in ("write", "read"):
        if trace.get(name):
            weights = torch.stack(trace[name])[:, 0, 0].T.numpy()  # [slots, steps], head 0
            used = np.flatnonzero(weights.max(1) > 0.05)
            top = min(len(weights), (used.max() + 3) if len(used) else len(weights))
            panels.append((f"{name} weighting (slots 0-{top - 1})", weights[:top]))
    fig = Figure(figsize=(max(6.0, length / 8), 1.6 * len(panels)))
    for ax, (title, image) in zip(fig.subplots(len(panels), 1, squeeze=False)[:, 0], panels):
        ax.imshow(image, aspect="auto", cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_yticks([])
    fig.suptitle(f"copy, length {length}", fontsize=10)
    fig.tight_layout()
    fig.savefig(png, dpi=100)


if __name__ == "__main__":
    main()
