"""Networks every subpackage uses (MLP, Conv-4, a vmap-safe batch norm), safe under ``vmap``.

Each network records its constructor arguments (``metarl.config.Configurable``), so a saved
learner rebuilds it without being told its shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch._C._functorch import TransformType
from torch._functorch.pyfunctorch import retrieve_all_functorch_interpreters

from metarl.config import Configurable

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}
INITS = ("torch", "xavier")


class MLP(Configurable, nn.Sequential):
    """A fully connected network: ``in -> hidden... -> out`` with an activation between layers.

    ``MLP(1, 1, hidden=(40, 40))`` is the sinusoid regressor of the MAML paper;
    ``activation`` is one of ``ACTIVATIONS`` (``"relu"``, ``"tanh"``). ``init`` is
    ``"torch"`` (``nn.Linear``'s own: weights and biases uniform in +-1/sqrt(fan_in)) or
    ``"xavier"`` (Glorot-uniform weights, zero biases: the MAML paper's rllab policies). It
    takes inputs of shape ``[..., in_features]``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: Sequence[int] = (40, 40),
        activation: str = "relu",
        init: str = "torch",
    ) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {list(ACTIVATIONS)}, got {activation!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {list(INITS)}, got {init!r}")
        if in_features < 1 or out_features < 1 or any(h < 1 for h in hidden):
            raise ValueError(
                f"layer sizes must be positive, got in {in_features}, hidden {tuple(hidden)}, "
                f"out {out_features}"
            )
        sizes = [in_features, *hidden, out_features]
        layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(n_in, n_out))
            if i < len(sizes) - 2:
                layers.append(ACTIVATIONS[activation]())
        super().__init__(*layers)
        if init == "xavier":
            for layer in layers:
                if isinstance(layer, nn.Linear):
                    nn.init.xavier_uniform_(layer.weight)
                    nn.init.zeros_(layer.bias)
        self.input_shape: tuple[int, ...] = (in_features,)
        self.output_size = out_features

    def forward_per_task(self, params: Mapping[str, Tensor], x: Tensor, prefix: str = "") -> Tensor:
        """The network under per-task weights: ``params[prefix + name]`` has a leading task
        dimension ``T`` and ``x`` is ``[T, N, in_features]``; returns ``[T, N, out]``.

        The same values as ``vmap``-ing ``forward_with`` over the tasks (one ``baddbmm`` per
        layer, several times faster for small layers).
        """
        for name, layer in self.named_children():
            if isinstance(layer, nn.Linear):
                weight, bias = params[f"{prefix}{name}.weight"], params[f"{prefix}{name}.bias"]
                x = torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))
            else:
                x = layer(x)
        return x


class TaskBatchNorm2d(nn.Module):
    """Batch normalisation from the statistics of the batch at hand, with a learned affine.

    This is how MAML's Conv-4 normalises (batch statistics at training and test time, no
    running averages), written with plain tensor operations: under ``vmap`` each task is
    normalised by its own statistics, and second-order meta-gradients are exact, which
    ``nn.BatchNorm2d`` does not give (see DESIGN.md). At test time the statistics come from
    the query batch being classified (transductive, as in MAML and Reptile's papers).

    Outside ``vmap`` it calls ``F.batch_norm`` (exact second-order gradients there, and
    faster); inside ``vmap``, where that kernel's meta-gradients are wrong, the plain tensor
    operations.
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        if not _inside_vmap():
            return F.batch_norm(x, None, None, self.weight, self.bias, training=True, eps=self.eps)
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
        x = (x - mean) * torch.rsqrt(var + self.eps)
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


def _inside_vmap() -> bool:
    """Whether the calling code runs under a ``torch.func.vmap`` transform (at any depth)."""
    return any(i.key() == TransformType.Vmap for i in retrieve_all_functorch_interpreters())


NORMS = ("batch", "group", "none")
DOWNSAMPLING = ("maxpool", "stride")


def conv_block(
    c_in: int, c_out: int, norm: str, stride: int = 1, pool: bool = True
) -> list[nn.Module]:
    """3x3 convolution, ``norm`` (``"batch"``: ``TaskBatchNorm2d``, ``"group"``: 8 groups,
    ``"none"``), ReLU and, with ``pool``, 2x2 max-pooling."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)]
    if norm == "batch":
        layers.append(TaskBatchNorm2d(c_out))
    elif norm == "group":
        layers.append(nn.GroupNorm(min(8, c_out), c_out))
    elif norm != "none":
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    return layers + ([nn.ReLU(), nn.MaxPool2d(2)] if pool else [nn.ReLU()])


class Conv4Maps(Configurable, nn.Module):
    """Four conv blocks (``conv_block``) of which the first ``pooled`` max-pool: feature maps
    ``[B, channels, s, s]`` instead of a vector, the embedding of relation networks (Sung et
    al., 2018: 64 x 7 x 7 for 28x28 images with two pooled blocks). ``map_size`` is ``s``."""

    def __init__(
        self,
        in_channels: int = 1,
        channels: int = 64,
        image_size: int = 28,
        pooled: int = 2,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        if not 0 <= pooled <= 4:
            raise ValueError(f"pooled must be in 0..4, got {pooled}")
        blocks: list[nn.Module] = []
        for i in range(4):
            blocks += conv_block(
                in_channels if i == 0 else channels, channels, norm, pool=i < pooled
            )
        self.features = nn.Sequential(*blocks)
        self.map_size = image_size // 2**pooled
        if self.map_size < 1:
            raise ValueError(f"image_size {image_size} is too small for {pooled} poolings")
        self.input_shape: tuple[int, ...] = (in_channels, image_size, image_size)
        self.channels = channels

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)


class Conv4(Configurable, nn.Module):
    """The standard few-shot Conv-4: four blocks of 3x3 conv, norm, ReLU, 2x2 max-pool, then linear.

    ``Conv4(ways=5)`` takes ``[B, 1, 28, 28]`` Omniglot images and returns ``[B, 5]`` logits
    (28 -> 14 -> 7 -> 3 -> 1 spatially). ``norm="batch"`` is ``TaskBatchNorm2d`` (MAML's
    choice), ``"group"`` is ``nn.GroupNorm`` with 8 groups (no batch statistics, so not
    transductive), ``"none"`` leaves the blocks unnormalised. All three are vmap-safe.
    ``downsample="stride"`` halves the resolution with stride-2 convolutions instead of
    max-pooling (28 -> 14 -> 7 -> 4 -> 2, then a spatial mean): the MAML code's Omniglot
    network, with fewer multiply-adds.
    ``context_dim > 0`` adds a ``context`` buffer (zeros) that modulates the features of block
    ``film_block`` (1-4) by FiLM, ``h * (1 + gamma) + beta`` with ``(gamma, beta)`` a linear
    function of the context: the model CAML adapts.
    """

    def __init__(
        self,
        ways: int,
        in_channels: int = 1,
        channels: int = 64,
        image_size: int = 28,
        norm: str = "batch",
        context_dim: int = 0,
        downsample: str = "maxpool",
        film_block: int = 3,
    ) -> None:
        super().__init__()
        if not 1 <= film_block <= 4:
            raise ValueError(f"film_block must be one of the four blocks 1-4, got {film_block}")
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        if downsample not in DOWNSAMPLING:
            raise ValueError(f"downsample must be one of {DOWNSAMPLING}, got {downsample!r}")
        strided = downsample == "stride"
        blocks: list[nn.Module] = []
        size, c_in = image_size, in_channels
        for _ in range(4):
            blocks += conv_block(c_in, channels, norm, stride=2 if strided else 1, pool=not strided)
            size, c_in = (size + 1) // 2 if strided else size // 2, channels
        if size < 1:
            raise ValueError(f"image_size {image_size} is too small for four 2x2 poolings")
        self.features = nn.Sequential(*blocks)
        self.spatial_mean = strided
        self.head = nn.Linear(channels if strided else channels * size * size, ways)
        self.film: nn.Linear | None = None
        if context_dim > 0:
            self.register_buffer("context", torch.zeros(context_dim))
            self.film = nn.Linear(context_dim, 2 * channels)
        self.film_block = film_block
        self.input_shape: tuple[int, ...] = (in_channels, image_size, image_size)
        self.output_size = ways

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.embed(x))

    def embed(self, x: Tensor) -> Tensor:
        """The features the linear head classifies, ``[B, D]`` (D = 64 for 28x28 images)."""
        if self.film is None:
            h = self.features(x)
        else:
            split = len(self.features) // 4 * self.film_block
            h = self.features[:split](x)
            gamma, beta = self.film(self.context).view(2, -1, 1, 1)
            h = self.features[split:](h * (1 + gamma) + beta)
        return h.mean(dim=(2, 3)) if self.spatial_mean else h.flatten(1)
