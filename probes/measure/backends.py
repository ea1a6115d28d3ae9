"""Where the probes' classifiers are fitted: scikit-learn on the host, or torch on a device.

A backend fits the probe protocol's two classifiers and returns fitted models with
scikit-learn's interface (``predict``, ``predict_proba``, ``classes_``, numpy in and out):

    backend.logistic(x, y, cs, seed, balanced) -> one model per C in cs
    backend.logistic_many([LogisticFit, ...])   -> the models of each fit (torch: one batched solve)
    backend.mlp(x, y, hidden, seed)             -> one model (classes already balanced by the caller)

The protocol itself (standardising, the held-out quarter, choosing C, refitting) is
``probes.measure.classifiers``', the same for every backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from comm_diag.errors import InputError
from comm_diag.probes.measure import logistic_fit, torch_fit
from comm_diag.probes.measure.host_fit import EARLY_STOP_MIN, LogisticFit, SklearnBackend
from comm_diag.probes.measure.optimum import fit_record
from comm_diag.comm.runtime import is_gpu

MEMORY_BUDGET_CPU = 256 * 2**20  # bytes one batched solve may hold on the host (memory_budget)


@dataclass
class _Fitted:
    """A torch classifier behind scikit-learn's predict / predict_proba (numpy in and out)."""

    proba_fn: Callable[[torch.Tensor], torch.Tensor]  # (N, D) on the device -> (N, M)
    classes_: np.ndarray
    device: torch.device
    dtype: torch.dtype  # the fitted parameters': the features are cast to it
    fit_record_: Optional[dict] = None  # a logistic fit's: solver, C, iterations, gradient, converged
    weights: Optional[tuple[torch.Tensor, torch.Tensor]] = None  # a logistic fit's (W (D, Q), b (Q,))

    @property
    def coef_(self) -> np.ndarray:
        return self.weights[0].T.cpu().numpy()  # (Q, D), scikit-learn's layout

    @property
    def intercept_(self) -> np.ndarray:
        return self.weights[1].cpu().numpy()  # (Q,)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.proba_fn(torch.as_tensor(x, dtype=self.dtype, device=self.device)).double().cpu().numpy()

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.classes_[self.predict_proba(x).argmax(1)]


@dataclass
class TorchBackend:
    """torch on ``device``: every C of a grid fitted at once to the stated optimum
(``logistic_fit``: float64 Newton-CG), and
    scikit-learn's MLP (same initialisation, objective, Adam settings and stopping rule)."""

    device: torch.device = torch.device("cpu")
    name = "torch"

    def _encode(self, x: np.ndarray, y: np.ndarray, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        classes, codes = np.unique(y, return_inverse=True)
        return (torch.as_tensor(x, dtype=dtype, device=self.device),
                torch.as_tensor(codes, device=self.device), classes)

    def logistic(self, x: np.ndarray, y: np.ndarray, cs: Sequence[float], seed: int, balanced: bool = True) -> list:
        return self.logistic_many([LogisticFit(x, y, tuple(cs), seed, balanced)])[0]

    def logistic_many(self, fits: Sequence[LogisticFit]) -> list[list]:
        """Every fit's models, the fits that share a number of outputs and of Cs solved as
        one batch (``logistic_fit.solve_logistic_many``), in batches whose peak memory
        (``logistic_fit.batch_bytes``) fits ``memory_budget``."""
        problems, classes = [], []
        for f in fits:
            xt, yt, cl = self._encode(f.x, f.y, logistic_fit.DTYPE)
            init = None if f.init is None else tuple(torch.as_tensor(np.asarray(v), dtype=logistic_fit.DTYPE,
                                                                     device=self.device) for v in f.init)
            if init is not None:  # scikit-learn's layout (Q, D), (Q,) -> one C's (1, D, Q), (1, Q)
                init = (init[0].T[None].expand(len(f.cs), -1, -1), init[1][None].expand(len(f.cs), -1))
            problems.append(logistic_fit.LogisticProblem(xt, yt, len(cl), tuple(f.cs), f.balanced, init))
            classes.append(cl)
        solved: list = [None] * len(fits)
        for batch in self._batches(problems):
            for i, s in zip(batch, logistic_fit.solve_logistic_many([problems[i] for i in batch])):
                solved[i] = [_Fitted(lambda z, w=s.w[k:k + 1], b=s.b[k:k + 1]: logistic_fit.logistic_proba(w, b, z)[0],
                                     classes[i], self.device, logistic_fit.DTYPE,
                                     fit_record(f"torch {logistic_fit.SOLVER}", c, s.iterations[k], s.gradient[k]),
                                     (s.w[k], s.b[k]))
                             for k, c in enumerate(fits[i].cs)]
        return solved

    def _batches(self, problems: Sequence) -> list[list[int]]:
        """Indices of problems solved together: same outputs and number of Cs, their
        ``logistic_fit.batch_bytes`` (at the batch's largest N and D) within ``memory_budget``."""
        budget, groups = self.memory_budget(), {}
        for i, p in enumerate(problems):
            groups.setdefault((p.outputs, len(p.cs)), []).append(i)
        out = []
        for (q, k), members in groups.items():
            batch, n, d = [], 0, 0
            for i in members:
                pn, pd = problems[i].x.shape
                grown = (len(batch) + 1) * logistic_fit.batch_bytes(max(n, pn), max(d, pd), q, k)
                if batch and grown > budget:
                    out.append(batch)
                    batch, n, d = [], 0, 0
                batch.append(i)
                n, d = max(n, pn), max(d, pd)
            out.append(batch)
        return out

    def memory_budget(self) -> int:
        """Bytes one batched solve may hold: half the GPU's free memory; on the host
        MEMORY_BUDGET_CPU (batches that leave the caches are no faster than their problems
        one by one there)."""
        if is_gpu(self.device):
            return torch.cuda.mem_get_info(self.device)[0] // 2
        return MEMORY_BUDGET_CPU

    def mlp(self, x: np.ndarray, y: np.ndarray, hidden: int, seed: int):
        xt, yt, classes = self._encode(x, y, torch.float32)
        early = len(x) >= EARLY_STOP_MIN
        validation = None
        if early:  # scikit-learn's split: a stratified 10%
            fit, val = train_test_split(np.arange(len(x)), test_size=torch_fit.MLP_VALIDATION, stratify=y,
                                        random_state=seed)
            fit_t, val_t = (torch.as_tensor(i, device=self.device) for i in (fit, val))
            validation = (xt[val_t], yt[val_t])
            xt, yt = xt[fit_t], yt[fit_t]
        model = torch_fit.fit_mlp(xt, yt, len(classes), hidden, seed, early, validation=validation)
        return _Fitted(model.proba, classes, self.device, torch.float32)


BACKENDS: dict[str, Callable[[torch.device], object]] = {
    "sklearn": lambda device: SklearnBackend(),
    "torch": lambda device: TorchBackend(torch.device(device)),
}


def backend_name(name: str, device: torch.device | str = "cpu") -> str:
    """The backend ``name`` stands for on ``device`` (``auto``: torch, on every device: the
    same solver to the same optimum on a laptop and on a GPU; scikit-learn, run to the same
    optimum, is the slower cross-check)."""
    if name == "auto":
        name = "torch"
    if name not in BACKENDS:
        raise InputError(f"unknown probe backend {name!r}; choose from auto, {', '.join(BACKENDS)}")
    return name


def backend_for(name: str, device: torch.device | str = "cpu"):
    """The named backend's fitter on ``device`` (``backend_name``)."""
    return BACKENDS[backend_name(name, device)](torch.device(device))
