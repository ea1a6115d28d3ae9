"""Progress callbacks of a long job: what a study, a calibration or a training tells whoever
draws its progress (the CLI's bars, a notebook's lines, nothing). Below the three rooms of
probes/ so that measuring, studies and presenting may all take them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from comm_diag.comm.train import StepInfo


@dataclass
class Hooks:
    """Progress callbacks of a long job (the CLI draws bars from them)."""

    on_stage: Callable[[str], None] = lambda msg: None
    on_generate: Optional[Callable[[int, int], None]] = None
    on_step: Optional[Callable[[StepInfo], None]] = None
    on_done: Optional[Callable[[Any], None]] = None  # a job finished (a studies.sweep.RunJob, any executor)
    on_job_step: Optional[Callable[[str, StepInfo], None]] = None  # a step of the named job (worker processes)
