"""The probed tasks as the probes read them: labels of a pair set, chance levels, exact bits.
The tasks themselves are declared once, in ``comm_diag.trifeature_gen.tasks``."""

from __future__ import annotations

import numpy as np

import comm_diag.trifeature_gen as tg
from comm_diag.trifeature_gen.tasks import INTERACTION_NAMES, TASKS as TASK_DEFS, get_task, reported_task

NAMES = INTERACTION_NAMES


# Read at call time, never snapshotted at import: a task added to TASKS reaches every caller.
def task_names() -> tuple[str, ...]:
    """Every task's name, in the order probes and tables use."""
    return tuple(TASK_DEFS)


def interactions() -> dict[str, str]:
    """Interaction (R, U, S) -> the task it is read from in reports and verdicts (U: texture of x1)."""
    return {k: reported_task(k) for k in INTERACTION_NAMES}


def tasks_after(training: str) -> tuple[str, ...]:
    """The tasks a run is probed for after training on ``training`` data (unbiased |
    synergy; all: every task, when one dataset serves for everything)."""
    return tuple(n for n, t in TASK_DEFS.items() if training in (t.trained_on, "all"))


def ground_truth_bits(ds: tg.Dataset, pair_set: str = "test") -> dict[str, float]:
    """task -> the exact bits of its own interaction in the pair set's law (the manifest's PID)."""
    pid = ds.manifest["pid"][pair_set]
    return {task: float(pid[task][TASK_DEFS[task].pid_atom]) for task in task_names() if task in pid}


def task_labels(ds: tg.Dataset, pair_set: str) -> dict[str, np.ndarray]:
    """task -> (P,) int labels of the samples of one set (every modality's factors read)."""
    fs = [ds.factors_of(pair_set, i) for i in range(ds.n_modalities)]  # Px3 codes per modality
    return {name: t.label(fs, ds.spec, ds.mapping) for name, t in TASK_DEFS.items()}


def chance(task: str, spec: tg.DatasetSpec = tg.DatasetSpec()) -> float:
    """Balanced accuracy of a constant or random predictor, in %: 100 / number of classes."""
    return get_task(task).chance(spec)


def interaction_of(task: str) -> str:
    """R, U or S: the interaction a task measures."""
    return get_task(task).interaction


def short_name(task: str) -> str:
    """The task's label in figures and tables: its interaction (R, S), numbered when several
    tasks measure it (U1, U2)."""
    same = [n for n, t in TASK_DEFS.items() if t.interaction == interaction_of(task)]
    return interaction_of(task) if len(same) == 1 else f"{interaction_of(task)}{same.index(task) + 1}"
