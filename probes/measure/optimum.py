"""The linear probe's stated optimum, in a module without torch (a host fit worker imports it):
the stopping rule every backend meets and the record of how each fit met it.

    L(W, b) = sum_i a_i CE(x_i W + b, y_i) + ||W||^2 / (2 C sum_i w_i),   a_i = w_i / sum_j w_j

(scikit-learn's L2 logistic objective divided by the sum of the sample weights w, the
"balanced" class weights or ones). A fit has reached the optimum when

    max |grad L| <= TOLERANCE

computed in float64 on the features it was fitted to. ``max_gradient`` is that number for any
fitted (coef, intercept), so a fit of any solver is checked by the same rule.
"""

from __future__ import annotations

import numpy as np

TOLERANCE = 1e-8


def sample_weights(codes: np.ndarray, n_classes: int, balanced: bool) -> np.ndarray:
    """scikit-learn's ``class_weight="balanced"`` per sample (N / (M N_y)), or ones: (N,)."""
    if not balanced:
        return np.ones(len(codes))
    counts = np.bincount(codes, minlength=n_classes).astype(float)
    return (len(codes) / (n_classes * np.maximum(counts, 1)))[codes]


def max_gradient(coef: np.ndarray, intercept: np.ndarray, x: np.ndarray, codes: np.ndarray, c: float,
                 balanced: bool) -> float:
    """max |grad L| at (coef (Q, D), intercept (Q,)), scikit-learn's layout: Q = 1 for two
    classes (the logit of class 1), else one row per class; codes (N,) in 0..M-1."""
    x = np.asarray(x, dtype=np.float64)
    coef, intercept = np.asarray(coef, dtype=np.float64), np.asarray(intercept, dtype=np.float64)
    n_classes = max(int(codes.max()) + 1, 2 if coef.shape[0] == 1 else coef.shape[0])
    w = sample_weights(codes, n_classes, balanced)
    a = w / w.sum()
    z = x @ coef.T + intercept  # (N, Q)
    if coef.shape[0] == 1:
        residual = (1.0 / (1.0 + np.exp(-z[:, 0])) - (codes == 1))[:, None]  # (N, 1)
    else:
        z = z - z.max(1, keepdims=True)
        residual = np.exp(z)
        residual /= residual.sum(1, keepdims=True)
        residual[np.arange(len(codes)), codes] -= 1.0  # (N, Q): p - onehot
    grad_w = (a[:, None] * residual).T @ x + coef / (c * w.sum())
    grad_b = (a[:, None] * residual).sum(0)
    return float(max(np.abs(grad_w).max(), np.abs(grad_b).max()))


def fit_record(solver: str, c: float, iterations: int, gradient: float) -> dict:
    """One fit as probes.json records it: solver, C, iterations, final max |gradient|, and
    whether it met the stopping rule."""
    return {"solver": solver, "C": float(c), "iterations": int(iterations), "gradient": float(gradient),
            "converged": bool(gradient <= TOLERANCE)}
