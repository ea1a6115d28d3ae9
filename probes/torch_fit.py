"""The probes' two classifiers in torch, on any device: scikit-learn's LogisticRegression
(lbfgs) and MLPClassifier (adam), same objectives and defaults, so that a run trained on a
GPU is probed there (no host round trip per fit) and a C grid is fitted as one tensor.

Pure functions of (features, labels, settings, seed); ``probes.backends`` wraps them in the
fitted-model interface the probe protocol uses (``predict``, ``predict_proba``, ``classes_``).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

# To convergence, where scikit-learn's probe stops at max_iter=100: on CoMM features its
# balanced accuracy then differs from the optimum's by up to 3.3 points (README, "On a
# GPU"); run to convergence, the two agree within 0.6 points and 0.01 bits.
LBFGS_ITERATIONS = 1000
LBFGS_TOLERANCE = 1e-6  # on the largest gradient entry of the sample-averaged objective
TOLERANCE_CHANGE = 1e-9
DTYPE = torch.float32


def class_weights(y: Tensor, n_classes: int) -> Tensor:
    """scikit-learn's ``class_weight="balanced"``: w_i = N / (M * N_{y_i}); (N,) from (N,) labels in 0..M-1."""
    counts = torch.bincount(y, minlength=n_classes).to(torch.float64)
    return (len(y) / (n_classes * counts.clamp(min=1)))[y]


def logistic_objective(w: Tensor, b: Tensor, x: Tensor, y: Tensor, sample_w: Tensor, cs: Tensor) -> Tensor:
    """Sum over the K values of C of scikit-learn's L2 logistic objectives, each divided by sum(w):

        L_k = [ sum_i w_i * CE(x_i W_k + b_k, y_i) + ||W_k||^2 / (2 C_k) ] / sum_i w_i

    x: (N, D), y: (N,) in 0..M-1, sample_w: (N,), w: (K, D, Q), b: (K, Q), cs: (K,).
    Q = M classes with softmax, or Q = 1 (a sigmoid on class 1's logit) when M = 2, as
    scikit-learn fits a binary label. The K problems are independent, so the minimiser of
    the sum is each problem's own minimiser.
    """
    logits = torch.einsum("nd,kdq->knq", x, w) + b[:, None, :]  # (K, N, Q)
    if w.shape[-1] == 1:
        target = y.to(logits.dtype).expand(len(cs), -1)  # (K, N)
        ce = F.binary_cross_entropy_with_logits(logits[..., 0], target, reduction="none")
    else:
        ce = F.cross_entropy(logits.permute(0, 2, 1), y.expand(len(cs), -1), reduction="none")  # (K, N)
    total = sample_w.sum()
    return ((ce * sample_w).sum(1) + (w ** 2).sum((1, 2)) / (2 * cs)).sum() / total


def fit_logistic(x: Tensor, y: Tensor, n_classes: int, cs: Sequence[float], balanced: bool = True,
                 iterations: Optional[int] = None) -> tuple[Tensor, Tensor]:
    """The L2 logistic regressions of every C in ``cs`` at once, by L-BFGS in float64:
    (W (K, D, Q), b (K, Q)), Q as in ``logistic_objective``; ``balanced``: class-weighted."""
    x, y = x.to(DTYPE), y.long()
    q = 1 if n_classes == 2 else n_classes
    sample_w = (class_weights(y, n_classes) if balanced else torch.ones(len(y), device=x.device)).to(DTYPE)
    c = torch.tensor(list(cs), dtype=DTYPE, device=x.device)
    w = torch.zeros(len(cs), x.shape[1], q, dtype=DTYPE, device=x.device, requires_grad=True)
    b = torch.zeros(len(cs), q, dtype=DTYPE, device=x.device, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=iterations or LBFGS_ITERATIONS, tolerance_grad=LBFGS_TOLERANCE,
                            tolerance_change=TOLERANCE_CHANGE, history_size=10, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        loss = logistic_objective(w, b, x, y, sample_w, c)
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


def logistic_proba(w: Tensor, b: Tensor, x: Tensor) -> Tensor:
    """Class probabilities (K, N, M) of fitted ``fit_logistic`` weights on x (N, D)."""
    logits = torch.einsum("nd,kdq->knq", x.to(w.dtype), w) + b[:, None, :]  # (K, N, Q)
    if w.shape[-1] == 1:
        p1 = torch.sigmoid(logits)
        return torch.cat([1 - p1, p1], -1)  # (K, N, 2)
    return torch.softmax(logits, -1)


# scikit-learn's MLPClassifier defaults (solver="adam")
MLP_LR, MLP_ALPHA, MLP_BATCH, MLP_TOL, MLP_PATIENCE, MLP_VALIDATION = 1e-3, 1e-4, 200, 1e-4, 10, 0.1


class MLP(torch.nn.Module):
    """One hidden ReLU layer; Glorot-uniform weights and biases (bound sqrt(6 / (fan_in + fan_out))),
    as scikit-learn initialises them; Q = 1 output logit for two classes, else M."""

    def __init__(self, d: int, hidden: int, n_classes: int, gen: torch.Generator):
        super().__init__()
        q = 1 if n_classes == 2 else n_classes
        self.hidden, self.out = torch.nn.Linear(d, hidden), torch.nn.Linear(hidden, q)
        with torch.no_grad():
            for layer in (self.hidden, self.out):
                bound = math.sqrt(6.0 / (layer.in_features + layer.out_features))
                for p in (layer.weight, layer.bias):
                    p.copy_(torch.rand(p.shape, generator=gen, device=p.device) * 2 * bound - bound)

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
            max_epochs: int = 300, validation: Optional[tuple[Tensor, Tensor]] = None) -> MLP:
    """scikit-learn's MLPClassifier(adam) on x (N, D), y (N,): mini-batches of 200 shuffled per
    epoch; stops when the score has not improved by 1e-4 for 10 epochs (the validation
    accuracy of ``validation`` with ``early_stopping``, keeping its best weights; else the
    training loss), or after ``max_epochs``."""
    dev = x.device
    gen = torch.Generator(device=dev).manual_seed(seed)
    model = MLP(x.shape[1], hidden, n_classes, gen).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=MLP_LR, betas=(0.9, 0.999), eps=1e-8)
    batch = min(MLP_BATCH, len(x))
    best, stale, best_state = -math.inf, 0, None
    for _ in range(max_epochs):
        order = torch.randperm(len(x), generator=gen, device=dev)
        total = torch.zeros((), device=dev)
        for s in range(0, len(x), batch):
            i = order[s:s + batch]
            loss = model.loss(x[i], y[i])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * len(i)
        if early_stopping:
            with torch.no_grad():
                score = (model(validation[0]).argmax(1) if n_classes > 2
                         else (model(validation[0])[:, 0] > 0).long()).eq(validation[1]).float().mean().item()
        else:
            score = -(total / len(x)).item()  # one read-back per epoch, not per step
        if score > best + MLP_TOL:
            stale = 0
        else:
            stale += 1
        if score > best:
            best = score
            if early_stopping:
                best_state = {k: v.clone() for k, v in model.state_dict().items()}
        if stale > MLP_PATIENCE:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return model.eval()
