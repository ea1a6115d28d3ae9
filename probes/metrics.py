"""Scores as pure functions of labels and predictions."""

from __future__ import annotations

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


def mean_ci95(values: list[float]) -> tuple[float, float, float]:
    """Mean, sample std and half-width of the 95% t interval of the mean (0 for one value)."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return float(v.mean()), 0.0, 0.0
    std = float(v.std(ddof=1))
    return float(v.mean()), std, float(stats.t.ppf(0.975, len(v) - 1) * std / np.sqrt(len(v)))
