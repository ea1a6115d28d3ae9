"""The method interface: what CoMM, Cross, Cross+Self and a user's own method implement."""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from comm_diag.comm.augment import Augment
from comm_diag.comm.config import TrainConfig, preset_method_settings
from comm_diag.comm.methods.settings import MethodSettings

AugmentFn = Callable[[Tensor], Tensor]


def as_batch(images: "np.ndarray | Tensor", device: torch.device | str = "cpu") -> Tensor:
    """uint8 images NxHxWx3 (numpy or tensor) -> a float batch Nx3xHxW in [0, 1]: a method's input."""
    x = torch.as_tensor(images).to(device)
    return x.permute(0, 3, 1, 2).float() / 255.0  # Nx3xHxW


def normalize(x: Tensor) -> Tensor:
    """Images in [0, 1] to roughly zero mean, unit variance (Trifeature pixels are
    mostly the 0.5 grey background)."""
    return (x - 0.5) / 0.25


class Method(nn.Module):
    """A multimodal self-supervised method, as comm-diag trains and probes it.

    Implement, for n modalities (n = 2 on Trifeature):

    - ``__init__(self, cfg: TrainConfig, n_modalities: int = 2)``: call
      ``super().__init__(cfg, n_modalities)``, then build every module from the run's
      settings (``cfg.encoder``, ``cfg.width``, ``cfg.image_size``, ``cfg.d``;
      ``comm_diag.comm.encoders.build_encoder`` gives a backbone) and the method's own
      (``self.settings``, an instance of the class's ``Settings``).
    - ``step(self, xs, augment) -> dict[str, Tensor]``: one training forward.
      ``xs`` is a list of n batches Bx3xHxW in [0, 1] (modality i of the same B
      samples); ``augment[i](x)`` returns a fresh random augmentation of a batch
      of modality i (call it as often as you need views). Return ``"loss"``, a
      finite scalar to minimise, plus any named scalar terms to log.
    - ``features(self, xs) -> dict[str, Tensor]``: the frozen representation of a
      batch of samples, called under ``torch.no_grad()`` in eval mode:
      ``"fused"`` (BxD, required) and, if the method has them, ``"modality1"``,
      ``"modality2"``... (the representation of each modality alone).

    Optionally declare ``Settings`` (a ``MethodSettings`` dataclass: the method's own
    hyperparameters, their defaults and their checks; a setting it does not declare is
    refused), set ``default_augment`` (an ``Augment``), used for modalities whose policy
    the config leaves at None, and split
    ``features`` into ``encode(i, x)`` (per image) and ``fuse(encoded)`` (per
    sample) so that probing encodes every image once.
    """

    Settings: type[MethodSettings] = MethodSettings
    default_augment: Augment = Augment("all")
    # fraction of the training done before this step, in [0, 1): set by the training loop
    # (InfMasking raises a weight with it); 0 outside training
    progress: float = 0.0
    # the step's random generator, derived from (seed, epoch, step) and the one the augment
    # functions draw from: draw any randomness of a view of your own (an extra crop) from it,
    # so that a stopped and resumed run ends with the same weights (set by the loop each step)
    generator: Optional[torch.Generator] = None
    # on a GPU, record the step once as a CUDA graph and replay it (comm.cuda_graph): declare
    # it only if step() reads no Python state that changes between steps (``progress``, a
    # counter), draws every random number from the augment functions or ``generator``, and
    # never reads a value back (``.item()``, ``if tensor``)
    graph_safe: bool = False
    # some parameters take no part in the loss (data-parallel training then looks for them)
    unused_parameters: bool = False

    def __init__(self, cfg: TrainConfig, n_modalities: int = 2):
        super().__init__()
        self.cfg = cfg
        self.n_modalities = n_modalities
        # lenient: a config that ``comm.methods.resolve`` has not seen may still carry a
        # preset's settings of other methods
        self.settings = self.Settings.resolve(cfg.method_settings, preset_method_settings(cfg.preset), strict=False)
        self.settings.check(cfg)

    def step(self, xs: Sequence[Tensor], augment: Sequence[AugmentFn]) -> dict[str, Tensor]:
        raise NotImplementedError

    def after_step(self) -> None:
        """Called by the training loop after each optimiser step, outside autograd: where a
        momentum teacher (BYOL, MoCo, DINO) takes its EMA step. ``self.progress`` is the
        fraction of the training done. The default does nothing."""

    def forward(self, xs: Sequence[Tensor], augment: Sequence[AugmentFn]) -> dict[str, Tensor]:
        """``step``: what DistributedDataParallel calls to synchronise gradients."""
        return self.step(xs, augment)

    # the step's tail compiled on the fast path on a GPU (``comm.step.TrainStep`` sets it from
    # ``loss_tail`` where a method has one); None: the eager tail
    compiled_tail: Optional[Callable] = None

    def encode(self, i: int, x: Tensor) -> Any:
        raise NotImplementedError

    def encode_views(self, i: int, views: Sequence[Tensor]) -> list:
        """``[self.encode(i, v) for v in views]``, computed as one batch where that is exact: the
        modality's encoding keeps no batch statistics (no BatchNorm), so a sample's features do
        not depend on the batch it is in, and one pass over 2B images replaces two over B
        (larger kernels, half the launches). The views are drawn before, in the same order."""
        if len(views) > 1 and not _batch_statistics(self, i):
            sizes = [len(v) for v in views]
            return list(self.encode(i, torch.cat(list(views))).split(sizes))  # (sum B)x... -> per view
        return [self.encode(i, v) for v in views]

    def fuse(self, encoded: Sequence[Any]) -> dict[str, Tensor]:
        raise NotImplementedError

    def features(self, xs: Sequence[Tensor]) -> dict[str, Tensor]:
        return self.fuse([self.encode(i, x) for i, x in enumerate(xs)])

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


def _batch_statistics(model: nn.Module, i: int) -> bool:
    """Whether modality ``i``'s encoding (its encoder, and its converter where the model has
    them) normalises by batch statistics."""
    parts = [getattr(model, name)[i] for name in ("encoders", "converters")
             if isinstance(getattr(model, name, None), nn.ModuleList)]
    return not parts or any(isinstance(m, nn.modules.batchnorm._BatchNorm) for p in parts for m in p.modules())


def concatenated(parts: Sequence[Tensor]) -> dict[str, Tensor]:
    """Late fusion: ``fused`` = the n parts side by side (Bx(D_1 + ... + D_n)) and
    ``modality{i}`` = part i (BxD_i): the representation of Cross, Cross+Self and SimCLR."""
    return {"fused": torch.cat(list(parts), dim=1), **{f"modality{i + 1}": p for i, p in enumerate(parts)}}
