"""Where the probes' classifiers are fitted: scikit-learn on the host, or torch on a device.

A backend fits the probe protocol's two classifiers and returns fitted models with
scikit-learn's interface (``predict``, ``predict_proba``, ``classes_``, numpy in and out):

    backend.logistic(x, y, cs, seed, balanced) -> one model per C in cs
    backend.logistic_many([LogisticFit, ...])   -> the models of each fit (torch: one batched solve)
    backend.mlp(x, y, hidden, seed)             -> one model (classes already balanced by the caller)

The protocol itself (standardising, the held-out quarter, choosing C, refitting) is
``probes.classifiers``', the same for every backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from comm_diag.probes.measure import torch_fit
from comm_diag.probes.measure.host_fit import EARLY_STOP_MIN, LogisticFit, SklearnBackend

HESSIAN_BUDGET_CPU = 64 * 2**20  # bytes of Hessians in one batched solve on the host (hessian_budget)


@dataclass
class _Fitted:
    """A torch classifier behind scikit-learn's predict / predict_proba (numpy in and out)."""

    proba_fn: Callable[[torch.Tensor], torch.Tensor]  # (N, D) on the device -> (N, M)
    classes_: np.ndarray
    device: torch.device
    dtype: torch.dtype  # the fitted parameters': the features are cast to it

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.proba_fn(torch.as_tensor(x, dtype=self.dtype, device=self.device)).double().cpu().numpy()

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.classes_[self.predict_proba(x).argmax(1)]


@dataclass
class TorchBackend:
    """torch on ``device``: every C of a grid fitted at once (L-BFGS to convergence), and
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
        one batch (``torch_fit.fit_logistic_many``), in batches whose Hessians fit
        ``hessian_budget`` bytes."""
        problems, classes = [], []
        for f in fits:
            xt, yt, cl = self._encode(f.x, f.y, torch_fit.DTYPE)
            problems.append(torch_fit.LogisticProblem(xt, yt, len(cl), tuple(f.cs), f.balanced))
            classes.append(cl)
        solved: list = [None] * len(fits)
        for batch in self._batches(problems):
            for i, (w, b) in zip(batch, torch_fit.fit_logistic_many([problems[i] for i in batch])):
                solved[i] = [_Fitted(lambda z, w=w[k:k + 1], b=b[k:k + 1]: torch_fit.logistic_proba(w, b, z)[0],
                                     classes[i], self.device, torch_fit.DTYPE) for k in range(len(fits[i].cs))]
        return solved

    def _batches(self, problems: Sequence) -> list[list[int]]:
        """Indices of problems solved together: same outputs and number of Cs, at most
        ``hessian_budget`` bytes of Hessians (float64 and float32, at the batch's largest
        D) in one batch."""
        budget, groups = self.hessian_budget(), {}
        for i, p in enumerate(problems):
            groups.setdefault((p.outputs, len(p.cs)), []).append(i)
        out = []
        for members in groups.values():
            batch, largest = [], 0
            for i in members:
                p = problems[i]
                size = 12 * len(p.cs) * ((p.x.shape[1] + 1) * p.outputs) ** 2
                if batch and (len(batch) + 1) * max(largest, size) > budget:
                    out.append(batch)
                    batch, largest = [], 0
                batch.append(i)
                largest = max(largest, size)
            out.append(batch)
        return out

    def hessian_budget(self) -> int:
        """Bytes of Hessians one batched solve may hold: a quarter of the GPU's free memory
        (a batch's steps cost about what one problem's do there); on the host
        HESSIAN_BUDGET_CPU, which batches the small (binary) problems and solves the large
        ones alone: on 2 AVX2 cores nine 10-class problems (1,500 x 128, three Cs) took 51.7 s
        as one batch and 44 s one by one (the batch's Hessians, 360 MB, leave the caches)."""
        if self.device.type == "cuda":
            return torch.cuda.mem_get_info(self.device)[0] // 4
        return HESSIAN_BUDGET_CPU

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
    """The backend ``name`` stands for on ``device`` (``auto``: torch on a GPU, scikit-learn on
    CPU, where its numbers are the ones published by earlier versions)."""
    if name == "auto":
        name = "torch" if torch.device(device).type != "cpu" else "sklearn"
    if name not in BACKENDS:
        raise ValueError(f"unknown probe backend {name!r}; choose from auto, {', '.join(BACKENDS)}")
    return name


def backend_for(name: str, device: torch.device | str = "cpu"):
    """The named backend's fitter on ``device`` (``backend_name``)."""
    return BACKENDS[backend_name(name, device)](torch.device(device))
