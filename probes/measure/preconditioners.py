"""The linear probe solver's building blocks: products with the features that never copy
them, the centred subspace of a softmax's weights, and the two preconditioners of its
Newton-CG steps (``probes.measure.logistic_fit``). Shapes: features x (G, N, D+1), weights
and directions (G, K, D+1, Q) for G problems of K values of C and Q outputs."""

from __future__ import annotations

import torch
from torch import Tensor


def times_features(x: Tensor, theta: Tensor) -> Tensor:
    """x (G, N, D+1) times theta (G, K, D+1, Q) -> (G, K, N, Q), as one batched product over
    the K*Q columns: the features are never copied K times (an einsum may broadcast them)."""
    g_, k, d1, q = theta.shape
    columns = theta.permute(0, 2, 1, 3).reshape(g_, d1, k * q)  # (G, D+1, K*Q)
    return (x @ columns).view(g_, x.shape[1], k, q).permute(0, 2, 1, 3)  # (G, K, N, Q), a view


def features_times(x: Tensor, r: Tensor) -> Tensor:
    """x^T (G, D+1, N) times r (G, K, N, Q) -> (G, K, D+1, Q), the features not copied."""
    g_, k, n, q = r.shape
    columns = r.permute(0, 2, 1, 3).reshape(g_, n, k * q)  # (G, N, K*Q)
    return (x.transpose(1, 2) @ columns).view(g_, x.shape[2], k, q).permute(0, 2, 1, 3)  # (G, K, D+1, Q)


def centred(v: Tensor) -> Tensor:
    """v (..., D+1, Q) less its mean over the Q classes (Q > 1). A softmax is unchanged when
    the same vector is added to every class, the penalty only grows, so the optimum has
    sum_q W_q = 0, and a bias started centred stays so: Newton runs in the centred subspace,
    where the Hessian has no near-null direction (outside it the curvature is the penalty's
    alone, 1e-5 at C = 10 on 10,000 samples, which cost CG hundreds of iterations)."""
    return v - v.mean(-1, keepdim=True) if v.shape[-1] > 1 else v


class Blocks:
    """M^-1 r with M the Hessian's per-class diagonal blocks (Cholesky factors (G, K, Q, D+1, D+1))."""

    def __init__(self, factors: Tensor):
        self.factors = factors

    def select(self, keep: Tensor) -> "Blocks":
        return Blocks(self.factors[keep])

    def __call__(self, r: Tensor) -> Tensor:
        """r (G, K, D+1, Q), kept in the centred subspace."""
        rq = centred(r).permute(0, 1, 3, 2)[..., None]  # (G, K, Q, D+1, 1)
        return centred(torch.cholesky_solve(rq, self.factors)[..., 0].permute(0, 1, 3, 2))


class Kronecker:
    """M^-1 r with M_q = c_q X^T A X + reg I for class q: each class's block approximated by its
    mean curvature c_q = sum_i a_i p_iq (1 - p_iq) times the weighted second moment, inverted
    in the moment's eigenbasis (two products with U per application, nothing rebuilt but the
    K x Q scalars). Weaker than the blocks where curvature varies across samples, so CG takes
    more (cheap) iterations; for wide features the blocks' rebuild (Q N (D+1)^2 per C) costs
    more than those iterations."""

    def __init__(self, basis: Tensor, eig: Tensor, curvature: Tensor, reg: Tensor):
        self.basis, self.eig, self.curvature, self.reg = basis, eig, curvature, reg  # (G,D1,D1), (G,D1), (G,K,Q), (G,K)

    def select(self, keep: Tensor) -> "Kronecker":
        return Kronecker(self.basis[keep], self.eig[keep], self.curvature[keep], self.reg[keep])

    def __call__(self, r: Tensor) -> Tensor:
        g_, k, d1, q = r.shape
        rotated = self.basis.transpose(1, 2) @ centred(r).permute(0, 2, 1, 3).reshape(g_, d1, k * q)  # (G, D1, K*Q)
        scale = self.curvature[:, None] * self.eig[:, :, None, None] + self.reg[:, None, :, None]  # (G, D1, K, Q)
        back = self.basis @ (rotated.view(g_, d1, k, q) / scale.clamp(min=1e-300)).reshape(g_, d1, k * q)
        return centred(back.view(g_, d1, k, q).permute(0, 2, 1, 3))  # (G, K, D1, Q)


Preconditioner = Blocks | Kronecker
