"""CoMM: contrastive multimodal learning of fused representations (Dufumier & Castillo-Navarro
et al., ICLR 2025, https://arxiv.org/abs/2409.07402)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from torch import Tensor, nn

from comm_diag.errors import InputError
from comm_diag.comm.augment import Augment
from comm_diag.comm.config import TrainConfig
from comm_diag.comm.encoders import build_encoder, feature_grid
from comm_diag.comm.fusion import FUSIONS, LatentConverter, MLPHead
from comm_diag.comm.losses import TERM_REDUCTIONS, comm_loss
from comm_diag.comm.methods.base import AugmentFn, Method, normalize
from comm_diag.comm.methods.settings import HeadSettings, check_choice


@dataclass(frozen=True)
class CoMMSettings(HeadSettings):
    fusion: str = "transformer"  # key of comm.fusion.FUSIONS
    heads: int = 8  # attention heads of the fusion block
    w_full: float = 1.0  # weight of the term I(Z', Z'')
    w_masked: float = 1.0  # weight of the n terms I(Z_i, Z)
    terms: str = "sum"  # sum (the paper's equation) | mean (the authors' code) of the n+1 terms

    def check(self, cfg: TrainConfig) -> None:
        super().check(cfg)
        check_choice("fusion", self.fusion, FUSIONS)
        check_choice("terms", self.terms, TERM_REDUCTIONS)
        if self.heads < 1 or cfg.d % self.heads or cfg.d % 4:
            raise InputError(f"d={cfg.d} must be a multiple of 4 and of heads={self.heads}")
        if self.w_full < 0 or self.w_masked < 0 or self.w_full + self.w_masked == 0:
            raise InputError("loss weights w-full and w-masked must be >= 0 and not both 0")


class CoMM(Method):
    """One encoder per modality, latent converters, attention fusion, n+1 InfoNCE terms.

    Run settings read: encoder, width, image_size, d (token and Z width). Its own
    (``CoMMSettings``): fusion, heads, proj_hidden, proj_dim (head), temperature, w_full,
    w_masked (loss term weights), nce, terms (``losses.comm_loss``).
    """

    Settings = CoMMSettings
    default_augment = Augment("all")
    graph_safe = True

    def __init__(self, cfg: TrainConfig, n_modalities: int = 2):
        super().__init__(cfg, n_modalities)
        s = self.settings
        self.encoders = nn.ModuleList(build_encoder(cfg.encoder, cfg.image_size, cfg.width)
                                      for _ in range(n_modalities))
        channels = [e.out_channels for e in self.encoders]
        fusion = FUSIONS[s.fusion]
        self.converters = None
        if fusion.uses_tokens:
            grid = feature_grid(self.encoders[0], cfg.image_size)
            self.converters = nn.ModuleList(LatentConverter(c, cfg.d, grid) for c in channels)
        self.fusion = fusion.for_encoders(channels, cfg.d, s.heads)
        self.head = MLPHead(cfg.d, s.proj_hidden, s.proj_dim)

    def encode(self, i: int, x: Tensor) -> Tensor:
        """Modality i's tokens Bx(hw)xd (transformer fusion) or pooled features BxC (linear)."""
        h = self.encoders[i](normalize(x))  # BxCxhxw
        return self.converters[i](h) if self.converters is not None else h.mean(dim=(2, 3))

    def _alone(self, i: int) -> list[bool]:
        return [j == i for j in range(self.n_modalities)]

    def fuse(self, encoded: Sequence[Tensor]) -> dict[str, Tensor]:
        names = ["fused"] + [f"modality{i + 1}" for i in range(self.n_modalities)]
        keeps = [None] + [self._alone(i) for i in range(self.n_modalities)]
        return dict(zip(names, self.fusion.readouts(encoded, keeps)))  # Z and every Z_i in one call

    def embed_view(self, xs: Sequence[Tensor], augment: Sequence[AugmentFn]) -> tuple[list[Tensor], dict[str, Tensor]]:
        """One augmentation of the sample: each modality's encoding, and the head's
        embedding of Z and of every Z_i ("fused", "modality1", ...)."""
        enc = [self.encode(i, augment[i](x)) for i, x in enumerate(xs)]
        return enc, {k: self.head(v) for k, v in self.fuse(enc).items()}

    def comm_terms(self, views: Sequence[dict[str, Tensor]]) -> dict[str, Tensor]:
        """The n+1-term loss of two views' embeddings (``losses.comm_loss``)."""
        n, c = range(1, self.n_modalities + 1), self.settings
        return comm_loss(views[0]["fused"], views[1]["fused"], [views[0][f"modality{i}"] for i in n],
                         [views[1][f"modality{i}"] for i in n], c.temperature, c.w_full, c.w_masked,
                         c.nce, c.terms)

    def step(self, xs: Sequence[Tensor], augment: Sequence[AugmentFn]) -> dict[str, Tensor]:
        enc = self.encode_drawn(xs, augment, 2)  # t' and t''
        return (self.compiled_tail or self.loss_tail)(enc)

    def loss_tail(self, enc: list[list[Tensor]]) -> dict[str, Tensor]:
        """The step after the encoders: each view's fusion and head, then the n+1-term loss
        (``enc``: modality -> views' encodings). A pure function of tensors and weights: what
        the fast path compiles (``Method.compiled_tail``, set by the training step)."""
        return self.comm_terms(self.embed_encoded(enc))

    def encode_drawn(self, xs: Sequence[Tensor], augment: Sequence[AugmentFn], k: int) -> list[list[Tensor]]:
        """``k`` augmentations of the sample drawn in the order of k ``embed_view`` calls (view by
        view, modality by modality), each modality's views encoded in one pass where exact
        (``encode_views``): modality -> views' encodings."""
        drawn = [[augment[i](x) for i, x in enumerate(xs)] for _ in range(k)]
        return [self.encode_views(i, [v[i] for v in drawn]) for i in range(len(xs))]

    def embed_encoded(self, enc: list[list[Tensor]]) -> list[dict[str, Tensor]]:
        """Each view's fusion and head (``enc``: modality -> views' encodings); the fusion and
        the head (BatchNorm: its statistics stay per view) see each view apart."""
        return [{name: self.head(z) for name, z in self.fuse([e[j] for e in enc]).items()}
                for j in range(len(enc[0]))]
