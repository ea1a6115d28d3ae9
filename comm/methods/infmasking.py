"""InfMasking: CoMM plus infinitely many random token maskings, through their Gaussian moments
(Wen et al., NeurIPS 2025, "InfMasking: Unleashing Synergistic Information by Contrastive
Multimodal Interactions")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor, nn

from comm_diag.errors import InputError
from comm_diag.comm.config import TrainConfig
from comm_diag.comm.fusion import FUSIONS
from comm_diag.comm.losses import gaussian_masked_loss
from comm_diag.comm.methods.base import AugmentFn
from comm_diag.comm.methods.comm_model import CoMM, CoMMSettings


@dataclass(frozen=True)
class InfMaskingSettings(CoMMSettings):
    mask_ratio: float = 0.5  # fraction of a sample's tokens masked in each masked view
    n_masks: int = 5  # masked views per sample (T)
    mask_lambda: float = 1.0  # covariance weight at the end of training (it grows linearly)

    def check(self, cfg: TrainConfig) -> None:
        super().check(cfg)
        if not FUSIONS[self.fusion].uses_tokens:
            raise InputError("infmasking masks the fusion's tokens: it needs --fusion transformer")
        if not 0.0 < self.mask_ratio < 1.0 or self.n_masks < 2 or self.mask_lambda < 0:
            raise InputError(f"mask-ratio must be in (0, 1), n-masks >= 2 and mask-lambda >= 0; got "
                             f"{self.mask_ratio}, {self.n_masks}, {self.mask_lambda}")


class InfMasking(CoMM):
    """CoMM's encoders, latent converters, fusion and n+1 terms, plus T random token-masked
    fusions of each view: a ``mask_ratio`` of each sample's tokens (all modalities together)
    is replaced by a learnable mask token before the fusion block. The fused embedding of
    one view is contrasted with the Gaussian moments (mean and covariance) of the other
    view's T masked embeddings, the covariance weighed by lambda = mask_lambda x the
    fraction of training done (it grows linearly).

    The loss:

        L = L_CoMM + 1/2 [ L_G(Z', {Z''_t}) + L_G(Z'', {Z'_t}) ]     (L_G: losses.gaussian_masked_loss)

    Settings: mask_ratio (0.5), n_masks (T = 5), mask_lambda (1.0), besides CoMM's. The
    representation is CoMM's: Z and each Z_i, unmasked.
    """

    graph_safe = False  # its masking weight grows with self.progress and its masks use the global generator

    Settings = InfMaskingSettings

    def __init__(self, cfg: TrainConfig, n_modalities: int = 2):
        super().__init__(cfg, n_modalities)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, cfg.d))
        nn.init.trunc_normal_(self.mask_token, std=0.02)

    def masked_embeddings(self, enc: Sequence[Tensor]) -> list[Tensor]:
        """T head embeddings (BxE each) of fusions whose tokens were randomly masked, exactly
        round(N x mask_ratio) of the N tokens of each sample (torch's generator: the training
        loop seeds it per epoch)."""
        tokens = torch.cat(list(enc), dim=1)  # BxNxd
        b, n, d = tokens.shape
        t = self.settings.n_masks
        kept = max(1, round(n * (1.0 - self.settings.mask_ratio)))
        rank = torch.rand(t, b, n, device=tokens.device).argsort(dim=-1).argsort(dim=-1)  # TxBxN random ranks
        keep = (rank < kept).unsqueeze(-1)  # TxBxNx1
        x = torch.where(keep, tokens.unsqueeze(0), self.mask_token.to(tokens.dtype))  # TxBxNxd
        fused = self.fusion.readouts([x.reshape(t * b, n, d)], [None])[0]  # (T*B)xd
        return list(self.head(fused).split(b))

    def step(self, xs: Sequence[Tensor], augment: Sequence[AugmentFn]) -> dict[str, Tensor]:
        encs, views = zip(*(self.embed_view(xs, augment) for _ in range(2)))  # t' and t''
        terms = self.comm_terms(views)
        lam = self.settings.mask_lambda * self.progress
        masked = [self.masked_embeddings(e) for e in encs]
        tau = self.settings.temperature
        terms["masked_views"] = 0.5 * (gaussian_masked_loss(views[0]["fused"], masked[1], tau, lam)
                                       + gaussian_masked_loss(views[1]["fused"], masked[0], tau, lam))
        terms["loss"] = terms["loss"] + terms["masked_views"]
        return terms
