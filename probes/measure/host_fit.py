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
from typing import Optional, Sequence

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from comm_diag.probes.measure.optimum import TOLERANCE, fit_record, max_gradient

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
    init: Optional[tuple[np.ndarray, np.ndarray]] = None  # a start (coef (Q, D), intercept (Q,)): the refit's


@dataclass(frozen=True)
class MLPFit:
    """A probe protocol's request for one MLP fit, answered with ``[model]``."""

    x: np.ndarray
    y: np.ndarray
    hidden: int
    seed: int


@dataclass
class SklearnBackend:
    """scikit-learn: LogisticRegression(newton-cg) on float64 features to the stated optimum
    (``optimum.TOLERANCE`` on max |gradient|, scikit-learn's own stopping rule for newton-cg),
    each C of a grid warm-started from the previous one's solution, a refit from its
    ``init``; MLPClassifier(adam).

    Each fitted model carries ``fit_record_`` (solver, iterations, the final max |gradient|
    recomputed by ``optimum.max_gradient``, converged). Until 0.8 this backend ran lbfgs at
    scikit-learn's default 100 iterations, unconverged: its numbers were up to 5.5 points
    from the optimum (docs/probes.md)."""

    max_iter: int = 1000
    tol: float = TOLERANCE
    name = "sklearn"

    def logistic(self, x: np.ndarray, y: np.ndarray, cs: Sequence[float], seed: int, balanced: bool = True,
                 init: Optional[tuple[np.ndarray, np.ndarray]] = None) -> list:
        x = np.asarray(x, dtype=np.float64)  # scikit-learn fits float32 features in float32, short of the optimum
        codes = np.unique(y, return_inverse=True)[1]
        out = []
        for c in cs:
            clf = LogisticRegression(C=c, class_weight="balanced" if balanced else None, solver="newton-cg",
                                     max_iter=self.max_iter, tol=self.tol, random_state=seed,
                                     warm_start=init is not None)
            if init is not None:  # scikit-learn starts from the coef_ and intercept_ it finds on the estimator
                clf.coef_, clf.intercept_ = np.array(init[0], dtype=np.float64), np.array(init[1], dtype=np.float64)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                clf.fit(x, y)
            clf.fit_record_ = fit_record("scikit-learn newton-cg", c, int(np.max(clf.n_iter_)),
                                         max_gradient(clf.coef_, clf.intercept_, x, codes, c, balanced))
            out.append(clf)
            init = (clf.coef_, clf.intercept_)  # the next C starts here
        return out

    def logistic_many(self, fits: Sequence[LogisticFit]) -> list[list]:
        return [self.logistic(f.x, f.y, f.cs, f.seed, f.balanced, f.init) for f in fits]

    def mlp(self, x: np.ndarray, y: np.ndarray, hidden: int, seed: int):
        clf = MLPClassifier((hidden,), early_stopping=len(x) >= EARLY_STOP_MIN, max_iter=300, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return clf.fit(x, y)


# The reference probe: scikit-learn run to the stated optimum (tests/probes/test_backends.py and
# benchmarks/probe_agreement.py hold the torch backend to it)
CONVERGED = SklearnBackend()
