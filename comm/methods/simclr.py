"""SimCLR per modality with late fusion (Chen et al., ICML 2020, https://arxiv.org/abs/2002.05709):
the reference without any cross-modal term."""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from comm_diag.comm.augment import Augment
from comm_diag.comm.config import TrainConfig
from comm_diag.comm.encoders import build_encoder
from comm_diag.comm.fusion import MLPHead
from comm_diag.comm.losses import NCE
from comm_diag.comm.methods.base import AugmentFn, Method, concatenated, normalize
from comm_diag.comm.methods.settings import HeadSettings


class LateFusionSimCLR(Method):
    """One encoder per modality, each trained with SimCLR on two augmentations of its own
    images; the modalities never meet during training, and a pair's representation is the
    concatenation of the pooled features (late fusion).

        L = 1/n sum_i L_nce(h_i(f_i(t'(x_i))), h_i(f_i(t''(x_i))))

    Expected on Trifeature: redundancy and uniqueness (each encoder keeps its own image's
    attributes), no synergy (it needs both images at once).
    """

    Settings = HeadSettings
    default_augment = Augment("all")  # SimCLR's set; --aug1/--aug2 (and every preset) override it
    graph_safe = True

    def __init__(self, cfg: TrainConfig, n_modalities: int = 2):
        super().__init__(cfg, n_modalities)
        self.encoders = nn.ModuleList(build_encoder(cfg.encoder, cfg.image_size, cfg.width)
                                      for _ in range(n_modalities))
        s = self.settings
        self.heads = nn.ModuleList(MLPHead(e.out_channels, s.proj_hidden, s.proj_dim) for e in self.encoders)

    def encode(self, i: int, x: Tensor) -> Tensor:
        """Modality i's pooled features: Bx3xHxW -> BxC."""
        return self.encoders[i](normalize(x)).mean(dim=(2, 3))

    def fuse(self, encoded: Sequence[Tensor]) -> dict[str, Tensor]:
        return concatenated(encoded)  # Bx(C*n)

    def step(self, xs: Sequence[Tensor], augment: Sequence[AugmentFn]) -> dict[str, Tensor]:
        terms, s = {}, self.settings
        for i, x in enumerate(xs):
            a, b = self.encode(i, augment[i](x)), self.encode(i, augment[i](x))
            terms[f"simclr_{i + 1}"] = NCE[s.nce](self.heads[i](a), self.heads[i](b), s.temperature)
        terms["loss"] = sum(terms.values()) / len(xs)
        return terms
