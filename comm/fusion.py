"""Latent converters and fusion modules of CoMM, and the projection head."""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor, nn


def sincos_pos_embed_2d(d: int, h: int, w: int) -> Tensor:
    """Fixed 2-D sine-cosine position embeddings (as in MAE / ViT): (h*w)xd.

    Half of the channels encode the row, half the column, each as
    [sin(pos * omega_k), cos(pos * omega_k)] with omega_k = 10000^(-k / (d/4)).
    """
    if d % 4:
        raise ValueError(f"embedding dimension must be a multiple of 4, got {d}")
    omega = 1.0 / 10000 ** (torch.arange(d // 4, dtype=torch.float64) / (d // 4))  # (d/4,)
    rows, cols = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                                indexing="ij")
    def enc(pos: Tensor) -> Tensor:
        arg = pos.reshape(-1, 1) * omega  # (hw)x(d/4)
        return torch.cat([arg.sin(), arg.cos()], dim=1)  # (hw)x(d/2)
    return torch.cat([enc(rows), enc(cols)], dim=1).float()  # (hw)xd


class LatentConverter(nn.Module):
    """1x1 patch embedding of a feature map to d-dim tokens plus fixed 2-D positions.

    forward: BxCxhxw -> Bx(h*w)xd
    """

    def __init__(self, in_channels: int, d: int, grid: tuple[int, int]):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, d, kernel_size=1)
        self.register_buffer("pos", sincos_pos_embed_2d(d, *grid), persistent=False)

    def forward(self, h: Tensor) -> Tensor:
        t = self.proj(h).flatten(2).transpose(1, 2)  # Bx(hw)xd
        return t + self.pos


class TransformerFusion(nn.Module):
    """A learnable [CLS] token, then one Transformer block over all modalities' tokens.

    Masking a modality excludes its tokens from attention (key padding mask), so
    the same network gives Z (all modalities) and Z_i (modality i alone).

    forward(tokens: n tensors BxL_ixd, keep: optional bool n-list) -> Bxd
    """

    uses_tokens = True

    def __init__(self, d: int, heads: int = 8, mlp_ratio: float = 4.0, dropout: float = 0.0):
        super().__init__()
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        nn.init.trunc_normal_(self.cls, std=0.02)
        self.block = nn.TransformerEncoderLayer(d, heads, int(d * mlp_ratio), dropout=dropout,
                                                activation="gelu", batch_first=True, norm_first=True)
        self.norm = nn.LayerNorm(d)

    def forward(self, tokens: Sequence[Tensor], keep: Optional[Sequence[bool]] = None) -> Tensor:
        b = tokens[0].shape[0]
        x = torch.cat([self.cls.expand(b, -1, -1), *tokens], dim=1)  # Bx(1+sum L_i)xd
        if keep is None or all(keep):
            mask = None
        else:
            flags = [torch.zeros(1, dtype=torch.bool)] + [
                torch.full((t.shape[1],), not k, dtype=torch.bool) for t, k in zip(tokens, keep)]
            mask = torch.cat(flags).to(x.device).unsqueeze(0).expand(b, -1)  # Bx(1+sum L_i), True = ignore
        return self.norm(self.block(x, src_key_padding_mask=mask)[:, 0])


class LinearFusion(nn.Module):
    """"Concat + linear" fusion for the ablation: each modality's pooled features are
    projected linearly to d/n dims and concatenated (no latent converter, no
    attention). A masked modality contributes zeros.

    forward(pooled: n tensors BxC_i, keep) -> Bxd
    """

    uses_tokens = False

    def __init__(self, in_channels: Sequence[int], d: int):
        super().__init__()
        n = len(in_channels)
        if d % n:
            raise ValueError(f"embedding dimension {d} must be divisible by the {n} modalities")
        self.proj = nn.ModuleList(nn.Linear(c, d // n) for c in in_channels)

    def forward(self, pooled: Sequence[Tensor], keep: Optional[Sequence[bool]] = None) -> Tensor:
        keep = keep or [True] * len(pooled)
        return torch.cat([p(x) if k else x.new_zeros(x.shape[0], p.out_features)
                          for p, x, k in zip(self.proj, pooled, keep)], dim=1)


class MLPHead(nn.Module):
    """SimCLR's projection head: Linear-BN-ReLU, Linear-BN-ReLU, Linear (3 layers).

    forward: BxD_in -> BxD_out
    """

    def __init__(self, d_in: int, hidden: int = 512, d_out: int = 256):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_in, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, d_out),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
