"""Latent converters and fusion modules of CoMM, and the projection head."""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from comm_diag.errors import InputError


def sincos_pos_embed_2d(d: int, h: int, w: int) -> Tensor:
    """Fixed 2-D sine-cosine position embeddings (as in MAE / ViT): (h*w)xd.

    Half of the channels encode the row, half the column, each as
    [sin(pos * omega_k), cos(pos * omega_k)] with omega_k = 10000^(-k / (d/4)).
    """
    if d % 4:
        raise InputError(f"embedding dimension must be a multiple of 4, got {d}")
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


_MASKS: dict[tuple, Tensor] = {}  # attention masks by (token counts, kept modalities, device)


class TransformerFusion(nn.Module):
    """A learnable [CLS] token, then one Transformer block (pre-norm, GELU) over all
    modalities' tokens; Z is the [CLS] output.

    Masking a modality excludes its tokens from attention (key padding mask), so
    the same network gives Z (all modalities) and Z_i (modality i alone).

    forward(tokens: n tensors BxL_ixd, keep: optional bool n-list) -> Bxd
    readouts(tokens, keeps: list of bool n-lists) -> list of Bxd, one per keep

    Only the [CLS] row of the block's output is used, and with one block the rows
    do not interact after attention, so the block is evaluated for that row alone:
    keys and values of every token, one query, and the output projection and MLP
    on B rows instead of B x (1 + sum L_i). Z and every Z_i share the keys and
    values (LayerNorm and the projections act per token), so ``readouts`` computes
    them once. The parameters are those of ``nn.TransformerEncoderLayer`` (kept as
    ``self.block``, so ``block_reference`` can evaluate it whole for the tests).
    """

    uses_tokens = True  # fuses latent converters' tokens (not pooled features)

    @classmethod
    def for_encoders(cls, channels: Sequence[int], d: int, heads: int) -> "TransformerFusion":
        return cls(d, heads)

    def __init__(self, d: int, heads: int = 8, mlp_ratio: float = 4.0):
        super().__init__()
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        nn.init.trunc_normal_(self.cls, std=0.02)
        self.block = nn.TransformerEncoderLayer(d, heads, int(d * mlp_ratio), dropout=0.0,
                                                activation="gelu", batch_first=True, norm_first=True)
        self.norm = nn.LayerNorm(d)

    def _with_cls(self, tokens: Sequence[Tensor]) -> Tensor:
        b = tokens[0].shape[0]
        return torch.cat([self.cls.expand(b, -1, -1), *tokens], dim=1)  # Bx(1+sum L_i)xd

    @staticmethod
    def _ignored(tokens: Sequence[Tensor], keep: Sequence[bool], device: torch.device) -> Tensor:
        """(1+sum L_i,) bool, True where a token is masked out; the [CLS] token never is.
        Made on the device and kept (one per layout): 0.4.0 built it on the host and copied
        it every call, a wait for the GPU each time."""
        key = (tuple(t.shape[1] for t in tokens), tuple(map(bool, keep)), device)
        if key not in _MASKS:
            flags = [torch.zeros(1, dtype=torch.bool, device=device)] + [
                torch.full((t.shape[1],), not k, dtype=torch.bool, device=device) for t, k in zip(tokens, keep)]
            _MASKS[key] = torch.cat(flags)
        return _MASKS[key]

    def readouts(self, tokens: Sequence[Tensor], keeps: Sequence[Optional[Sequence[bool]]]) -> list[Tensor]:
        blk, attn = self.block, self.block.self_attn
        x = self._with_cls(tokens)
        b, n, d = x.shape
        heads = attn.num_heads
        h = blk.norm1(x)
        w, bias = attn.in_proj_weight, attn.in_proj_bias
        q = F.linear(h[:, :1], w[:d], bias[:d]).view(b, 1, heads, d // heads).transpose(1, 2)  # BxHx1x(d/H)
        k = F.linear(h, w[d:2 * d], bias[d:2 * d]).view(b, n, heads, d // heads).transpose(1, 2)  # BxHxNx(d/H)
        v = F.linear(h, w[2 * d:], bias[2 * d:]).view(b, n, heads, d // heads).transpose(1, 2)  # BxHxNx(d/H)
        rows = []
        for keep in keeps:
            allowed = None if keep is None or all(keep) else ~self._ignored(tokens, keep, x.device).view(1, n)  # 1xN
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)  # BxHx1x(d/H)
            rows.append(o.transpose(1, 2).reshape(b, d))  # Bxd
        c = x[:, 0].repeat(len(keeps), 1) + attn.out_proj(torch.cat(rows))  # (M*B)xd, M = len(keeps)
        c = c + blk.linear2(blk.activation(blk.linear1(blk.norm2(c))))
        return list(self.norm(c).split(b))

    def forward(self, tokens: Sequence[Tensor], keep: Optional[Sequence[bool]] = None) -> Tensor:
        return self.readouts(tokens, [keep])[0]

    def block_reference(self, tokens: Sequence[Tensor], keep: Optional[Sequence[bool]] = None) -> Tensor:
        """The same Z from the whole block (every row computed): what ``readouts`` must equal."""
        x = self._with_cls(tokens)
        mask = None if keep is None or all(keep) else self._ignored(tokens, keep, x.device).expand(x.shape[0], -1)
        return self.norm(self.block(x, src_key_padding_mask=mask)[:, 0])


class LinearFusion(nn.Module):
    """"Concat + linear" fusion for the ablation: each modality's pooled features are
    projected linearly to d/n dims and concatenated (no latent converter, no
    attention). A masked modality contributes zeros.

    forward(pooled: n tensors BxC_i, keep) -> Bxd
    readouts(pooled, keeps) -> list of Bxd, one per keep (as TransformerFusion)
    """

    uses_tokens = False

    @classmethod
    def for_encoders(cls, channels: Sequence[int], d: int, heads: int) -> "LinearFusion":
        return cls(channels, d)

    def __init__(self, in_channels: Sequence[int], d: int):
        super().__init__()
        n = len(in_channels)
        if d % n:
            raise InputError(f"embedding dimension {d} must be divisible by the {n} modalities")
        self.proj = nn.ModuleList(nn.Linear(c, d // n) for c in in_channels)

    def readouts(self, pooled: Sequence[Tensor], keeps: Sequence[Optional[Sequence[bool]]]) -> list[Tensor]:
        return [self(pooled, keep) for keep in keeps]

    def forward(self, pooled: Sequence[Tensor], keep: Optional[Sequence[bool]] = None) -> Tensor:
        keep = keep or [True] * len(pooled)
        return torch.cat([p(x) if k else x.new_zeros(x.shape[0], p.out_features)
                          for p, x, k in zip(self.proj, pooled, keep)], dim=1)


# CoMM's fusion modules by name: each builds itself with ``for_encoders(channels, d, heads)``
# and says with ``uses_tokens`` whether it takes latent converters' tokens.
FUSIONS: dict[str, type[nn.Module]] = {"transformer": TransformerFusion, "linear": LinearFusion}


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
