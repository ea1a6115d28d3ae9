"""A method written from ``Method``'s contract alone, checked with ``comm-diag check``:

    comm-diag check examples/clip_concat.py:ClipConcat --preset smoke

One encoder per modality; the two pooled features are projected to a shared space and
aligned across modalities (CLIP's symmetric InfoNCE between x1 and x2 of a pair); the
pair's representation is the two projections side by side. What it needs from comm-diag:
``Method`` (the contract), its ``Settings`` (its own hyperparameters), an encoder and a loss.
"""

from dataclasses import dataclass

import torch
from torch import nn

from comm_diag.comm.encoders import build_encoder
from comm_diag.comm.losses import info_nce
from comm_diag.comm.methods import Method, MethodSettings


@dataclass(frozen=True)
class ClipConcatSettings(MethodSettings):
    dim: int = 64  # the shared space's width
    temperature: float = 0.1

    def check(self, cfg) -> None:
        if self.dim < 1 or self.temperature <= 0:
            raise ValueError(f"dim must be >= 1 and temperature > 0, got {self.dim}, {self.temperature}")


class ClipConcat(Method):
    """x1 and x2 aligned across modalities (CLIP), the representation their two projections."""

    Settings = ClipConcatSettings

    def __init__(self, cfg, n_modalities: int = 2):
        super().__init__(cfg, n_modalities)
        self.encoders = nn.ModuleList(build_encoder(cfg.encoder, cfg.image_size, cfg.width)
                                      for _ in range(n_modalities))
        self.projections = nn.ModuleList(nn.Linear(e.out_channels, self.settings.dim) for e in self.encoders)

    def embed(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """Modality i's images Bx3xHxW in [0, 1] -> Bxdim."""
        return self.projections[i](self.encoders[i]((x - 0.5) / 0.25).mean(dim=(2, 3)))

    def step(self, xs, augment):
        z1, z2 = (self.embed(i, augment[i](x)) for i, x in enumerate(xs))
        return {"loss": info_nce(z1, z2, self.settings.temperature)}

    def features(self, xs):
        z = [self.embed(i, x) for i, x in enumerate(xs)]
        return {"fused": torch.cat(z, dim=1), **{f"modality{i + 1}": zi for i, zi in enumerate(z)}}  # Bx(2*dim)
