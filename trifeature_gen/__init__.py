"""Seeded, batched generator of bimodal Trifeature datasets with exact PID ground truth.

Its names are imported on first use (PEP 562): ``import comm_diag.trifeature_gen`` and its
light modules (``factors``, ...) do not import torch, so ``comm-diag --help`` starts fast."""

from __future__ import annotations

import importlib

from comm_diag import __version__  # noqa: F401  (the package version, re-exported)

_WHERE = {
    "FACTOR_NAMES": "factors", "FACTOR_VALUES": "factors",
    "Dataset": "io", "DatasetError": "io", "PairSet": "io", "generate": "io", "load": "io", "verify": "io",
    "STYLE_REVISION": "geometry", "Trifeature": "render", "trial_pairs": "render",
    "PAIR_SETS": "spec", "DatasetSpec": "spec",
}

__all__ = [*_WHERE, "__version__"]


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value  # once
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
