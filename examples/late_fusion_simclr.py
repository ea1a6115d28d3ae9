"""A complete user method for ``comm-diag check``: late fusion of per-modality SimCLR.

    comm-diag check examples/late_fusion_simclr.py:LateFusionSimCLR

Each modality has its own encoder trained with SimCLR on two augmentations of its
own images; the modalities never see each other during training, and the
representation of a pair is the concatenation of the two embeddings (late fusion).
What to expect: redundancy (each image shows the shared shape) and uniqueness
(each encoder keeps its own texture) are captured; synergy, which needs the two
modalities together, is not.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from comm_diag.comm.augment import Augment
from comm_diag.comm.config import TrainConfig
from comm_diag.comm.encoders import build_encoder
from comm_diag.comm.fusion import MLPHead
from comm_diag.comm.losses import info_nce
from comm_diag.comm.methods import Method, normalize


class LateFusionSimCLR(Method):
    """SimCLR per modality, concatenated embeddings as the pair's representation."""

    default_augment = Augment("all")  # SimCLR's set; a config's --aug1/--aug2 override it

    def __init__(self, cfg: TrainConfig, n_modalities: int = 2):
        super().__init__(cfg, n_modalities)
        self.encoders = nn.ModuleList(build_encoder(cfg.encoder, cfg.image_size, cfg.width)
                                      for _ in range(n_modalities))
        self.heads = nn.ModuleList(MLPHead(e.out_channels, cfg.proj_hidden, cfg.proj_dim) for e in self.encoders)

    def encode(self, i: int, x: Tensor) -> Tensor:
        """Modality i's pooled features: Bx3xHxW -> BxC."""
        return self.encoders[i](normalize(x)).mean(dim=(2, 3))

    def fuse(self, encoded: Sequence[Tensor]) -> dict[str, Tensor]:
        return {"fused": torch.cat(list(encoded), dim=1),  # B x (C * n)
                **{f"modality{i + 1}": h for i, h in enumerate(encoded)}}

    def step(self, xs: Sequence[Tensor], augment) -> dict[str, Tensor]:
        terms = {}
        for i, x in enumerate(xs):
            a, b = self.encode(i, augment[i](x)), self.encode(i, augment[i](x))
            terms[f"simclr_{i + 1}"] = info_nce(self.heads[i](a), self.heads[i](b), self.cfg.temperature)
        terms["loss"] = sum(terms.values()) / len(xs)
        return terms
