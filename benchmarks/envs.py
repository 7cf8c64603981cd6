"""Cost of our MuJoCo task environments' ``step`` against raw MuJoCo stepping.

For HalfCheetahVel and AntVel: steps per second of the environment's ``step`` (unwrapped, and
as returned by ``gymnasium.make`` with its wrappers) against a bare loop of
``mujoco.mj_step(model, data, nstep=frame_skip)`` on the same model with the same frame skip
and the same random actions, in the same process. Reported as a ratio (goal >= 0.7); the
bare rates are shown only to read the ratio by. Interleaved repeats; medians.

    python benchmarks/envs.py [--steps 5000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import mujoco
import numpy as np

import metarl  # noqa: F401  (registers the ids)


def raw_rate(model, data, actions: np.ndarray, frame_skip: int, healthy_z) -> float:
    mujoco.mj_resetData(model, data)
    start = time.perf_counter()
    for action in actions:
        data.ctrl[:] = action
        mujoco.mj_step(model, data, nstep=frame_skip)
        if healthy_z is not None and not healthy_z[0] <= data.qpos[2] <= healthy_z[1]:
            mujoco.mj_resetData(model, data)
    return len(actions) / (time.perf_counter() - start)


def env_rate(env: gym.Env, actions: np.ndarray) -> float:
    env.reset(seed=0)
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return len(actions) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"median of {args.repeats} interleaved repeats of {args.steps} steps, one process")
    print(
        f"{'environment':22s} {'raw mj_step/s':>14s} {'env.step/s':>11s} {'ratio':>6s}"
        f" {'made env/s':>11s} {'ratio':>6s}"
    )
    for env_id in ("metarl/HalfCheetahVel-v0", "metarl/AntVel-v0"):
        made = gym.make(env_id, disable_env_checker=True)
        env = made.unwrapped
        model, data = mujoco.MjModel.from_xml_path(env.model_path), None
        data = mujoco.MjData(model)
        rng = np.random.default_rng(0)
        actions = rng.uniform(-1, 1, (args.steps, model.nu)).astype(np.float32)
        healthy_z = getattr(env, "healthy_z", None)
        rates: dict[str, list[float]] = {"raw": [], "env": [], "made": []}
        for _ in range(args.repeats):
            rates["raw"].append(raw_rate(model, data, actions, env.frame_skip, healthy_z))
            rates["env"].append(env_rate(env, actions))
            rates["made"].append(env_rate(made, actions))
        raw, ours, wrapped = (statistics.median(rates[k]) for k in ("raw", "env", "made"))
        print(
            f"{env_id:22s} {raw:14.0f} {ours:11.0f} {ours / raw:6.2f} {wrapped:11.0f}"
            f" {wrapped / raw:6.2f}"
        )


if __name__ == "__main__":
    main()
