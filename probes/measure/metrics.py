"""Scores as pure functions of labels and predictions."""

from __future__ import annotations

from typing import Optional

import numpy as np
from sklearn.metrics import roc_auc_score


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean over the classes present in y of the recall of that class, in %.

        BA = 100/K sum_k |{i: y_i = k, pred_i = k}| / |{i: y_i = k}|

    A constant prediction scores 100/K whatever the class balance.
    """
    classes = np.unique(y)
    return float(100.0 * np.mean([(pred[y == k] == k).mean() for k in classes]))


def balanced_accuracy_se(y: np.ndarray, pred: np.ndarray) -> float:
    """The standard error (points of %) of ``balanced_accuracy`` over the test pairs: each
    class's recall is a binomial proportion over its n_k pairs, the classes independent,

        SE = 100/K sqrt( sum_k r_k (1 - r_k) / n_k ),   r_k = (hits_k + 1) / (n_k + 2)

    (r_k with one pseudo-hit and one pseudo-miss, so a recall of 0% or 100% still has an
    error), and 0 for a constant prediction, whose balanced accuracy is 100/K on any sample.
    It measures the sampling of pairs given the test images; pairs that share an image are
    not independent, so the error over new test images is larger (seeds of the data show it)."""
    classes = np.unique(y)
    if len(np.unique(pred)) == 1:
        return 0.0
    var = 0.0
    for k in classes:
        n = int((y == k).sum())
        r = ((pred[y == k] == k).sum() + 1.0) / (n + 2.0)
        var += r * (1.0 - r) / n
    return float(100.0 * np.sqrt(var) / len(classes))


def auroc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve of a binary label (y in {0, 1}) for a real score, in %."""
    if len(np.unique(y)) < 2:
        return float("nan")
    return float(100.0 * roc_auc_score(y, score))


def entropy_bits(y: np.ndarray) -> float:
    """H(T) of the empirical label distribution, in bits."""
    _, counts = np.unique(y, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def _label_columns(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    index = {c: k for k, c in enumerate(classes.tolist())}
    return np.array([index.get(t, -1) for t in y.tolist()])  # -1: a label the probe never saw


def fit_calibration(proba: np.ndarray, y: np.ndarray, classes: np.ndarray) -> tuple[float, np.ndarray]:
    """(T, beta): the map q(t|z) = softmax(T log p(z) + beta)_t that minimises the negative
    log-likelihood of held-out labels y (N,) under a probe's probabilities p (N, K):
    temperature scaling with one offset per class (Platt scaling for two classes). The
    offsets learn the label frequencies, so a class-weighted probe (whose probabilities are
    those of a balanced prior) needs no separate prior correction. Fitted on the probe's
    held-out split, never on test."""
    from scipy.optimize import minimize

    s = np.log(np.clip(np.asarray(proba, dtype=float), 1e-12, 1.0))  # (N, K)
    cols = _label_columns(y, classes)
    s, cols = s[cols >= 0], cols[cols >= 0]
    onehot = np.eye(s.shape[1])[cols]  # (N, K)

    def nll(params: np.ndarray) -> tuple[float, np.ndarray]:
        z = params[0] * s + params[1:]
        z = z - z.max(1, keepdims=True)
        logq = z - np.log(np.exp(z).sum(1, keepdims=True))
        r = np.exp(logq) - onehot  # d nll / dz, per sample
        return float(-(onehot * logq).sum() / len(s)), np.concatenate([[(r * s).sum() / len(s)], r.mean(0)])

    start = np.concatenate([[1.0], np.zeros(s.shape[1])])
    fitted = minimize(nll, start, jac=True, method="L-BFGS-B", bounds=[(0.0, None)] + [(None, None)] * s.shape[1])
    return float(fitted.x[0]), fitted.x[1:]


def calibrated(proba: np.ndarray, calibration: tuple[float, np.ndarray]) -> np.ndarray:
    """Probabilities (N, K) through a ``fit_calibration`` map."""
    t, beta = calibration
    z = t * np.log(np.clip(np.asarray(proba, dtype=float), 1e-12, 1.0)) + beta
    z = z - z.max(1, keepdims=True)
    q = np.exp(z)
    return q / q.sum(1, keepdims=True)


def information_bits(y: np.ndarray, proba: np.ndarray, classes: np.ndarray,
                     train_prior: Optional[np.ndarray] = None) -> float:
    """The variational lower bound I(Z; T) >= H(T) - CE(T | Z) on test labels, in bits.

        CE = -1/N sum_i log2 q(y_i | z_i)

    ``proba``: NxK probabilities q of a probe over ``classes`` (the probes pass them through
    ``calibrated``, fitted on held-out probe data). ``train_prior`` (K,): for uncalibrated
    probabilities of a class-weighted probe, the training label frequencies, q(t|z) ~
    proba(t|z) * prior(t) (Bayes' rule with the balanced prior divided out). Any q gives a
    valid lower bound; an overconfident one makes it negative, vacuous, and it is then
    reported as 0.
    """
    q = np.asarray(proba, dtype=float)
    if train_prior is not None:
        q = q * np.asarray(train_prior, dtype=float)[None, :]
        q = q / q.sum(axis=1, keepdims=True)
    cols = _label_columns(y, classes)
    p_true = np.where(cols >= 0, q[np.arange(len(y)), np.maximum(cols, 0)], 0.0)
    ce = float(-np.log2(np.clip(p_true, 1e-12, 1.0)).mean())
    return max(0.0, entropy_bits(y) - ce)  # I >= 0 always: a negative bound says nothing, and reads 0


def mean_ci95(values: list[float]) -> tuple[float, float, float]:
    """Mean, sample std and half-width of the 95% t interval of the mean (0 for one value)."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return float(v.mean()), 0.0, 0.0
    std = float(v.std(ddof=1))
    return float(v.mean()), std, float(stats.t.ppf(0.975, len(v) - 1) * std / np.sqrt(len(v)))
