"""The probed tasks: labels of a pair set and their chance levels."""

from __future__ import annotations

import numpy as np

import comm_diag.trifeature_gen as tg
from comm_diag.trifeature_gen.factors import FACTOR_SIZES, factor_index

TASKS = ("redundancy", "uniqueness1", "uniqueness2", "synergy")
INTERACTION_OF = {"redundancy": "R", "uniqueness1": "U", "uniqueness2": "U", "synergy": "S"}
# the PID atom (manifest["pid"][pair_set][task]) that is the task's ground truth, in bits
COMPONENT_OF = {"redundancy": "redundant", "uniqueness1": "unique1", "uniqueness2": "unique2",
                "synergy": "synergistic"}


def ground_truth_bits(ds: tg.Dataset, pair_set: str = "test") -> dict[str, float]:
    """task -> the exact bits of its own interaction in the pair set's law (the manifest's PID)."""
    pid = ds.manifest["pid"][pair_set]
    return {task: float(pid[task][COMPONENT_OF[task]]) for task in TASKS if task in pid}


def task_labels(ds: tg.Dataset, pair_set: str) -> dict[str, np.ndarray]:
    """task -> (P,) int labels of the pairs of one set."""
    p, spec = ds.pairs[pair_set], ds.spec
    return {
        "redundancy": p.factors1[:, factor_index(spec.shared)],
        "uniqueness1": p.factors1[:, factor_index(spec.unique)],
        "uniqueness2": p.factors2[:, factor_index(spec.unique)],
        "synergy": p.synergy,
    }


# the task each interaction is read from in reports and verdicts (U: texture of x1), and its name
INTERACTIONS = {"R": "redundancy", "U": "uniqueness1", "S": "synergy"}
NAMES = {"R": "redundancy", "U": "uniqueness", "S": "synergy"}


def n_classes(task: str, spec: tg.DatasetSpec) -> int:
    """How many values a task's label takes: the attribute's values, or 2 for synergy."""
    if task == "synergy":
        return 2
    attribute = spec.shared if task == "redundancy" else spec.unique
    return FACTOR_SIZES[factor_index(attribute)]


def chance(task: str, spec: tg.DatasetSpec = tg.DatasetSpec()) -> float:
    """Balanced accuracy of a constant or random predictor, in %: 100 / number of classes."""
    return 100.0 / n_classes(task, spec)
