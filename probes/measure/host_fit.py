"""The host's fitter, scikit-learn, and the fit requests of the probe protocols, in a module
that does not import torch: a worker process that fits probes on the host
(``fit_workers``) imports this and ``classifiers`` only, so it starts in about a second
instead of the ~6 s that importing torch and the model code took on 2 cores.

    backend.logistic(x, y, cs, seed, balanced) -> one model per C in cs
    backend.logistic_many([LogisticFit, ...])   -> the models of each fit
    backend.mlp(x, y, hidden, seed)             -> one model (classes already balanced by the caller)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

EARLY_STOP_MIN = 2000  # an MLP stops early (on a 10% split) from this many samples; below, it trains to convergence


@dataclass(frozen=True)
class LogisticFit:
    """A probe protocol's request (``classifiers``): the logistic regressions of (x, y) for
    every C of ``cs``, answered with one fitted model per C."""

    x: np.ndarray
    y: np.ndarray
    cs: tuple[float, ...]
    seed: int
    balanced: bool = True


@dataclass(frozen=True)
class MLPFit:
    """A probe protocol's request for one MLP fit, answered with ``[model]``."""

    x: np.ndarray
    y: np.ndarray
    hidden: int
    seed: int


@dataclass
class SklearnBackend:
    """scikit-learn: LogisticRegression(lbfgs), one fit per C; MLPClassifier(adam).

    ``max_iter``: the logistic fits' iterations. 100 (scikit-learn's default, and every
    earlier version's) is the default, for comparable CPU numbers; run to convergence
    (e.g. 2000: 4-6x the time, scores moved by up to 3.3 points) it reaches the torch
    backend's optimum."""

    max_iter: int = 100
    tol: float = 1e-4  # scikit-learn's default; CONVERGED is the reference the torch backend is held to
    name = "sklearn"

    def logistic(self, x: np.ndarray, y: np.ndarray, cs: Sequence[float], seed: int, balanced: bool = True) -> list:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return [LogisticRegression(C=c, class_weight="balanced" if balanced else None, max_iter=self.max_iter,
                                       tol=self.tol, random_state=seed).fit(x, y) for c in cs]

    def logistic_many(self, fits: Sequence[LogisticFit]) -> list[list]:
        return [self.logistic(f.x, f.y, f.cs, f.seed, f.balanced) for f in fits]

    def mlp(self, x: np.ndarray, y: np.ndarray, hidden: int, seed: int):
        clf = MLPClassifier((hidden,), early_stopping=len(x) >= EARLY_STOP_MIN, max_iter=300, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return clf.fit(x, y)


# The reference probe: scikit-learn run to convergence (tests/probes/test_backends.py and
# benchmarks/probe_agreement.py hold the torch backend to it; on float64 features)
CONVERGED = SklearnBackend(max_iter=5000, tol=1e-8)
