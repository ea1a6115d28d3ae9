"""The CoMM authors' linear probe as they run it (Duplums/CoMM at f1fc87f,
``evaluation/linear_probe.py`` and ``evaluation/logistic_regression.py``, read, not copied),
each fit solved to its optimum. It is an added protocol (``--probe authors``), reported under
its own name, never in place of comm-diag's probe.

Their objective, on the raw features (not standardised), bias unpenalised, no class weights:

    L(W, b) = 1/N sum_i CE(softmax(W x_i + b), y_i) + (0.5 / C) ||W||_F
    x_i: (D,), W: (K, D) for the K classes in the training labels, b: (K,)

The penalty is the norm, not its square: for C small enough the optimum is exactly W = 0
(``||grad_W L_CE(0, b*)||_F <= 0.5 / C`` with b* the log class frequencies), and elsewhere L
is smooth, so a fit is either that closed form or L-BFGS (scipy, float64) to max |grad L| <=
``optimum.TOLERANCE``. The bias is centred (adding a constant to every class's bias changes
nothing), so the optimum is unique. They stop L-BFGS after 100 iterations from zero; solving
to the optimum makes the probe's number one number on every machine.

Their choice of C (``search``): on a stratified split, 60% to fit and 40% to score by balanced
(macro) accuracy, first 1e-6, 1e-4, ..., 1e6; then 29 values log-spaced over two decades
either side of the best (kept within 1e-6 ... 1e6), searched by halving: score the values
at a quarter, half and three quarters of the list, keep the half (or the middle half)
around the best of them, until one value is left; the best visited cost wins (the coarse
winner first among equals). The chosen C is refitted on all training features.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
from scipy.optimize import minimize

from comm_diag.probes.measure.optimum import TOLERANCE, fit_record

COARSE = tuple(10.0 ** k for k in range(-6, 7, 2))  # their first sweep
FINE_POINTS, FINE_DECADES = 29, 2.0  # their second sweep: 29 values over +-2 decades
C_RANGE = (1e-6, 1e6)
FIT_FRACTION = 0.6  # of the training features, to fit while C is chosen (stratified)
MAX_ITER = 300  # L-BFGS iterations, then a fit is recorded as not converged (a nearly separable
# problem at a large C can need thousands: its number is then not the stated optimum, and says so)


def fine_grid(best: float) -> list[float]:
    """The second sweep's costs around the coarse winner ``best``."""
    grid = np.logspace(math.log10(best) - FINE_DECADES, math.log10(best) + FINE_DECADES, FINE_POINTS)
    return [float(c) for c in grid if C_RANGE[0] * (1 - 1e-9) <= c <= C_RANGE[1] * (1 + 1e-9)]


def search(score: Callable[[float], float]) -> tuple[float, dict[float, float]]:
    """Their choice of C: (the best cost, every visited cost's score in visiting order),
    calling ``score(C)`` (held-out balanced accuracy) once per cost."""
    coarse = {c: score(c) for c in COARSE}
    best = max(coarse, key=coarse.get)  # the first of equal scores: the smallest C
    visited = {best: coarse[best]}

    def at(c: float) -> float:
        for v in visited:  # the fine grid's centre is the coarse winner up to rounding
            if math.isclose(v, c, rel_tol=1e-9):
                return visited[v]
        visited[c] = score(c)
        return visited[c]

    costs = fine_grid(best)
    while len(costs) > 1:
        quarter, half, last_quarter = len(costs) // 4, len(costs) // 2, -(-len(costs) // 4)
        low, mid, high = costs[quarter], costs[half], costs[-last_quarter]
        scores = [at(low), at(mid), at(high)]
        top = max(scores)
        if top == scores[0]:
            costs = costs[:half]
        elif top == scores[2]:
            costs = costs[half:]
        else:
            costs = costs[quarter:-last_quarter]
    return max(visited, key=visited.get), visited


@dataclass
class AuthorsModel:
    """A fitted probe: ``predict_proba``, ``predict``, ``classes_``, ``coef_`` (K, D),
    ``intercept_`` (K,) and ``fit_record_`` (the stated optimum's record)."""

    coef_: np.ndarray
    intercept_: np.ndarray
    classes_: np.ndarray
    fit_record_: dict = field(default_factory=dict)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        z = np.asarray(x, dtype=np.float64) @ self.coef_.T + self.intercept_  # NxK
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(1, keepdims=True)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.classes_[self.predict_proba(x).argmax(1)]


def _ce_gradients(w: np.ndarray, b: np.ndarray, x: np.ndarray, codes: np.ndarray) -> tuple:
    """The mean cross-entropy and its gradients at (w KxD, b K): x NxD, codes (N,)."""
    z = x @ w.T + b  # NxK
    z -= z.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    residual = np.exp(logp)
    residual[np.arange(len(codes)), codes] -= 1.0
    residual /= len(x)  # NxK: (p - onehot) / N
    return -logp[np.arange(len(codes)), codes].mean(), residual.T @ x, residual.sum(0)


def optimality(w: np.ndarray, b: np.ndarray, x: np.ndarray, codes: np.ndarray, c: float) -> float:
    """max |grad L| at (w, b), in float64: the rule every fit is checked by. At w = 0, where
    the norm has no gradient, the smallest subgradient's: ``max(||grad_W CE||_F - 0.5/C, 0)``."""
    x = np.asarray(x, dtype=np.float64)
    _, gw, gb = _ce_gradients(np.asarray(w, np.float64), np.asarray(b, np.float64), x, codes)
    lam, norm = 0.5 / c, float(np.linalg.norm(w))
    if norm == 0.0:
        return float(max(np.linalg.norm(gw) - lam, 0.0, np.abs(gb).max()))
    return float(max(np.abs(gw + lam * w / norm).max(), np.abs(gb).max()))


def fit(x: np.ndarray, codes: np.ndarray, c: float, n_classes: int,
        init: Optional[tuple[np.ndarray, np.ndarray]] = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """The optimum (w KxD, centred b K, record) of their objective for codes (N,) in 0..K-1."""
    x = np.asarray(x, dtype=np.float64)
    n, d = x.shape
    lam = 0.5 / c
    freq = np.bincount(codes, minlength=n_classes) / n
    b0 = np.log(np.maximum(freq, 0.5 / n))  # the optimal bias while W = 0 (a class absent: nearly)
    b0 -= b0.mean()
    _, g0, _ = _ce_gradients(np.zeros((n_classes, d)), b0, x, codes)
    if np.linalg.norm(g0) <= lam:  # W = 0 is the optimum: the closed form
        w = np.zeros((n_classes, d))
        return w, b0, fit_record("closed-form", c, 0, optimality(w, b0, x, codes, c))
    if init is not None and np.linalg.norm(init[0]) > 0:
        start = np.concatenate([np.ravel(init[0]), init[1]])
    else:  # a step down the gradient, off W = 0 where the norm has no gradient
        start = np.concatenate([np.ravel(-g0 / np.linalg.norm(g0) * 1e-2), b0])

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:-n_classes].reshape(n_classes, d), theta[-n_classes:]  # KxD, K
        ce, gw, gb = _ce_gradients(w, b, x, codes)
        norm = np.linalg.norm(w)
        gw = gw + (lam * w / norm if norm > 0 else 0.0)
        return ce + lam * norm, np.concatenate([np.ravel(gw), gb])

    # L-BFGS stops at max |gradient| <= TOLERANCE (its projected gradient, no bounds), never on
    # a small change of L
    res = minimize(objective, start, jac=True, method="L-BFGS-B",
                   options={"maxiter": MAX_ITER, "maxfun": 2 * MAX_ITER, "gtol": TOLERANCE, "ftol": 0.0,
                            "maxcor": 30})
    w, b = res.x[:-n_classes].reshape(n_classes, d), res.x[-n_classes:]
    b = b - b.mean()
    return w, b, fit_record("lbfgs", c, res.nit, optimality(w, b, x, codes, c))
