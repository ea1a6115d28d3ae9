"""``comm-diag ablate NAME``: one of the paper's ablation studies or the dose-response study
(``studies.registry.STUDIES``), run by the one experiment pipeline.

The study folder holds ``sweep.json`` (which study, preset settings and datasets
wrote it), ``data/`` (the preset's datasets unless given), ``runs/NAME-KIND-seedS/``
(one per run) and the report (``report.md``, ``summary.csv``, ``figure4.png``,
``learning_curves.png``, ``expectations.json``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from comm_diag.errors import InputError
from comm_diag.comm.config import DEFAULT_METHODS

from comm_diag.probes.studies import pipeline
from comm_diag.probes.studies.dose import DOSE_LEVELS, dose_study
from comm_diag.probes.studies.pipeline import StudySettings
from comm_diag.probes.studies.registry import get_study
from comm_diag.probes.studies.study import Study
from comm_diag.probes.hooks import Hooks
from comm_diag.probes.studies.sweep import RunJob


def study_named(name: str, *, interactions: Optional[Sequence[str]] = None,
                levels: Optional[Sequence[float] | str] = None, methods: Optional[Sequence[str]] = None) -> Study:
    """A study of ``STUDIES`` by name; the dose study with its interactions, levels and
    methods (the others take none of them)."""
    if name != "dose":
        given = [k for k, v in (("interactions", interactions), ("levels", levels), ("methods", methods)) if v]
        if given:
            raise InputError(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for the dose study, "
                             f"not for {name!r}")
        return get_study(name)
    return dose_study(interactions or ("synergy",), DOSE_LEVELS if levels is None else levels, methods or DEFAULT_METHODS)


def planned_jobs(study: Study, out: Path, **settings) -> list[pipeline.RunJob]:
    """The study's runs in execution order (every config resolved); writes nothing.
    ``settings``: ``StudySettings`` fields."""
    return pipeline.study_jobs(study, Path(out), StudySettings(**settings))


def run_study(name: str, out: Path | str, *, interactions: Optional[Sequence[str]] = None,
              levels: Optional[Sequence[float] | str] = None, methods: Optional[Sequence[str]] = None,
              hooks: Optional[Hooks] = None, executor: str = "local", **options) -> dict:
    """Run (or finish) a study and report on every run of it that is done (``comm-diag
    ablate``); ``interactions``, ``levels``, ``methods``: the dose study's (``study_named``);
    ``options``: ``StudySettings`` fields (preset, seeds, data, extra, only, epochs,
    every, ...) and the executor's (workers; address, cpus_per_run, gpus_per_run)."""
    study = study_named(name, interactions=interactions, levels=levels, methods=methods)
    return pipeline.run_with(study, out, hooks=hooks, executor=executor, **options)


def prepare_study(name: str, out: Path | str, **settings) -> dict:
    """``pipeline.prepare`` for a study by name: its folder claimed, its datasets generated, nothing
    trained (a device check times the data apart, then ``run_study`` reuses them)."""
    settings_, _ = StudySettings.split(settings)
    return pipeline.prepare(study_named(name), out, settings_)


__all__ = ["planned_jobs", "prepare_study", "run_study", "study_named", "RunJob"]
