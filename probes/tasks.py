"""The probed tasks: labels of a pair set and their chance levels."""

from __future__ import annotations

import numpy as np

import trifeature_gen as tg
from trifeature_gen.factors import factor_index

TASKS = ("redundancy", "uniqueness1", "uniqueness2", "synergy")
INTERACTION_OF = {"redundancy": "R", "uniqueness1": "U", "uniqueness2": "U", "synergy": "S"}


def task_labels(ds: tg.Dataset, pair_set: str) -> dict[str, np.ndarray]:
    """task -> (P,) int labels of the pairs of one set."""
    p, spec = ds.pairs[pair_set], ds.spec
    return {
        "redundancy": p.factors1[:, factor_index(spec.shared)],
        "uniqueness1": p.factors1[:, factor_index(spec.unique)],
        "uniqueness2": p.factors2[:, factor_index(spec.unique)],
        "synergy": p.synergy,
    }


def chance(task: str) -> float:
    """Balanced accuracy of a constant or random predictor, in %: 100 / number of classes."""
    return 50.0 if task == "synergy" else 10.0
