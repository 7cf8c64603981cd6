"""The Ray sampler: the local sampler's episodes, a retry when a worker dies, no endless wait."""

from __future__ import annotations

import os
import signal
import time

import pytest
import torch

from metarl.rl import GaussianMLPPolicy, MultiTaskSampler

ray = pytest.importorskip("ray")
from metarl.rl.ray_sampler import RaySampler  # noqa: E402

NAV = "metarl/Navigation2D-v0"
CHEETAH = "metarl/HalfCheetahVel-v1"


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    os.environ.setdefault("RAY_worker_niceness", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _pair(env_id: str, **kwargs) -> tuple[MultiTaskSampler, RaySampler]:
    local = MultiTaskSampler(env_id, 3, 20, seed=4, policy_threads=1, **kwargs)
    remote = RaySampler(env_id, 3, 20, seed=4, num_workers=2, policy_threads=1, timeout_s=120,
                        **kwargs)  # fmt: skip
    return local, remote


def test_the_ray_sampler_gives_the_local_samplers_episodes():
    # MuJoCo copies on one physics thread per worker (Navigation2D: the fault tests below)
    local, remote = _pair(CHEETAH, threads=1)
    policy = GaussianMLPPolicy.for_env(CHEETAH, hidden=(8,))
    for _ in range(2):  # a second batch: the streams stay in step
        tasks = local.sample_tasks(5)
        assert tasks == remote.sample_tasks(5)
        a, b = local.sample(tasks, policy), remote.sample(tasks, policy)
        for x, y in zip(a, b):
            assert torch.equal(x, y)
    assert len(set(remote.worker_pids())) == 2
    remote.close()


class KillingPolicy(GaussianMLPPolicy):
    """Kills one sampler worker at its 5th forward pass (once)."""

    sampler: RaySampler | None = None
    calls = 0

    def forward(self, obs):
        type(self).calls += 1
        if type(self).calls == 5 and self.sampler is not None:
            os.kill(self.sampler.worker_pids()[1], signal.SIGKILL)
        return super().forward(obs)


def test_a_worker_killed_mid_batch_is_replaced_and_the_batch_collected_again():
    local, remote = _pair(NAV)
    policy = KillingPolicy.for_env(NAV, hidden=(8,))
    tasks = local.sample_tasks(4)
    remote.sample_tasks(4)
    expected = local.sample(tasks, policy)
    KillingPolicy.calls, KillingPolicy.sampler = 0, remote
    start = time.monotonic()
    episodes = remote.sample(tasks, policy)
    assert remote.retries == 1 and time.monotonic() - start < 120
    for x, y in zip(expected, episodes):
        assert torch.equal(x, y)  # the retried batch is the batch an undisturbed run gives
    remote.close()


def test_without_retries_a_dead_worker_is_a_clear_error_not_a_hang():
    remote = RaySampler(NAV, 2, 20, seed=0, num_workers=2, max_retries=0, timeout_s=120)
    policy = KillingPolicy.for_env(NAV, hidden=(8,))
    KillingPolicy.calls, KillingPolicy.sampler = 0, remote
    start = time.monotonic()
    with pytest.raises(ray.exceptions.RayActorError):
        remote.sample(remote.sample_tasks(3), policy)
    assert time.monotonic() - start < 120
    remote.close()


def test_a_worker_that_stops_answering_times_out_naming_the_wait():
    remote = RaySampler(NAV, 2, 20, seed=0, num_workers=2, timeout_s=3)
    policy = GaussianMLPPolicy.for_env(NAV, hidden=(8,))
    remote.timeout_s = 120  # a generous first start (workers import torch)
    pid = remote.worker_pids()[0]
    remote.timeout_s = 3
    os.kill(pid, signal.SIGSTOP)
    try:
        start = time.monotonic()
        with pytest.raises(TimeoutError, match="did not answer within 3"):
            remote.sample(remote.sample_tasks(2), policy)
        assert time.monotonic() - start < 30
    finally:
        os.kill(pid, signal.SIGCONT)
        remote.close()
