"""The linear probe's solver: scikit-learn's L2 logistic objective minimised to a stated
optimum in float64, on any device, many problems at once. Pure functions of (features,
labels, settings); ``probes.measure.backends`` wraps them in scikit-learn's interface.

The stopping rule is ``probes.measure.optimum``'s, the same for every backend
(``host_fit.SklearnBackend`` included): max |grad L| <= TOLERANCE, L the
sample-weight-averaged objective (``logistic_objectives``).

The solver is a truncated Newton method (Newton-CG): each step solves H d = -g by conjugate
gradients on Hessian-vector products (never forming the (D+1)Q x (D+1)Q Hessian), each CG
iteration preconditioned by the Hessian's per-class diagonal blocks (Q Cholesky factors of
(D+1) x (D+1), rebuilt at steps 0, 1, 2, 4, 8, ...) or, for wide features, by a Kronecker
approximation of them (``BLOCK_JACOBI_MAX``), and the step is kept by a backtracking line search whose sufficient-decrease
test accepts a change within float64 rounding of the objective (16 eps |L|): near the optimum
rounding cannot reject every step, as it did in 0.8's damped Newton (2 of 40 trained-run
problems ran to their 200-iteration cap one ulp above the tolerance). Convergence is read
after every Newton step: a step costs Q block products N (D+1)^2, so one read-back is noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from comm_diag.errors import InputError
from comm_diag.probes.measure.optimum import TOLERANCE
from comm_diag.comm.runtime import is_gpu
from comm_diag.probes.measure.preconditioners import Blocks, Kronecker, Preconditioner, centred, features_times, \
    times_features

DTYPE = torch.float64
NEWTON_ITERATIONS = 100  # a problem still above TOLERANCE after these is reported unconverged
CG_ITERATIONS = 50  # per Newton step; the step is then the best direction found so far
CG_CHECK_EVERY = 4  # CG iterations between the host's reads of whether any still runs, on a GPU
ARMIJO = 1e-4  # sufficient decrease, as a fraction of the directional derivative
ROUNDING = 16 * torch.finfo(DTYPE).eps  # a change within this fraction of |L| is rounding, not an increase
LINE_SEARCH_HALVINGS = 30
# the widest features (D+1) preconditioned by the Hessian's blocks; wider ones by the Kronecker
# approximation. On a 2-core AMD EPYC (AVX512-BF16) a probe's fits took, blocks vs Kronecker:
# 128-d CoMM features (10 classes, 10,000 pairs) 1.6 vs 4.6 s; 512-d random projections 14.9 vs
# 3.8 s; 900-d factor products 10.2 vs 1.7 s (the same optimum either way: tested)
BLOCK_JACOBI_MAX = 257
SOLVER = "newton-cg (block-Jacobi or Kronecker preconditioned), float64"


def class_weights(y: Tensor, n_classes: int) -> Tensor:
    """scikit-learn's ``class_weight="balanced"``: w_i = N / (M * N_{y_i}); (N,) from (N,) labels in 0..M-1."""
    counts = torch.bincount(y, minlength=n_classes).to(torch.float64)
    return (len(y) / (n_classes * counts.clamp(min=1)))[y]


def logistic_objectives(w: Tensor, b: Tensor, x: Tensor, y: Tensor, sample_w: Tensor, cs: Tensor) -> Tensor:
    """scikit-learn's L2 logistic objectives, one per value of C, each divided by sum(w): (K,)

        L_k = [ sum_i w_i * CE(x_i W_k + b_k, y_i) + ||W_k||^2 / (2 C_k) ] / sum_i w_i

    x: (N, D), y: (N,) in 0..M-1, sample_w: (N,), w: (K, D, Q), b: (K, Q), cs: (K,).
    Q = M classes with softmax, or Q = 1 (a sigmoid on class 1's logit) when M = 2, as
    scikit-learn fits a binary label.
    """
    logits = torch.einsum("nd,kdq->knq", x, w) + b[:, None, :]  # (K, N, Q)
    if w.shape[-1] == 1:
        target = y.to(logits.dtype).expand(len(cs), -1)  # (K, N)
        ce = F.binary_cross_entropy_with_logits(logits[..., 0], target, reduction="none")
    else:
        ce = F.cross_entropy(logits.permute(0, 2, 1), y.expand(len(cs), -1), reduction="none")  # (K, N)
    return ((ce * sample_w).sum(1) + (w ** 2).sum((1, 2)) / (2 * cs)) / sample_w.sum()


def logistic_objective(w: Tensor, b: Tensor, x: Tensor, y: Tensor, sample_w: Tensor, cs: Tensor) -> Tensor:
    """The sum of ``logistic_objectives``: the K problems are independent, so the minimiser
    of the sum is each problem's own minimiser."""
    return logistic_objectives(w, b, x, y, sample_w, cs).sum()


@dataclass(frozen=True)
class LogisticProblem:
    """One probe fit: the L2 logistic regressions of x (N, D) and labels y (N,) in
    0..n_classes-1 for every C in ``cs``, class-weighted when ``balanced``; ``init``: a
    starting point (W (K, D, Q), b (K, Q)), e.g. the solution at the chosen C on a subset."""

    x: Tensor
    y: Tensor
    n_classes: int
    cs: tuple[float, ...]
    balanced: bool = True
    init: Optional[tuple[Tensor, Tensor]] = None

    @property
    def outputs(self) -> int:
        return 1 if self.n_classes == 2 else self.n_classes


@dataclass(frozen=True)
class Solution:
    """One problem's fits, one per C: weights W (K, D, Q), biases b (K, Q), and how each was
    reached: Newton steps taken, the final max |gradient|, and whether it met TOLERANCE."""

    w: Tensor
    b: Tensor
    iterations: list[int]
    gradient: list[float]
    converged: list[bool]


def batch_bytes(n: int, d: int, q: int, k: int) -> int:
    """Peak bytes of one problem (N samples, D features, Q outputs, K values of C) inside a
    ``solve_logistic_many`` batch (the problems of a batch add up): the padded features in
    float64 and float32, the preconditioner (the per-class Hessian blocks, float32 while built,
    float64, their Cholesky factors; or the second moment's eigenbasis) and the (K, N, Q) activations of the objective, the line search and a
    Hessian-vector product (about 16 of them live). Measured against the peak resident
    memory on CPU by ``benchmarks/probe_memory.py`` (docs/probes.md)."""
    d1 = d + 1
    features = 12 * n * d1 + 4 * n * d1  # xb (float64), its float32 copy, one weighted copy while a block is built
    if d1 <= BLOCK_JACOBI_MAX:  # float64 blocks and their factors, the float32 block being built
        blocks = k * q * d1 * d1 * (8 + 8) + 4 * d1 * d1
    else:  # the second moment, its eigenbasis and eigh's workspace
        blocks = 3 * 8 * d1 * d1
    activations = 16 * 8 * k * n * q + 8 * n * (q + 2)  # ~16 float64 (K, N, Q) arrays live at once; targets, weights
    vectors = 8 * 12 * k * d1 * q  # theta, gradient, CG's x, r, z, p, Ap, the trial point
    return features + blocks + activations + vectors


class _Batch:
    """Padded problems (G of them, K values of C each) and the functions of theta (G, K, D+1, Q)
    the solver needs, with the shapes of ``solve_logistic_many``."""

    def __init__(self, xb: Tensor, target: Tensor, a: Tensor, reg: Tensor):
        self.xb, self.target, self.a, self.reg = xb, target, a, reg  # (G,N,D+1), (G,N,Q), (G,N), (G,K,D+1,1)
        self.x32, self.a32 = xb.float(), a.float()
        self._gram: Optional[tuple[Tensor, Tensor]] = None

    def select(self, keep: Tensor) -> "_Batch":
        out = _Batch(self.xb[keep], self.target[keep], self.a[keep], self.reg[keep])
        out._gram = None if self._gram is None else (self._gram[0][keep], self._gram[1][keep])
        return out

    def logits(self, theta: Tensor) -> Tensor:
        return times_features(self.xb, theta)  # (G, K, N, Q)

    def proba(self, z: Tensor) -> Tensor:
        return torch.sigmoid(z) if z.shape[-1] == 1 else torch.softmax(z, -1)

    def objective(self, theta: Tensor, z: Tensor) -> Tensor:
        """sum_i a_i CE_i + reg ||theta||^2 / 2: (G, K)."""
        t = self.target[:, None]  # (G, 1, N, Q)
        if z.shape[-1] == 1:
            ce = F.binary_cross_entropy_with_logits(z[..., 0], t[..., 0].expand_as(z[..., 0]), reduction="none")
        else:
            ce = -(t * torch.log_softmax(z, -1)).sum(-1)  # (G, K, N)
        return (ce * self.a[:, None]).sum(-1) + 0.5 * (self.reg * theta ** 2).sum((-2, -1))

    def gradient(self, theta: Tensor, p: Tensor) -> Tensor:
        """sum_i a_i (p_i - t_i) (x) x_i + reg theta: (G, K, D+1, Q)."""
        residual = self.a[:, None, :, None] * (p - self.target[:, None])  # (G, K, N, Q)
        return features_times(self.xb, residual) + self.reg * theta

    def hessian_times(self, v: Tensor, p: Tensor) -> Tensor:
        """H v with H = sum_i a_i S_i (x) x_i x_i^T + diag(reg), S_i = diag(p_i) - p_i p_i^T
        (p (1 - p) for Q = 1), never formed: two products with the features, in float32 (a
        Newton direction needs no more: where the fit stops is decided by the float64 gradient)."""
        u = times_features(self.x32, v.float())  # (G, K, N, Q)
        p32 = p.float()
        s = p32 * u - p32 * (p32 * u).sum(-1, keepdim=True) if p.shape[-1] > 1 else p32 * (1 - p32) * u
        hv = features_times(self.x32, self.a32[:, None, :, None] * s)
        return hv.to(DTYPE) + self.reg * v

    def block_factors(self, p: Tensor) -> Tensor:
        """Cholesky factors of the Hessian's diagonal blocks, one per class q:
        sum_i a_i p_iq (1 - p_iq) x_i x_i^T + diag(reg) (+ a trace-relative jitter where the
        bias's curvature vanishes): (G, K, Q, D+1, D+1). Built in float32 (a preconditioner
        needs no more), factored in float64."""
        g_, k, n, q = p.shape
        d1 = self.xb.shape[-1]
        x = self.x32  # (G, N, D+1)
        xt = x.transpose(1, 2)[:, None]  # (G, 1, D+1, N)
        weight = (self.a32[:, None, :, None] * p * (1 - p)).float()  # (G, K, N, Q)
        blocks = torch.empty(g_, k, q, d1, d1, dtype=DTYPE, device=p.device)
        for j in range(k):  # one weighted copy of the features at a time, not K x Q of them
            for c in range(q):
                blocks[:, j, c] = ((xt[:, 0] * weight[:, j, None, :, c]) @ x).to(DTYPE)  # (G, D+1, D+1)
        diag = blocks.diagonal(dim1=-2, dim2=-1)  # (G, K, Q, D+1), a view
        diag += self.reg[:, :, None, :, 0]
        diag += 1e-10 * diag.mean(-1, keepdim=True) + 1e-300
        factors, info = torch.linalg.cholesky_ex(blocks)
        bad = info != 0
        if bool(bad.any()):  # a block singular in float64: its diagonal alone preconditions it
            fallback = torch.diag_embed(diag.sqrt())
            factors = torch.where(bad[..., None, None], fallback, factors)
        return factors

    def gram_basis(self) -> tuple[Tensor, Tensor]:
        """The eigendecomposition of each problem's weighted second moment sum_i a_i x_i x_i^T:
        (U (G, D+1, D+1), eigenvalues (G, D+1)), computed once per batch (the weights a are fixed)."""
        if self._gram is None:
            moment = features_times(self.xb, self.a[:, None, :, None] * self.xb[:, None])  # (G, 1, D+1, D+1)
            eig, basis = torch.linalg.eigh(moment[:, 0])
            self._gram = (basis, eig.clamp(min=0))
        return self._gram

    def preconditioner(self, p: Tensor) -> Preconditioner:
        """The block-Jacobi preconditioner (``block_factors``) where its blocks are cheap to
        rebuild (D+1 <= BLOCK_JACOBI_MAX), else the Kronecker one (``preconditioners.Kronecker``)."""
        if self.xb.shape[-1] <= BLOCK_JACOBI_MAX:
            return Blocks(self.block_factors(p))
        return Kronecker(*self.gram_basis(), (self.a[:, None, :, None] * p * (1 - p)).sum(2),  # (G, K, Q)
                          self.reg[:, :, 0, 0])


def _dot(u: Tensor, v: Tensor) -> Tensor:
    return (u * v).sum((-2, -1))  # (G, K)


def cg_check_interval(device: torch.device) -> int:
    """CG iterations between the host's reads of whether any still runs on ``device``."""
    return CG_CHECK_EVERY if is_gpu(device) else 1


def _newton_direction(batch: _Batch, g: Tensor, p: Tensor, forcing: Tensor, precondition) -> Tensor:
    """An approximate solution d of H d = -g by CG preconditioned by ``precondition``
    (``_Batch.preconditioner``), stopped per problem when ||r|| <= forcing ||g|| (the
    Eisenstat-Walker forcing term makes the steps superlinear)."""
    d = torch.zeros_like(g)
    r = -g
    z = precondition(r)
    direction = z
    rz = _dot(r, z)
    target = forcing * g.flatten(2).norm(dim=-1)  # (G, K)
    active = r.flatten(2).norm(dim=-1) > target
    # whether any CG still runs is a read-back: every iteration on CPU (free there), every
    # CG_CHECK_EVERY on a GPU (an iteration past the last is exact: inactive entries take alpha 0)
    check = cg_check_interval(g.device)
    for it in range(CG_ITERATIONS):
        if it % check == 0 and not bool(active.any()):
            break
        hp = batch.hessian_times(direction, p)
        curvature = _dot(direction, hp)
        alpha = torch.where(active & (curvature > 0), rz / curvature.clamp(min=1e-300), torch.zeros_like(rz))
        d = d + alpha[..., None, None] * direction
        r = r - alpha[..., None, None] * hp
        active = active & (curvature > 0) & (r.flatten(2).norm(dim=-1) > target)
        z = precondition(r)
        rz_new = _dot(r, z)
        beta = torch.where(active, rz_new / rz.clamp(min=1e-300), torch.zeros_like(rz))
        direction = z + beta[..., None, None] * direction
        rz = rz_new
    # a direction CG could not improve on (no positive curvature met): the preconditioned gradient
    fallback = _dot(d, g) >= 0
    return torch.where(fallback[..., None, None], precondition(-g), d)


def solve_logistic_many(problems: Sequence[LogisticProblem], iterations: Optional[int] = None,
                        tolerance: float = TOLERANCE) -> list[Solution]:
    """Many probe fits solved as one batch on their device (every task x representation x C
    of a model): each problem's fits at its float64 optimum (``Solution``). The problems must
    share Q (the number of outputs) and their number of Cs; their features and labels may
    differ in N and D: each is padded to the largest, padded samples with weight 0 (each
    problem has its own sample weights), padded features with value 0 (their penalised
    weights stay 0), so each problem's optimum is the one it has alone. A problem leaves the
    batch when all its fits meet ``tolerance``."""
    if len({p.outputs for p in problems}) > 1 or len({len(p.cs) for p in problems}) > 1:
        raise InputError("solve_logistic_many: the problems of one batch share their number of outputs and of Cs")
    dev = problems[0].x.device
    q, k = problems[0].outputs, len(problems[0].cs)
    n, d = max(len(p.x) for p in problems), max(p.x.shape[1] for p in problems)
    g_ = len(problems)
    xb = torch.zeros(g_, n, d + 1, dtype=DTYPE, device=dev)  # (G, N, D+1): padded, ones last
    target = torch.zeros(g_, n, q, dtype=DTYPE, device=dev)  # (G, N, Q)
    a = torch.zeros(g_, n, dtype=DTYPE, device=dev)  # (G, N): 0 on padded samples
    reg = torch.zeros(g_, k, d + 1, 1, dtype=DTYPE, device=dev)  # (G, K, D+1, 1): 0 on the bias
    theta = torch.zeros(g_, k, d + 1, q, dtype=DTYPE, device=dev)
    for i, p in enumerate(problems):
        m, y, dp = len(p.x), p.y.long(), p.x.shape[1]
        xb[i, :m, :dp] = p.x.to(DTYPE)
        xb[i, :m, d] = 1.0
        target[i, :m] = y[:, None].to(DTYPE) if q == 1 else F.one_hot(y, q).to(DTYPE)
        w = class_weights(y, p.n_classes) if p.balanced else torch.ones(m, dtype=DTYPE, device=dev)
        a[i, :m] = w / w.sum()
        c = torch.tensor(p.cs, dtype=DTYPE, device=dev)
        reg[i, :, :d, 0] = (1.0 / (c * w.sum()))[:, None]
        if p.init is not None:
            theta[i, :, :dp] = p.init[0].to(DTYPE)
            theta[i, :, d] = p.init[1].to(DTYPE)
    theta, steps, gmax = _solve(_Batch(xb, target, a, reg), theta, iterations or NEWTON_ITERATIONS, tolerance)
    out = []
    for i, p in enumerate(problems):
        dp = p.x.shape[1]
        out.append(Solution(theta[i, :, :dp], theta[i, :, d], steps[i].tolist(), gmax[i].tolist(),
                            (gmax[i] <= tolerance).tolist()))
    return out


def _solve(batch: _Batch, theta: Tensor, iterations: int, tolerance: float) -> tuple[Tensor, Tensor, Tensor]:
    """(theta, Newton steps taken (G, K), final max |gradient| (G, K)) from the start theta."""
    g_, k = theta.shape[:2]
    dev = theta.device
    solved = theta.clone()
    steps = torch.zeros(g_, k, dtype=torch.long, device=dev)
    gmax = torch.full((g_, k), float("inf"), dtype=DTYPE, device=dev)
    live = torch.arange(g_, device=dev)
    theta = centred(theta)  # the same predictions, a penalty no larger
    precondition = None
    z = batch.logits(theta)
    p, current = batch.proba(z), batch.objective(theta, z)
    for step in range(iterations + 1):
        g = batch.gradient(theta, p)
        norm = g.abs().amax((-2, -1))  # (G, K)
        done = norm <= tolerance
        gmax[live] = norm
        steps[live] = torch.where(done, steps[live], torch.full_like(steps[live], min(step + 1, iterations)))
        finished = done.all(-1)  # (G,): the one read-back of a step
        if bool(finished.any()) or step == iterations:
            solved[live] = theta
            keep = ~finished
            if step == iterations or not bool(keep.any()):
                break
            live, theta, g, p, current, norm, done = live[keep], theta[keep], g[keep], p[keep], current[keep], \
                norm[keep], done[keep]
            batch = batch.select(keep)
            precondition = precondition.select(keep) if precondition is not None else None
        forcing = norm.sqrt().clamp(max=0.5)  # (G, K)
        if step & (step - 1) == 0:  # steps 0, 1, 2, 4, 8, ...: the curvature settles
            precondition = None  # the old one freed before the new blocks are built (their peak is one set)
            precondition = batch.preconditioner(p)
        d = _newton_direction(batch, g, p, forcing, precondition)
        d = torch.where(done[..., None, None], torch.zeros_like(d), d)  # a converged fit stays where it is
        slope = _dot(g, d)  # (G, K), < 0 for a descent direction
        t = torch.ones_like(current)
        accepted = done.clone()
        new_theta, new_p, new_obj = theta, p, current
        for _ in range(LINE_SEARCH_HALVINGS):
            trial = theta + t[..., None, None] * d
            zt = batch.logits(trial)
            ft = batch.objective(trial, zt)
            ok = (ft <= current + ARMIJO * t * slope) | ((ft - current).abs() <= ROUNDING * current.abs())
            ok = ~accepted & ok & torch.isfinite(ft)
            new_theta = torch.where(ok[..., None, None], trial, new_theta)
            new_p = torch.where(ok[..., None, None], batch.proba(zt), new_p)
            new_obj = torch.where(ok, ft, new_obj)
            accepted = accepted | ok
            if bool(accepted.all()):
                break
            t = torch.where(accepted, t, t / 2)
        theta, p, current = new_theta, new_p, new_obj
    return solved, steps, gmax


def fit_logistic_many(problems: Sequence[LogisticProblem], iterations: Optional[int] = None) -> list[tuple[Tensor, Tensor]]:
    """``solve_logistic_many``'s weights alone: (W (K, D, Q), b (K, Q)) per problem."""
    return [(s.w, s.b) for s in solve_logistic_many(problems, iterations)]


def fit_logistic(x: Tensor, y: Tensor, n_classes: int, cs: Sequence[float], balanced: bool = True,
                 iterations: Optional[int] = None) -> tuple[Tensor, Tensor]:
    """The L2 logistic regressions of every C in ``cs`` at once, to their float64 optimum on
    x's device: (W (K, D, Q), b (K, Q)), Q as in ``logistic_objectives``; ``balanced``:
    class-weighted. One ``solve_logistic_many`` problem."""
    return fit_logistic_many([LogisticProblem(x, y, n_classes, tuple(cs), balanced)], iterations)[0]


def logistic_proba(w: Tensor, b: Tensor, x: Tensor) -> Tensor:
    """Class probabilities (K, N, M) of fitted ``fit_logistic`` weights on x (N, D)."""
    logits = torch.einsum("nd,kdq->knq", x.to(w.dtype), w) + b[:, None, :]  # (K, N, Q)
    if w.shape[-1] == 1:
        p1 = torch.sigmoid(logits)
        return torch.cat([1 - p1, p1], -1)  # (K, N, 2)
    return torch.softmax(logits, -1)
