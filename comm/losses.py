"""Contrastive losses as pure functions (no state; the learnable CLIP scale is passed in).

All embeddings are compared by cosine similarity; the other samples of the
batch are the negatives. Under data-parallel training the batch is that of all
processes (``comm_diag.comm.distributed.gather``): each process scores its own B anchors
against the N*B candidates, and the mean over processes is the loss of the whole
batch.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from comm_diag.errors import InputError
from comm_diag.comm.distributed import gather, offset
from comm_diag.comm.runtime import full_precision


def _check_pair(a: Tensor, b: Tensor) -> None:
    if a.ndim != 2 or a.shape != b.shape:
        raise InputError(f"embeddings must both be BxD with the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[0] < 2:
        raise InputError("a contrastive loss needs a batch of at least 2 samples")


def info_nce(a: Tensor, b: Tensor, temperature: float = 0.1) -> Tensor:
    """Symmetric InfoNCE between paired embeddings (van den Oord et al., 2018).

        s_ij = <a_i, b_j> / (|a_i| |b_j| tau)
        L = 1/2 [ CE(s, diag) + CE(s^T, diag) ]
          = -1/(2B) sum_i [ log softmax_j s_ij |_{j=i} + log softmax_j s_ji |_{j=i} ]

    The estimate of mutual information is I_NCE = log B - L.

    Args:
        a, b: BxD embeddings; row i of a and row i of b are the positive pair.
        temperature: tau > 0.
    Returns:
        scalar loss.

    Example:
        >>> a = torch.randn(8, 16)
        >>> float(info_nce(a, a)) < float(info_nce(a, torch.randn(8, 16)))
        True
    """
    _check_pair(a, b)
    if temperature <= 0:
        raise InputError(f"temperature must be > 0, got {temperature}")
    return _symmetric_ce(_unit(a), _unit(b), 1.0 / temperature)


def _unit(x: Tensor) -> Tensor:
    """Rows scaled to unit norm, in fp32: under a bf16 autocast, cosine similarities
    that differ by less than bf16's resolution (~4e-3 near 1) would tie, and a model
    whose embeddings start nearly parallel would get no signal (a Cross run stayed at
    the chance loss log B for all 6 epochs that way)."""
    return F.normalize(x.float(), dim=1)


def _symmetric_ce(a: Tensor, b: Tensor, scale: Tensor | float) -> Tensor:
    """1/2 [CE(scale a b_all^T) + CE(scale b a_all^T)] for unit-norm BxD a, b, where x_all
    is x of every process (N*B x D; x itself in one process) and the positive of
    anchor i is its own row in x_all. In fp32 whatever the autocast (see ``_unit``)."""
    with full_precision(a.device):
        a_all, b_all = gather(a), gather(b)  # (N*B)xD
        labels = offset(a.shape[0]) + torch.arange(a.shape[0], device=a.device)
        logits_ab = scale * torch.einsum("id,jd->ij", a, b_all)  # Bx(N*B)
        logits_ba = scale * torch.einsum("id,jd->ij", b, a_all)  # Bx(N*B)
        return 0.5 * (F.cross_entropy(logits_ab, labels) + F.cross_entropy(logits_ba, labels))


def nt_xent(a: Tensor, b: Tensor, temperature: float = 0.1) -> Tensor:
    """SimCLR's NT-Xent (Chen et al., 2020), symmetrised: the other view's samples AND the
    anchor's own view's other samples are negatives (2B-2 per anchor), as in the CoMM
    authors' code.

        s_ij = <a_i, b_j> / (|a_i| |b_j| tau),   t_ij = <a_i, a_j> / (|a_i| |a_j| tau)
        l_i(a, b) = -log [ exp(s_ii) / (sum_j exp(s_ij) + sum_{j != i} exp(t_ij)) ]
        L = 1/(2B) sum_i [ l_i(a, b) + l_i(b, a) ]

    Args:
        a, b: BxD embeddings; row i of a and row i of b are the positive pair.
        temperature: tau > 0.
    Returns:
        scalar loss (log(2B-1) for embeddings that tell nothing apart).
    """
    _check_pair(a, b)
    if temperature <= 0:
        raise InputError(f"temperature must be > 0, got {temperature}")
    a, b = _unit(a), _unit(b)
    with full_precision(a.device):
        a_all, b_all = gather(a), gather(b)  # (N*B)xD
        own = offset(a.shape[0]) + torch.arange(a.shape[0], device=a.device)
        losses = []
        for x, y_all, x_all in ((a, b_all, a_all), (b, a_all, b_all)):
            cross = torch.einsum("id,jd->ij", x, y_all) / temperature  # Bx(N*B): positive at `own`
            same = torch.einsum("id,jd->ij", x, x_all) / temperature  # Bx(N*B): the anchor itself masked
            same = same.masked_fill(F.one_hot(own, x_all.shape[0]).bool(), float("-inf"))
            losses.append(F.cross_entropy(torch.cat([cross, same], dim=1), own))  # Bx(2*N*B)
        return 0.5 * (losses[0] + losses[1])


NCE = {"cross_view": info_nce, "nt_xent": nt_xent}  # negatives: the other view's only, or both views'


def nce_mutual_information(loss: Tensor, batch_size: int) -> Tensor:
    """The InfoNCE lower bound on mutual information (nats) from a symmetric InfoNCE loss."""
    return math.log(batch_size) - loss


def clip_loss(a: Tensor, b: Tensor, logit_scale: Tensor, max_scale: float = 100.0) -> Tensor:
    """CLIP's symmetric cross-modal loss (Radford et al., 2021) with a learnable scale.

        s_ij = exp(min(logit_scale, log max_scale)) <a_i, b_j> / (|a_i| |b_j|)
        L = 1/2 [ CE(s, diag) + CE(s^T, diag) ]

    Args:
        a, b: BxD embeddings of two modalities of the same B samples.
        logit_scale: scalar tensor, the log of the inverse temperature (init log(1/0.07)).
        max_scale: the scale is clamped at this value, as in CLIP.
    """
    _check_pair(a, b)
    scale = logit_scale.clamp(max=math.log(max_scale)).exp()
    return _symmetric_ce(_unit(a), _unit(b), scale)


def comm_loss(
    full1: Tensor,
    full2: Tensor,
    masked1: Sequence[Tensor],
    masked2: Sequence[Tensor],
    temperature: float = 0.1,
    w_full: float = 1.0,
    w_masked: float = 1.0,
    nce: str = "cross_view",
    terms: str = "sum",
) -> dict[str, Tensor]:
    """The CoMM loss with its n+1 InfoNCE terms (Dufumier et al., ICLR 2025, eq. 7).

        L = c * ( w_full * L(Z', Z'') + w_masked * sum_i [ L(Z'_i, Z'') + L(Z''_i, Z') ] / 2 )

    where L is a symmetric InfoNCE loss, Z', Z'' the fused embeddings of two
    augmentations of the whole input, and Z'_i, Z''_i those of modality i alone;
    c = 1 (``terms="sum"``, the paper's equation) or 1/(n+1) (``terms="mean"``, the
    authors' code). Minimising L maximises -I(Z', Z'') - sum_i [I(Z'_i, Z'') + I(Z''_i, Z')]/2.

    Args:
        full1, full2: BxD, Z' and Z''.
        masked1, masked2: n tensors BxD each, Z'_i and Z''_i.
        temperature: InfoNCE temperature.
        w_full, w_masked: weights of the full term and of the masked terms (the
            loss ablation sets one of them to 0).
        nce: "cross_view" (``info_nce``: B-1 negatives from the other view) or
            "nt_xent" (``nt_xent``: 2B-2, both views, as in the authors' code).
        terms: "sum" or "mean" of the n+1 terms.
    Returns:
        dict with "loss" and every term: "full", "masked_i" (the averaged pair for
        modality i, 1-based).
    """
    if len(masked1) != len(masked2) or not masked1:
        raise InputError("masked1 and masked2 must hold one embedding per modality")
    if nce not in NCE or terms not in TERM_REDUCTIONS:
        raise InputError(f"nce must be one of {', '.join(NCE)} and terms one of {', '.join(TERM_REDUCTIONS)}")
    loss_fn = NCE[nce]
    out = {"full": loss_fn(full1, full2, temperature)}
    for i, (m1, m2) in enumerate(zip(masked1, masked2), start=1):
        out[f"masked_{i}"] = 0.5 * (loss_fn(m1, full2, temperature) + loss_fn(m2, full1, temperature))
    masked_sum = sum(out[f"masked_{i}"] for i in range(1, len(masked1) + 1))
    scale = 1.0 if terms == "sum" else 1.0 / (len(masked1) + 1)
    out["loss"] = scale * (w_full * out["full"] + w_masked * masked_sum)
    return out


TERM_REDUCTIONS = ("sum", "mean")


def gaussian_masked_loss(q: Tensor, masked: Sequence[Tensor], temperature: float = 0.1,
                         covariance_weight: float = 1.0) -> Tensor:
    """InfMasking's contrast of an embedding with the Gaussian moments of masked views
    (Wen et al., NeurIPS 2025), in closed form.

    q (BxE) is the fused embedding of one view; k_t (BxE, t = 1..T) those of T random
    token-masked fusions of the other view; all are scaled to unit norm. Per sample b, the
    masked views' mean mu_b = 1/T sum_t k_tb and variance along q_b,
    v_b = 1/T sum_t ((k_tb - mu_b) . q_b)^2 = q_b^T Sigma_b q_b, stand for infinitely many
    masks: with lambda = covariance_weight,

        pos_b = [ q_b . mu_b + lambda / (2 tau) v_b ] / tau
        neg_b = { q_b . k_tn / tau : all t, n != b }  u  { q_b . q_n / tau : n != b }
        L = 1/B sum_b [ -log softmax(pos_b, neg_b)_0  +  lambda / (2 tau^2) v_b ]

    (the positive logit is the log-moment-generating function of a Gaussian q . k / tau
    up to a constant; the last term keeps that bonus from being won by inflating the
    masked views' spread). The negatives are those of every process (``gather``).

    Args:
        q: BxE embedding of one view.
        masked: T >= 2 tensors BxE, masked embeddings of the other view.
        temperature: tau > 0.
        covariance_weight: lambda >= 0 (InfMasking raises it linearly over training).
    Returns:
        scalar loss.
    """
    if len(masked) < 2:
        raise InputError("the Gaussian moments need at least 2 masked views")
    for k in masked:
        _check_pair(q, k)
    q, ks = _unit(q), torch.stack([_unit(k) for k in masked])  # q: BxE, ks: TxBxE
    with full_precision(q.device):
        b = q.shape[0]
        mu = ks.mean(dim=0)  # BxE
        var = torch.einsum("tbe,be->tb", ks - mu, q).pow(2).mean(dim=0)  # B: q_b^T Sigma_b q_b
        lam = covariance_weight
        pos = ((q * mu).sum(dim=1) + lam / (2 * temperature) * var) / temperature  # B
        q_all = gather(q)  # (N*B)xE
        own = offset(b) + torch.arange(b, device=q.device)
        not_self = ~F.one_hot(own, q_all.shape[0]).bool()  # Bx(N*B)
        k_all = torch.stack([gather(k) for k in ks])  # Tx(N*B)xE
        neg_k = torch.einsum("be,tne->btn", q, k_all) / temperature  # BxTx(N*B)
        neg_k = neg_k.masked_fill(~not_self.unsqueeze(1), float("-inf")).flatten(1)  # Bx(T*N*B)
        neg_q = (q @ q_all.T / temperature).masked_fill(~not_self, float("-inf"))  # Bx(N*B)
        logits = torch.cat([pos.unsqueeze(1), neg_k, neg_q], dim=1)  # Bx(1 + (T+1)*N*B)
        zeros = torch.zeros(b, dtype=torch.long, device=q.device)
        return F.cross_entropy(logits, zeros) + lam / (2 * temperature ** 2) * var.mean()
