"""The tasks, declared once: each task's label rule, classes, interaction (R/U/S), PID atom,
and the training data it is read from. The PID (``pid``), the probes, the sweeps, the
reports and ``check`` all read them from here; adding a task is adding an entry to ``TASKS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from comm_diag.errors import InputError
from comm_diag.trifeature_gen.factors import FACTOR_SIZES, factor_index
from comm_diag.trifeature_gen.pairs import synergy_label
from comm_diag.trifeature_gen.spec import DatasetSpec

Label = Callable[[Sequence[np.ndarray], DatasetSpec, np.ndarray], np.ndarray]  # (codes per modality, spec, mapping)

# the interactions and their names in reports and verdicts
INTERACTION_NAMES = {"R": "redundancy", "U": "uniqueness", "S": "synergy"}


@dataclass(frozen=True)
class Task:
    """A label of a pair, and what reading it from a representation measures.

    ``label(fs, spec, mapping)``: the factor codes of every modality, ``fs[i]`` those of
    x(i+1) (..., 3), -> (...) int labels, for arrays of any leading shape (samples, or the
    PID's grid of every combination). A task reads the modalities it names: a dataset of n
    modalities gives it all n.
    """

    name: str
    interaction: str  # R | U | S
    pid_atom: str  # the PID atom that is this task's ground truth: redundant | unique1 | unique2 | synergistic
    label: Label
    classes: Callable[[DatasetSpec], int]  # how many values the label takes
    trained_on: str  # unbiased | synergy: the training data a run is probed for it after (paper, Figure 4)
    reported: bool = True  # the task that stands for its interaction in verdicts (U: texture of x1)
    description: str = ""  # what the label is, in a report's legend (default: the task's name)

    def chance(self, spec: DatasetSpec = DatasetSpec()) -> float:
        """Balanced accuracy of a constant or random predictor, in %: 100 / number of classes."""
        return 100.0 / self.classes(spec)


def _attribute(role: str, of: int) -> Label:
    """The label 'attribute ``spec.<role>`` of x``of``'."""
    return lambda fs, spec, mapping: fs[of - 1][..., factor_index(getattr(spec, role))]


def _values(role: str) -> Callable[[DatasetSpec], int]:
    return lambda spec: FACTOR_SIZES[factor_index(getattr(spec, role))]


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("redundancy", "R", "redundant", _attribute("shared", 1), _values("shared"), "unbiased",
         description="the attribute both images share (shape)"),
    Task("uniqueness1", "U", "unique1", _attribute("unique", 1), _values("unique"), "unbiased",
         description="texture of x1"),
    Task("uniqueness2", "U", "unique2", _attribute("unique", 2), _values("unique"), "unbiased", reported=False,
         description="texture of x2"),
    Task("synergy", "S", "synergistic", lambda fs, spec, mapping: synergy_label(fs[0], fs[1], spec, mapping),
         lambda spec: 2, "synergy", description="the synergy label, fused into the representation"),
)}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise InputError(f"unknown task {name!r}; choose from {', '.join(TASKS)}")
    return TASKS[name]


def reported_task(interaction: str) -> str:
    """The task that stands for an interaction (R, U, S) in reports and verdicts."""
    return next(t.name for t in TASKS.values() if t.interaction == interaction and t.reported)
