"""One-shot learning with a memory-augmented neural network (Santoro et al., ICML 2016).

Trains ``--model mann`` (LSTM controller, least-recently-used memory access) or ``--model
lstm`` on Omniglot episodes where each drawing's label arrives one step late (5 characters,
10 drawings each, labels shuffled every episode; ``metarl.supervised.label_sequences``),
then reports the accuracy on the 1st, 2nd, 3rd, 4th, 5th and 10th drawing of a character
in episodes of held-out characters. Images are 20 x 20; meta-training characters get random
90-degree rotations (as new classes) and come from the 1,200 training characters of the
full-data protocol (``--protocol vinyals``); the test uses its 423 test characters.

    python experiments/mann_omniglot.py --model mann --seed 0
    python experiments/mann_omniglot.py --model lstm --seed 0

Writes into ``--out``: ``settings.json``, ``metrics.csv`` (training loss, validation
instance accuracies against episodes seen), ``checkpoint.pt`` (``--resume``), ``model.pt``
(``load_sequence_model``), ``accuracy.png`` and ``results.json``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import torch
import torch.nn.functional as F

from metarl.supervised.data.omniglot import load_omniglot
from metarl.supervised.label_sequences import LabelSequenceSampler, instance_accuracy
from metarl.supervised.mann import MemoryAugmentedNetwork
from metarl.supervised.sequence_models import LSTMSequenceModel, save_sequence_model
from metarl.utils import seed_everything, start_run
from metarl.utils.cli import Positive, parse_settings
from metarl.utils.run import plot_curves

SCRIPT = "experiments/mann_omniglot.py"
Count = Annotated[int, Positive]
RESUME_MAY_CHANGE = ("resume", "overwrite", "out", "threads", "episodes", "data",
                     "test_episodes")  # fmt: skip
INSTANCES = (1, 2, 3, 4, 5, 10)  # the paper's columns


@dataclass
class Settings:
    """Train a sequence model on delayed-label Omniglot episodes; test on new characters."""

    model: Literal["mann", "lstm"] = "mann"  # the model to train
    episodes: Count = 100_000  # training episodes in all (the paper: 100,000)
    batch: Count = 16  # episodes per update
    ways: Count = 5  # characters per episode
    instances: Count = 10  # drawings of each character per episode
    image_size: Count = 20  # image side in pixels
    slots: Count = 128  # mann: memory rows
    width: Count = 40  # mann: memory row width
    heads: Count = 4  # mann: read heads
    hidden: Count = 200  # controller / LSTM units
    lr: Annotated[float, Positive] = 1e-3  # Adam's learning rate
    clip: Annotated[float, Positive] = 10.0  # gradient norm clipped to this
    val_every: Count = 200  # updates between validations and checkpoints
    val_episodes: Count = 200  # validation episodes (validation characters, fixed)
    test_episodes: Count = 1000  # test episodes (test characters)
    seed: int = 0  # seeds the initialisation and the training episodes
    data: str | None = None  # Omniglot root (default: $METARL_DATA)
    out: str | None = None  # run folder (None: runs/mann/<model>-seed<seed>)
    resume: bool = False  # continue the run in --out
    overwrite: bool = False  # delete the run in --out and start again
    threads: Count = 1  # torch threads


def sampler(s: Settings, split: str) -> LabelSequenceSampler:
    data = load_omniglot(split, root=s.data, size=s.image_size, protocol="vinyals")
    return LabelSequenceSampler(data.images, data.labels, s.ways, s.instances,
                                rotate=split == "train")  # fmt: skip


@torch.no_grad()
def evaluate(model: torch.nn.Module, episodes: LabelSequenceSampler, count: int, seed: int,
             batch: int = 50) -> dict[str, float]:  # fmt: skip
    """Accuracy on the k-th drawing (k in the paper's columns) over ``count`` episodes."""
    g = torch.Generator().manual_seed(seed)
    totals = {k: [0, 0] for k in INSTANCES}
    for start in range(0, count, batch):
        x, y, instance = episodes.sample(min(batch, count - start), g)
        for k, (correct, seen) in instance_accuracy(model(x), y, instance, INSTANCES).items():
            totals[k][0] += correct
            totals[k][1] += seen
    return {f"instance_{k}": c / n if n else math.nan for k, (c, n) in totals.items()}


def main(argv: list[str] | None = None) -> dict:
    s = parse_settings(Settings, argv)
    if s.instances < max(INSTANCES):
        print(f"note: {s.instances} drawings per character: instances above it are not scored")
    torch.set_num_threads(s.threads)
    seed_everything(s.seed)
    out = Path(s.out or f"runs/mann/{s.model}-seed{s.seed}")
    train, val = sampler(s, "train"), sampler(s, "val")
    if s.model == "mann":
        model = MemoryAugmentedNetwork(train.input_size, s.ways, s.slots, s.width, s.hidden,
                                       s.heads)  # fmt: skip
    else:
        model = LSTMSequenceModel(train.input_size, s.ways, s.hidden, layers=1)
    opt = torch.optim.Adam(model.parameters(), lr=s.lr)
    g = torch.Generator().manual_seed(s.seed)
    updates = math.ceil(s.episodes / s.batch)
    run = start_run(out, s, argv=argv, script=SCRIPT, ignore=RESUME_MAY_CHANGE,
                    outputs=("model.pt", "accuracy.png"))  # fmt: skip
    with run.interruptible():
        state = run.restore()
        if state is not None:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            g.set_state(state["generator"])
            run.exit_if_past(updates)
        for it in run.progress(updates, f"{s.model} on delayed-label Omniglot"):
            x, y, _ = train.sample(s.batch, g)
            loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), s.clip)
            opt.step()
            acc = {}
            if (it + 1) % s.val_every == 0 or it + 1 == updates:
                acc = evaluate(model, val, s.val_episodes, 10_000 + s.seed)
                run.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                          "generator": g.get_state()}, it + 1)  # fmt: skip
                shown = ", ".join(f"{k}: {acc[f'instance_{k}']:.1%}" for k in (1, 2, 10))
                run.status(it + 1, f"loss {loss.item():.3f}, validation {shown}", every=1)
            run.log(it + 1, episodes=(it + 1) * s.batch, loss=loss.item(), wall_s=run.wall_s,
                    **{f"val_{k}": acc.get(f"instance_{k}") for k in INSTANCES})  # fmt: skip
    save_sequence_model(out / "model.pt", model)
    plot_curves(out / "metrics.csv", "episodes",
                {f"val_{k}": f"instance {k}" for k in (1, 2, 3, 5, 10)},
                "validation accuracy", out / "accuracy.png",
                title=f"{s.model}: accuracy on the k-th drawing of a character")  # fmt: skip
    model.eval()
    test = evaluate(model, sampler(s, "test"), s.test_episodes, 20_000 + s.seed)
    result = {"model": s.model, "episodes_seen": updates * s.batch,
              "test_episodes": s.test_episodes, "test": test}  # fmt: skip
    run.write_results(result)
    run.finish()
    print("test accuracy by instance: "
          + ", ".join(f"{k}: {100 * v:.1f}%" for k, v in test.items()))  # fmt: skip
    return result


if __name__ == "__main__":
    main()
