"""A method with a momentum teacher, as a user's plugin file: BYOL per modality, late fusion.

    comm-diag check examples/byol.py:LateFusionBYOL [--set momentum=0.996]

BYOL (Grill et al., NeurIPS 2020, https://arxiv.org/abs/2006.07733): an online network
(encoder, projector, predictor) predicts a target network's projection of another view of
the same image; the target is an exponential moving average of the online encoder and
projector, updated after every optimiser step in ``after_step`` (the training loop's hook
for momentum teachers), never by gradients.

    L = 1/n sum_i [ 2 - 2 cos(q_i(g_i(f_i(v))), sg(g'_i(f'_i(v')))) + (v <-> v') ]
    (f', g') <- m (f', g') + (1 - m) (f, g)

Like late-fusion SimCLR, the modalities never meet in training: expected R and U, no S.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from comm_diag.comm.config import TrainConfig
from comm_diag.comm.encoders import build_encoder
from comm_diag.comm.fusion import MLPHead
from comm_diag.comm.methods import Method, MethodSettings
from comm_diag.comm.methods.base import concatenated, normalize


@dataclass(frozen=True)
class BYOLSettings(MethodSettings):
    momentum: float = 0.99  # the target's EMA momentum m
    proj_hidden: int = 256  # projector and predictor: hidden width
    proj_dim: int = 64  # projector and predictor: output width

    def check(self, cfg: TrainConfig) -> None:
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")


class LateFusionBYOL(Method):
    """BYOL on each modality (online and EMA target networks), pooled features concatenated."""

    Settings = BYOLSettings

    def __init__(self, cfg: TrainConfig, n_modalities: int = 2):
        super().__init__(cfg, n_modalities)
        s = self.settings
        self.encoders = nn.ModuleList(build_encoder(cfg.encoder, cfg.image_size, cfg.width)
                                      for _ in range(n_modalities))
        self.projectors = nn.ModuleList(MLPHead(e.out_channels, s.proj_hidden, s.proj_dim) for e in self.encoders)
        self.predictors = nn.ModuleList(MLPHead(s.proj_dim, s.proj_hidden, s.proj_dim) for _ in self.encoders)
        # the teacher: copies that only the EMA moves (no gradient, not in the optimiser's way)
        self.target_encoders = copy.deepcopy(self.encoders).requires_grad_(False)
        self.target_projectors = copy.deepcopy(self.projectors).requires_grad_(False)

    def encode(self, i: int, x: Tensor) -> Tensor:
        """Modality i's pooled online features: Bx3xHxW -> BxC."""
        return self.encoders[i](normalize(x)).mean(dim=(2, 3))

    def fuse(self, encoded: Sequence[Tensor]) -> dict[str, Tensor]:
        return concatenated(encoded)  # Bx(C*n)

    def _target(self, i: int, x: Tensor) -> Tensor:
        with torch.no_grad():
            return self.target_projectors[i](self.target_encoders[i](normalize(x)).mean(dim=(2, 3)))  # BxP

    def step(self, xs: Sequence[Tensor], augment) -> dict[str, Tensor]:
        terms = {}
        for i, x in enumerate(xs):
            v1, v2 = augment[i](x), augment[i](x)
            p1 = self.predictors[i](self.projectors[i](self.encode(i, v1)))  # BxP
            p2 = self.predictors[i](self.projectors[i](self.encode(i, v2)))
            t1, t2 = self._target(i, v1), self._target(i, v2)
            terms[f"byol_{i + 1}"] = (4 - 2 * F.cosine_similarity(p1, t2, dim=1).mean()
                                      - 2 * F.cosine_similarity(p2, t1, dim=1).mean())
        terms["loss"] = sum(terms.values()) / len(xs)
        return terms

    def after_step(self) -> None:
        m = self.settings.momentum
        for online, target in ((self.encoders, self.target_encoders), (self.projectors, self.target_projectors)):
            for p, q in zip(online.parameters(), target.parameters()):
                q.mul_(m).add_(p.detach(), alpha=1 - m)
            for b, c in zip(online.buffers(), target.buffers()):  # BatchNorm statistics follow the online net
                c.copy_(b)
