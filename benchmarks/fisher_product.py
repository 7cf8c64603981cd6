"""Cost of one TRPO Fisher-vector product through MAML's adaptation, two exact ways.

At the data-collecting parameters the Hessian of the mean KL equals the Gauss-Newton matrix
``J^T M J`` (``J``: the adapted policy's outputs on the query steps as a function of the
meta-parameters, ``M``: the Gaussian's metric on those outputs), so a Fisher-vector product
can be taken either as the double backward of the KL that ``metarl.core.TRPO`` uses, or as a
forward-mode product ``J v`` (``torch.func.jvp``, through the inner gradient) followed by one
reused backward ``J^T (M J v)`` (``torch.func.vjp``). This script samples one meta-batch
(default the MAML paper's HalfCheetahVel protocol, Fisher tasks every 4th as
``--fisher-every 4`` trains), then prints both products' mean time over ``--repeats``
calls, measured in the same process, and their relative difference.

    python benchmarks/fisher_product.py [--env metarl/HalfCheetahVel-v1] [--tasks 40]
        [--episodes 20 --horizon 200] [--fisher-every 4] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch import Tensor
from torch.func import jvp, vjp
from torch.utils import _pytree as pytree

import metarl  # noqa: F401
from metarl.core import MAML
from metarl.core.adapt import meta_losses
from metarl.core.params import Params, detach_params, forward_with
from metarl.rl import GaussianMLPPolicy, MultiTaskSampler
from metarl.rl.losses import (
    policy_gradient_data,
    reinforce_loss,
    surrogate_and_kl,
    surrogate_data,
)


def mean_seconds(fn: Callable[[], Tensor], repeats: int) -> tuple[float, Tensor]:
    """Mean wall time of ``fn()`` over ``repeats`` calls, and its last result."""
    start = time.perf_counter()
    for _ in range(repeats):
        result = fn()
    return (time.perf_counter() - start) / repeats, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="metarl/HalfCheetahVel-v1")
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--horizon", type=int, default=200)
    parser.add_argument("--fisher-every", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    sampler = MultiTaskSampler(args.env, args.episodes, args.horizon, seed=0)
    policy = GaussianMLPPolicy.for_env(args.env, hidden=(100, 100))
    learner = MAML(policy, inner_lr=0.1)
    tasks = sampler.sample_tasks(args.tasks)
    inner = reinforce_loss(policy)
    support = policy_gradient_data(sampler.sample(tasks, policy))
    adapted = learner.adapt_batch(inner, support, params=detach_params(learner.params()))
    adapted = detach_params(adapted)
    query = surrogate_data(
        policy, adapted, policy_gradient_data(sampler.sample(tasks, policy, adapted, batched=True))
    )
    support, query = (
        pytree.tree_map(lambda t: t[:: args.fisher_every], d) for d in (support, query)
    )
    params = dict(learner.model.named_parameters())

    def kl(p: Params) -> Tensor:
        losses = meta_losses(p, inner, support, surrogate_and_kl(policy), query, learner.rule)
        return losses[:, 1].mean()

    def outputs(p: Params) -> Tensor:
        def task_outputs(task_params: Params, data: object) -> Tensor:
            return torch.cat(forward_with(policy, task_params, data.observations), -1)

        return meta_losses(p, inner, support, task_outputs, query, learner.rule)

    def flat(tree: Params) -> Tensor:
        return torch.cat([tree[name].reshape(-1) for name in params])

    sizes = [t.numel() for t in params.values()]
    v = torch.randn(sum(sizes))
    tangent = {n: x.view_as(params[n]) for n, x in zip(params, v.split(sizes))}

    start = time.perf_counter()
    kl_grad = flat(
        dict(zip(params, torch.autograd.grad(kl(params), list(params.values()), create_graph=True)))
    )
    exact_setup = time.perf_counter() - start
    exact_time, exact = mean_seconds(
        lambda: flat(
            dict(
                zip(
                    params,
                    torch.autograd.grad(kl_grad @ v, list(params.values()), retain_graph=True),
                )
            )
        ),
        args.repeats,
    )

    frozen = detach_params(params)
    start = time.perf_counter()
    old, backward = vjp(outputs, frozen)
    gn_setup = time.perf_counter() - start
    actions = old.shape[-1] // 2
    mask = query.mask
    weight = (mask / mask.sum((1, 2), keepdim=True) / mask.shape[0]).unsqueeze(-1)
    metric = torch.cat(
        (torch.exp(-2 * old[..., actions:]), torch.full_like(old[..., actions:], 2.0)), -1
    )

    def gauss_newton() -> Tensor:
        _, jv = jvp(outputs, (frozen,), (tangent,))
        return flat(backward(jv * metric * weight)[0])

    gn_time, gn = mean_seconds(gauss_newton, args.repeats)
    print(
        f"{args.env}: {len(mask)} Fisher tasks x {args.episodes} episodes x {args.horizon} "
        f"steps, {torch.get_num_threads()} torch thread(s)\n"
        f"  double backward (TRPO's): setup {exact_setup:.3f} s, {exact_time:.3f} s per product "
        f"(reference)\n"
        f"  Gauss-Newton (jvp + reused vjp): setup {gn_setup:.3f} s, {gn_time:.3f} s per "
        f"product = {gn_time / exact_time:.2f}x; relative difference "
        f"{((gn - exact).norm() / exact.norm()).item():.1e}"
    )


if __name__ == "__main__":
    main()
