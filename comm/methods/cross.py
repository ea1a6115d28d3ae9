"""Cross (CLIP-style, Radford et al. 2021) and Cross+Self (SLIP-style, Mu et al. 2022) baselines."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor, nn

from comm_diag.errors import InputError
from comm_diag.comm.augment import Augment
from comm_diag.comm.config import TrainConfig
from comm_diag.comm.encoders import build_encoder
from comm_diag.comm.fusion import MLPHead
from comm_diag.comm.losses import NCE, clip_loss
from comm_diag.comm.methods.base import AugmentFn, Method, concatenated, normalize
from comm_diag.comm.methods.settings import HeadSettings, check_choice


class Cross(Method):
    """An encoder and a linear projection (to d) per modality, CLIP loss between modalities.

    As in the authors' code: no SimCLR augmentation, a mild random crop (scale
    0.5-1); the representation is the concatenation of the projected embeddings.
    """

    default_augment = Augment("crop", crop_scale=(0.5, 1.0))  # no settings: CLIP's scale is learnt
    graph_safe = True

    def __init__(self, cfg: TrainConfig, n_modalities: int = 2):
        super().__init__(cfg, n_modalities)
        self.encoders = nn.ModuleList(build_encoder(cfg.encoder, cfg.image_size, cfg.width)
                                      for _ in range(n_modalities))
        self.proj = nn.ModuleList(nn.Linear(e.out_channels, cfg.d) for e in self.encoders)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode(self, i: int, x: Tensor) -> Tensor:
        """Pooled backbone features of modality i: BxC."""
        return self.encoders[i](normalize(x)).mean(dim=(2, 3))

    def fuse(self, encoded: Sequence[Tensor]) -> dict[str, Tensor]:
        return concatenated([p(h) for p, h in zip(self.proj, encoded)])

    def cross_terms(self, pooled: Sequence[Tensor]) -> Tensor:
        """CLIP loss averaged over all pairs of modalities."""
        z = [p(h) for p, h in zip(self.proj, pooled)]
        pairs = list(itertools.combinations(range(len(z)), 2))
        return sum(clip_loss(z[i], z[j], self.logit_scale) for i, j in pairs) / len(pairs)

    def step(self, xs: Sequence[Tensor], augment: Sequence[AugmentFn]) -> dict[str, Tensor]:
        loss = self.cross_terms([self.encode(i, augment[i](x)) for i, x in enumerate(xs)])
        return {"loss": loss, "cross": loss.detach(), "logit_scale": self.logit_scale.detach().exp()}


@dataclass(frozen=True)
class CrossSelfSettings(HeadSettings):
    proj_hidden: int = 1024  # SimCLR heads (the authors': 1024 hidden, 256 out)
    proj_dim: int = 256
    self_weight: float = 0.5  # weight of the SimCLR terms
    cross_term: str = "clip"  # clip | heads (see CrossSelf)

    def check(self, cfg: TrainConfig) -> None:
        super().check(cfg)
        check_choice("cross_term", self.cross_term, ("clip", "heads"))
        if self.self_weight < 0:
            raise InputError(f"self-weight must be >= 0, got {self.self_weight}")


class CrossSelf(Cross):
    """Cross plus a SimCLR loss per modality (3-layer MLP heads, ``proj_hidden`` 1024,
    ``proj_dim`` 256): L = cross + self_weight * sum_i self_i (self_weight 0.5). The
    representation is the concatenation of the pooled encoder features (before any
    head), as in the authors' code.

    ``cross_term="clip"``: CLIP's loss on the linear projections of the first of the two
    SimCLR views (each image encoded twice per step). ``"heads"``, as in the authors'
    code: the ``nce`` loss between the SimCLR heads' outputs of a third view of each
    modality, a mild random crop (scale 0.5-1), at the config's temperature.
    """

    Settings = CrossSelfSettings
    default_augment = Augment("all")
    mild_crop = Augment("crop", crop_scale=(0.5, 1.0))

    def __init__(self, cfg: TrainConfig, n_modalities: int = 2):
        super().__init__(cfg, n_modalities)
        s = self.settings
        self.ssl_heads = nn.ModuleList(MLPHead(e.out_channels, s.proj_hidden, s.proj_dim) for e in self.encoders)

    def fuse(self, encoded: Sequence[Tensor]) -> dict[str, Tensor]:
        return concatenated(encoded)

    @property
    def unused_parameters(self) -> bool:
        """With ``cross_term="heads"`` CLIP's projections and logit scale take no part in the
        loss (data-parallel training must expect no gradient for them)."""
        return self.settings.cross_term == "heads"

    def step(self, xs: Sequence[Tensor], augment: Sequence[AugmentFn]) -> dict[str, Tensor]:
        s, first, out, self_total = self.settings, [], {}, 0.0
        nce = NCE[s.nce]
        for i, x in enumerate(xs):
            a, b = self.encode_views(i, [augment[i](x), augment[i](x)])  # one pass where exact
            out[f"self_{i + 1}"] = nce(self.ssl_heads[i](a), self.ssl_heads[i](b), s.temperature)
            self_total = self_total + out[f"self_{i + 1}"]
            first.append(a)
        if s.cross_term == "heads":
            # the crop draws from the step's generator (the training loop's, as the augment functions do)
            z = [self.ssl_heads[i](self.encode(i, self.mild_crop(x, self.generator))) for i, x in enumerate(xs)]
            pairs = list(itertools.combinations(range(len(z)), 2))
            out["cross"] = sum(nce(z[i], z[j], s.temperature) for i, j in pairs) / len(pairs)
        else:
            out["cross"] = self.cross_terms(first)
        out["loss"] = out["cross"] + s.self_weight * self_total
        return out
