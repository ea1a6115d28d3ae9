"""``comm-diag ablate NAME``: one of the paper's ablation studies (``studies.STUDIES``), run by
the one experiment pipeline.

The study folder holds ``sweep.json`` (which study, preset settings and datasets
wrote it), ``data/`` (the preset's datasets unless given), ``runs/NAME-KIND-seedS/``
(one per run) and the report (``report.md``, ``summary.csv``, ``figure4.png``,
``learning_curves.png``, ``expectations.json``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from . import pipeline
from .pipeline import StudySettings
from .studies import Study, get_study
from .sweep import Hooks, RunJob


def study_jobs(study: Study, out: Path, **settings) -> list[pipeline.RunJob]:
    """The study's runs in execution order (every config resolved); writes nothing.
    ``settings``: ``StudySettings`` fields."""
    return pipeline.study_jobs(study, Path(out), StudySettings(**settings))


def run_study(name: str, out: Path | str, *, hooks: Optional[Hooks] = None, executor: str = "local",
              **options) -> dict:
    """Run (or finish) a study and report on every run of it that is done; ``options``:
    ``StudySettings`` fields (preset_name, seeds, data, extra, only, epochs, every, ...) and
    the executor's (workers; address, cpus_per_run, gpus_per_run)."""
    return pipeline.run_with(get_study(name), out, hooks=hooks, executor=executor, **options)


__all__ = ["run_study", "study_jobs", "RunJob"]
