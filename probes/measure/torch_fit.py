"""The probes' two classifiers in torch, on any device: scikit-learn's LogisticRegression
(lbfgs) and MLPClassifier (adam), same objectives and defaults, so that a run trained on a
GPU is probed there (no host round trip per fit) and a C grid is fitted as one tensor.

Pure functions of (features, labels, settings, seed); ``probes.measure.backends`` wraps them in the
fitted-model interface the probe protocol uses (``predict``, ``predict_proba``, ``classes_``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

# The reference probe is the converged one: float64, stopped when the largest entry of the
# gradient of the sample-averaged objective is below NEWTON_TOLERANCE. 0.4.0 ran L-BFGS in
# float32 with a tolerance below float32's resolution, so its fits ran to their iteration cap
# and stopped wherever the machine's rounding left them (0.61 points apart on two CPUs), with
# ~27 host read-backs per iteration. Newton's method reaches the float64 optimum in a few
# dozen steps, each a handful of batched matrix products, with no read-back but one
# convergence check every CHECK_EVERY steps.
NEWTON_ITERATIONS = 200
NEWTON_TOLERANCE = 1e-9
CHECK_EVERY = 8
DTYPE = torch.float64


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


def _gradient_hessian(theta: Tensor, xb: Tensor, target: Tensor, a: Tensor, reg: Tensor) -> tuple[Tensor, Tensor]:
    """Gradient (G, K, P) and Hessian (G, K, P, P) of every L_gk at theta (G, K, D+1, Q),
    P = (D+1) Q, flattened d-major (index d Q + q): G problems of K values of C each.
    xb: (G, N, D+1) features with a last column of ones, target: (G, N, Q) one-hot (or the
    label for Q = 1), a: (G, N) each problem's sample weights summing to 1, reg: (G, K, D+1, 1),
    1 / (C_k sum w) on weights and 0 on the bias.

        g = sum_i a_i (p_i - t_i) (x) x_i + reg * theta
        H = sum_i a_i S_i (x) x_i x_i^T + diag(reg),  S_i = diag(p_i) - p_i p_i^T  (p(1-p) for Q = 1)

    The Hessian is built in float32 (a Newton direction needs no more; the gradient, which
    decides where the fit stops, is float64)."""
    g_, k, d1, q = theta.shape
    logits = torch.einsum("gnd,gkdq->gknq", xb, theta)  # (G, K, N, Q)
    p = torch.sigmoid(logits) if q == 1 else torch.softmax(logits, -1)
    g = torch.einsum("gnd,gknq->gkdq", xb, a[:, None, :, None] * (p - target[:, None])) + reg * theta
    x32 = xb.float()[:, None]  # (G, 1, N, D+1)
    xt32 = x32.transpose(-1, -2)  # (G, 1, D+1, N)
    p32, a32 = p.float(), a.float()[:, None]  # (G, K, N, Q), (G, 1, N)
    h = theta.new_zeros(g_, k, d1, q, d1, q, dtype=torch.float32)
    for i in range(q):
        for j in range(i, q):
            s = p32[..., i] * ((1.0 if i == j else 0.0) - p32[..., j]) * a32  # (G, K, N): a_n S_n[i, j]
            block = (xt32 * s[:, :, None, :]) @ x32  # (G, K, D+1, D+1)
            h[:, :, :, i, :, j] = block
            if j != i:
                h[:, :, :, j, :, i] = block
    h = h.to(theta.dtype).reshape(g_, k, d1 * q, d1 * q)  # (G, K, P, P)
    h = h + torch.diag_embed(reg.expand(-1, -1, -1, q).reshape(g_, k, d1 * q))
    return g.reshape(g_, k, d1 * q), h


def _objectives(theta: Tensor, xb: Tensor, target: Tensor, a: Tensor, reg: Tensor) -> Tensor:
    """``logistic_objectives`` of every (problem, C), (G, K), in ``_gradient_hessian``'s terms:
    sum_i a_i CE_i + reg * ||theta||^2 / 2 (the same objective divided by sum w)."""
    logits = torch.einsum("gnd,gkdq->gknq", xb, theta)  # (G, K, N, Q)
    if theta.shape[-1] == 1:
        ce = F.binary_cross_entropy_with_logits(logits[..., 0], target[:, None, :, 0].expand_as(logits[..., 0]),
                                                reduction="none")  # (G, K, N)
    else:
        ce = -(target[:, None] * torch.log_softmax(logits, -1)).sum(-1)  # (G, K, N)
    return (ce * a[:, None]).sum(-1) + 0.5 * (reg * theta ** 2).sum((-2, -1))


@dataclass(frozen=True)
class LogisticProblem:
    """One probe fit: the L2 logistic regressions of x (N, D) and labels y (N,) in
    0..n_classes-1 for every C in ``cs``, class-weighted when ``balanced``."""

    x: Tensor
    y: Tensor
    n_classes: int
    cs: tuple[float, ...]
    balanced: bool = True

    @property
    def outputs(self) -> int:
        return 1 if self.n_classes == 2 else self.n_classes


def fit_logistic(x: Tensor, y: Tensor, n_classes: int, cs: Sequence[float], balanced: bool = True,
                 iterations: Optional[int] = None) -> tuple[Tensor, Tensor]:
    """The L2 logistic regressions of every C in ``cs`` at once, to their float64 optimum on
    x's device: (W (K, D, Q), b (K, Q)), Q as in ``logistic_objective``; ``balanced``:
    class-weighted. One ``fit_logistic_many`` problem."""
    return fit_logistic_many([LogisticProblem(x, y, n_classes, tuple(cs), balanced)], iterations)[0]


def fit_logistic_many(problems: Sequence[LogisticProblem], iterations: Optional[int] = None) -> list[tuple[Tensor, Tensor]]:
    """Many probe fits solved as one batch on their device (every task x representation x C
    of a model): each problem's (W (K, D, Q), b (K, Q)) at its float64 optimum. The problems
    must share Q (the number of outputs) and their number of Cs; their features and labels
    may differ in N and D: each is padded to the largest, padded samples with weight 0 (each
    problem has its own sample weights), padded features with value 0 (their penalised
    weights stay 0), so each problem's optimum is the one it has alone.

    Damped Newton (Levenberg-Marquardt): each step solves (H + lam I) delta = g for every
    (problem, C) in one batched Cholesky, and each keeps its step only where it lowers its
    objective (then lam shrinks 3x; else it grows 10x): the accept/reject is a ``torch.where``
    on the device, so the loop waits for the device only at a convergence check every
    CHECK_EVERY steps (max |g| < NEWTON_TOLERANCE for every problem)."""
    if len({p.outputs for p in problems}) > 1 or len({len(p.cs) for p in problems}) > 1:
        raise ValueError("fit_logistic_many: the problems of one batch share their number of outputs and of Cs")
    dev = problems[0].x.device
    q, k = problems[0].outputs, len(problems[0].cs)
    n, d = max(len(p.x) for p in problems), max(p.x.shape[1] for p in problems)
    xb = torch.zeros(len(problems), n, d + 1, dtype=DTYPE, device=dev)  # (G, N, D+1): padded, ones last
    target = torch.zeros(len(problems), n, q, dtype=DTYPE, device=dev)  # (G, N, Q)
    a = torch.zeros(len(problems), n, dtype=DTYPE, device=dev)  # (G, N): 0 on padded samples
    reg = torch.zeros(len(problems), k, d + 1, 1, dtype=DTYPE, device=dev)  # (G, K, D+1, 1): 0 on the bias
    for i, p in enumerate(problems):
        m, y = len(p.x), p.y.long()
        xb[i, :m, :p.x.shape[1]] = p.x.to(DTYPE)
        xb[i, :m, d] = 1.0
        target[i, :m] = y[:, None].to(DTYPE) if q == 1 else F.one_hot(y, q).to(DTYPE)
        w = class_weights(y, p.n_classes) if p.balanced else torch.ones(m, dtype=DTYPE, device=dev)
        a[i, :m] = w / w.sum()
        c = torch.tensor(p.cs, dtype=DTYPE, device=dev)
        reg[i, :, :d, 0] = (1.0 / (c * w.sum()))[:, None]
    theta = _newton(xb, target, a, reg, iterations or NEWTON_ITERATIONS)
    return [(theta[i, :, :p.x.shape[1]], theta[i, :, d]) for i, p in enumerate(problems)]


def _newton(xb: Tensor, target: Tensor, a: Tensor, reg: Tensor, iterations: int) -> Tensor:
    """theta (G, K, D+1, Q) minimising ``_objectives`` (shapes as in ``_gradient_hessian``).
    A problem whose K fits have converged leaves the batch at the next check, so the others'
    steps do not carry it (on the host a batch then costs what its problems cost one by one)."""
    g_, k, d1 = reg.shape[:3]
    q = target.shape[-1]
    dev = xb.device
    solved = torch.zeros(g_, k, d1, q, dtype=DTYPE, device=dev)
    live = torch.arange(g_, device=dev)  # the problems still in the batch
    theta = solved.clone()
    lam = torch.full((g_, k), 1e-3, dtype=DTYPE, device=dev)
    eye = torch.eye(d1 * q, dtype=DTYPE, device=dev)
    current = _objectives(theta, xb, target, a, reg)
    for step in range(iterations):
        g, h = _gradient_hessian(theta, xb, target, a, reg)
        if step % CHECK_EVERY == 0:
            done = g.abs().amax((1, 2)) < NEWTON_TOLERANCE  # (G,)
            if bool(done.any()):  # the only read-back
                solved[live[done]] = theta[done]
                keep = ~done
                if not bool(keep.any()):
                    return solved
                live, theta, lam, current, g, h = live[keep], theta[keep], lam[keep], current[keep], g[keep], h[keep]
                xb, target, a, reg = xb[keep], target[keep], a[keep], reg[keep]
        scale = h.diagonal(dim1=-2, dim2=-1).mean(-1)  # (G, K): lam is relative to the curvature
        chol, info = torch.linalg.cholesky_ex(h + (lam * scale)[..., None, None] * eye)
        delta = torch.cholesky_solve(g[..., None], chol)[..., 0].reshape(theta.shape)  # (G, K, D+1, Q)
        candidate = theta - delta
        trial = _objectives(candidate, xb, target, a, reg)
        better = (trial <= current) & (info == 0) & torch.isfinite(trial)  # (G, K)
        theta = torch.where(better[..., None, None], candidate, theta)
        current = torch.where(better, trial, current)
        lam = torch.where(better, (lam / 3).clamp(min=1e-12), (lam * 10).clamp(max=1e12))
    solved[live] = theta  # the iteration cap: where they are
    return solved


def logistic_proba(w: Tensor, b: Tensor, x: Tensor) -> Tensor:
    """Class probabilities (K, N, M) of fitted ``fit_logistic`` weights on x (N, D)."""
    logits = torch.einsum("nd,kdq->knq", x.to(w.dtype), w) + b[:, None, :]  # (K, N, Q)
    if w.shape[-1] == 1:
        p1 = torch.sigmoid(logits)
        return torch.cat([1 - p1, p1], -1)  # (K, N, 2)
    return torch.softmax(logits, -1)


# scikit-learn's MLPClassifier defaults (solver="adam")
MLP_LR, MLP_ALPHA, MLP_BATCH, MLP_TOL, MLP_PATIENCE, MLP_VALIDATION = 1e-3, 1e-4, 200, 1e-4, 10, 0.1
MLP_CHECK_EVERY = 8  # epochs between the host's reads of the stopping rule on a GPU


class MLP(torch.nn.Module):
    """One hidden ReLU layer; Glorot-uniform weights and biases (bound sqrt(6 / (fan_in + fan_out))),
    as scikit-learn initialises them; Q = 1 output logit for two classes, else M."""

    def __init__(self, d: int, hidden: int, n_classes: int, gen: torch.Generator):
        super().__init__()
        q = 1 if n_classes == 2 else n_classes
        # created where the generator lives, so the draws and the parameters share one device
        # (0.4.0 built them on the CPU and drew with a CUDA generator: every GPU probe crashed)
        dev = gen.device
        self.hidden = torch.nn.Linear(d, hidden, device=dev)
        self.out = torch.nn.Linear(hidden, q, device=dev)
        with torch.no_grad():
            for layer in (self.hidden, self.out):
                bound = math.sqrt(6.0 / (layer.in_features + layer.out_features))
                for p in (layer.weight, layer.bias):
                    p.copy_(torch.rand(p.shape, generator=gen, device=dev) * 2 * bound - bound)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(torch.relu(self.hidden(x)))  # (N, Q) logits

    def proba(self, x: Tensor) -> Tensor:
        logits = self(x)
        if logits.shape[1] == 1:
            p1 = torch.sigmoid(logits)
            return torch.cat([1 - p1, p1], 1)  # (N, 2)
        return torch.softmax(logits, 1)

    def loss(self, x: Tensor, y: Tensor) -> Tensor:
        """Mean log loss + alpha ||W||^2 / (2 batch), scikit-learn's (weights, not biases)."""
        logits = self(x)
        ce = F.binary_cross_entropy_with_logits(logits[:, 0], y.float()) if logits.shape[1] == 1 \
            else F.cross_entropy(logits, y)
        penalty = (self.hidden.weight ** 2).sum() + (self.out.weight ** 2).sum()
        return ce + MLP_ALPHA * penalty / (2 * len(y))


def fit_mlp(x: Tensor, y: Tensor, n_classes: int, hidden: int, seed: int, early_stopping: bool,
            max_epochs: int = 300, validation: Optional[tuple[Tensor, Tensor]] = None,
            check_every: Optional[int] = None) -> MLP:
    """scikit-learn's MLPClassifier(adam) on x (N, D), y (N,): mini-batches of 200 shuffled per
    epoch; stops when the score has not improved by 1e-4 for 10 epochs (the validation
    accuracy of ``validation`` with ``early_stopping``, keeping its best weights; else the
    training loss), or after ``max_epochs``.

    The shuffles of MLP_CHECK_EVERY epochs are drawn at once (one launch, not one per epoch).
    The stopping rule runs on the device, epoch by epoch, and freezes its result (the best
    weights, or the weights of the epoch it stopped at) when it fires; the host reads whether
    it fired every ``check_every`` epochs (default: every epoch on CPU, where a read-back
    costs nothing, every ``MLP_CHECK_EVERY`` on a GPU), so an epoch never waits for one there.
    The epochs trained past the stop change nothing returned: the same weights for any
    ``check_every`` (tested)."""
    dev = x.device
    check_every = check_every or (1 if dev.type == "cpu" else MLP_CHECK_EVERY)
    gen = torch.Generator(device=dev).manual_seed(seed)
    model = MLP(x.shape[1], hidden, n_classes, gen)
    # fused on a GPU: one launch updates every parameter (the probe takes thousands of small steps)
    opt = torch.optim.Adam(model.parameters(), lr=MLP_LR, betas=(0.9, 0.999), eps=1e-8,
                           **({"fused": True} if dev.type == "cuda" else {}))
    batch = min(MLP_BATCH, len(x))
    params = list(model.parameters())
    kept = [p.detach().clone() for p in params]  # the best weights, or those of the stopping epoch
    best = torch.full((), -math.inf, dtype=torch.float64, device=dev)
    stale = torch.zeros((), dtype=torch.int64, device=dev)
    stopped = torch.zeros((), dtype=torch.bool, device=dev)
    for epoch in range(max_epochs):
        if epoch % MLP_CHECK_EVERY == 0:  # the next epochs' shuffles in one draw (whatever check_every)
            orders = torch.rand(MLP_CHECK_EVERY, len(x), generator=gen, device=dev).argsort(1)  # (E, N)
        order = orders[epoch % MLP_CHECK_EVERY]
        total = torch.zeros((), device=dev)
        for s in range(0, len(x), batch):
            i = order[s:s + batch]
            loss = model.loss(x[i], y[i])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * len(i)
        with torch.no_grad():
            if early_stopping:
                score = (model(validation[0]).argmax(1) if n_classes > 2
                         else (model(validation[0])[:, 0] > 0).long()).eq(validation[1]).float().mean()
            else:
                score = -(total / len(x))
            score = score.double()  # compared in float64, as the host compared its .item()
            running = ~stopped
            stale = torch.where(running, torch.where(score > best + MLP_TOL, 0, stale + 1), stale)
            better = running & (score > best)
            best = torch.where(better, score, best)
            fired = running & (stale > MLP_PATIENCE)
            keep = better if early_stopping else fired
            for k, p in zip(kept, params):
                k.copy_(torch.where(keep, p, k))
            stopped = stopped | fired
        if (epoch + 1) % check_every == 0 and bool(stopped):  # one read-back every check_every epochs
            break
    if early_stopping or bool(stopped):
        with torch.no_grad():
            for k, p in zip(kept, params):
                p.copy_(k)
    return model.eval()
