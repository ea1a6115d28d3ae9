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


def information_bits(y: np.ndarray, proba: np.ndarray, classes: np.ndarray,
                     train_prior: Optional[np.ndarray] = None) -> float:
    """The variational lower bound I(Z; T) >= H(T) - CE(T | Z) on test labels, in bits.

        CE = -1/N sum_i log2 q(y_i | z_i),   q calibrated to the test distribution

    ``proba``: NxK probabilities of a probe over ``classes``. A class-weighted probe
    predicts as if classes were equally frequent; ``train_prior`` (K,) corrects it back
    to the label frequencies, q(t|z) ~ proba(t|z) * prior(t) (Bayes' rule with the
    balanced prior divided out). Any q gives a valid lower bound; an overconfident probe
    makes it negative, vacuous, and it is then reported as 0.
    """
    q = np.asarray(proba, dtype=float)
    if train_prior is not None:
        q = q * np.asarray(train_prior, dtype=float)[None, :]
        q = q / q.sum(axis=1, keepdims=True)
    index = {c: k for k, c in enumerate(classes.tolist())}
    cols = np.array([index.get(t, -1) for t in y.tolist()])
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
