"""Train an expert for a task distribution with Stable-Baselines3 (SAC or PPO).

The policy sees the task in its observation and a new task is drawn every episode
(``metarl.imitation.sb3_experts.expert_training_env``), so one policy acts well on every
task: the expert ``make_demos.py --expert-policy <out>/expert.zip`` rolls out.

    python experiments/train_expert.py --env metarl/HalfCheetahVel-v1 --algorithm sac \\
        --timesteps 1000000 --horizon 200 --seed 0 --out experts/halfcheetah_vel-sac-seed0

Writes, inside ``--out`` (default ``runs/experts/<env>-<algorithm>-seed<seed>``):
``settings.json``, ``metrics.csv`` (mean return of the last 100 training episodes),
``checkpoint.pt`` with ``checkpoint.zip`` (the model) and, for SAC, ``replay_buffer.pkl``
every ``--checkpoint-every`` steps (``--resume`` continues from them: the same model, buffer
and step count, not bit for bit the same episodes); at the end ``expert.zip``,
``expert.json`` (what ``make_expert`` checks: distribution, algorithm, command) and
``results.json``: the expert's return on ``--eval-tasks`` held-out tasks (``--eval-seed``),
mean and standard error, rolled out by ``MultiTaskSampler`` as demonstrations are.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import torch

import metarl  # noqa: F401
from metarl.imitation.sb3_experts import SB3Expert, expert_training_env, sb3_algorithm
from metarl.rl import MultiTaskSampler
from metarl.utils import seed_everything, start_run
from metarl.utils.checkpoint import write_atomic
from metarl.utils.cli import Positive, json_object, parse_settings

SCRIPT = "experiments/train_expert.py"
Count = Annotated[int, Positive]
RESUME_MAY_CHANGE = ("resume", "overwrite", "out", "threads", "timesteps")
MODEL, BUFFER = "checkpoint.zip", "replay_buffer.pkl"


@dataclass
class Settings:
    """An expert trained with Stable-Baselines3, the task in its observation."""

    env: str = "metarl/Navigation2D-v0"  # the task distribution
    env_kwargs: str = "{}"  # JSON keyword arguments of --env
    algorithm: Literal["sac", "ppo"] = "sac"  # the Stable-Baselines3 algorithm
    timesteps: Count = 1_000_000  # environment steps of training
    horizon: Count = 200  # steps per episode at most
    eval_tasks: Count = 40  # held-out tasks of the final evaluation
    eval_seed: int = 1234  # draws them and seeds their episodes
    seed: int = 0  # seeds the networks, the tasks and the episodes of training
    checkpoint_every: Count = 50_000  # environment steps between checkpoints
    out: str | None = None  # output folder (None: runs/experts/<env>-<algorithm>-seed<seed>)
    resume: bool = False  # continue the run in --out (same settings; --timesteps may grow)
    overwrite: bool = False  # delete the run already in --out and start afresh
    threads: Count = 1  # torch CPU threads


def save_atomic(save: Callable[[io.BytesIO], None], path: Path) -> str:
    """What ``save`` (an SB3 ``save`` method) writes, written to ``path`` atomically;
    returns its sha256."""
    buffer = io.BytesIO()
    save(buffer)
    data = buffer.getvalue()
    write_atomic(path, data)
    return hashlib.sha256(data).hexdigest()


def verified(path: Path, digest: str) -> Path:
    """``path`` if its sha256 is ``digest``; a clear error otherwise."""
    if not path.is_file():
        raise SystemExit(f"cannot resume: {path} is missing")
    if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
        raise SystemExit(f"cannot resume: {path} differs from the one the checkpoint recorded")
    return path


def main(argv: list[str] | None = None) -> dict:
    s = parse_settings(Settings, argv)
    env_kwargs = json_object(s.env_kwargs, "--env-kwargs")
    name = s.env.split("/")[-1]
    out = Path(s.out or f"runs/experts/{name}-{s.algorithm}-seed{s.seed}")
    run = start_run(
        out,
        s,
        argv=argv,
        script=SCRIPT,
        ignore=RESUME_MAY_CHANGE,
        outputs=(MODEL, BUFFER, "expert.zip", "expert.json"),
    )
    torch.set_num_threads(s.threads)
    seed_everything(s.seed)
    algorithm = sb3_algorithm(s.algorithm)
    env = expert_training_env(s.env, s.horizon, seed=s.seed, env_kwargs=env_kwargs)

    state = run.restore()
    if state is None:
        model = algorithm("MlpPolicy", env, seed=s.seed, device="cpu", verbose=0)
        done = 0
    else:
        model = algorithm.load(verified(out / MODEL, state["model_sha256"]), env=env, device="cpu")
        if "buffer_sha256" in state:
            model.load_replay_buffer(verified(out / BUFFER, state["buffer_sha256"]))
        done = int(state["timesteps"])
        if done > s.timesteps:
            raise SystemExit(f"{out} is at {done} steps, past --timesteps {s.timesteps}")

    with run.interruptible():  # iteration i ends at step min((i + 1) * checkpoint_every, T)
        chunks = math.ceil(s.timesteps / s.checkpoint_every)
        for it in run.progress(chunks, f"{s.algorithm} on {name}"):
            steps = min((it + 1) * s.checkpoint_every, s.timesteps) - done
            if steps <= 0:
                continue
            model.learn(steps, reset_num_timesteps=False)
            done += steps
            returns = [info["r"] for info in model.ep_info_buffer]
            mean_return = float(np.mean(returns)) if returns else float("nan")
            run.log(it + 1, timesteps=done, mean_return=mean_return, wall_s=run.wall_s)
            run.status(it + 1, f"{done} steps, return {mean_return:.2f}", every=1)
            state = {"timesteps": done, "model_sha256": save_atomic(model.save, out / MODEL)}
            if hasattr(model, "save_replay_buffer"):
                state["buffer_sha256"] = save_atomic(model.save_replay_buffer, out / BUFFER)
            run.save(state, done // s.checkpoint_every)  # a partial chunk is finished later

    save_atomic(model.save, out / "expert.zip")
    record = {"env": s.env, "env_kwargs": env_kwargs, "algorithm": s.algorithm}
    write_atomic(
        out / "expert.json", json.dumps({**record, "command": run.command}, indent=2).encode()
    )
    sampler = MultiTaskSampler(s.env, 1, s.horizon, seed=s.eval_seed, env_kwargs=env_kwargs,
                               task_in_observation=True)  # fmt: skip
    tasks = sampler.sample_tasks(s.eval_tasks)
    returns = sampler.sample(tasks, SB3Expert(model), deterministic=True).mean_return()
    stderr = returns.std().item() / math.sqrt(len(returns)) if len(returns) > 1 else 0.0
    results = {**record, "n_tasks": len(tasks), "timesteps": done,
               "expert_return": {"mean": returns.mean().item(), "stderr": stderr}}  # fmt: skip
    path = run.write_results(results)
    print(
        f"{s.algorithm} expert for {s.env} after {done} steps: {returns.mean().item():.2f} "
        f"+/- {stderr:.2f} on {len(tasks)} held-out tasks"
    )
    run.finish()
    return json.loads(path.read_text())


if __name__ == "__main__":
    main()
