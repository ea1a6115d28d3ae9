"""The paper's two experiments end to end: generate, train, probe, report (``comm-diag quickstart``).

Experiment 1 trains every method on unbiased pairs (R and U are probed there),
Experiment 2 on synergy-biased pairs (S is probed there). Both datasets share
the seed, hence images, mapping and probe pairs. Every finished step is kept on
disk: re-running skips finished runs and resumes interrupted ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from comm_diag.comm.methods import METHODS

from . import pipeline
from .pipeline import StudySettings
from .study import Study
from .sweep import Hooks, Variant

METHODS_DEFAULT = ("comm", "cross", "cross_self")


def quickstart_study(methods: Sequence[str] = METHODS_DEFAULT, preset_name: str = "cpu") -> Study:
    """Every method on the preset's two datasets, nothing expected: the paper's Figure 4."""
    if isinstance(methods, str) or not methods:
        raise ValueError(f"name at least one method (a list such as ['comm', 'cross']; --methods comm,cross); "
                         f"choose from {', '.join(METHODS)}")
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"unknown method {m!r}; choose from {', '.join(METHODS)}")
    return Study(name=preset_name, kind="quickstart", title="quickstart", record="quickstart.json",
                 description="the paper's two experiments (Figure 4)",
                 variants=tuple(Variant(m, {"method": m}) for m in methods))


def quickstart(out: Path | str = "comm-diag-out", *, methods: Sequence[str] = METHODS_DEFAULT,
               hooks: Optional[Hooks] = None, executor: str = "local", **options) -> dict:
    """Run both experiments for every method and seed, then write OUT/report.md,
    OUT/summary.csv and OUT/figure4.png; with ``every=k`` every run is also probed every k
    epochs and the report draws learning curves. ``options``: ``StudySettings`` fields
    (preset_name, seeds, epochs, every, data_overrides) and the executor's. Returns what
    ``pipeline.run`` returns."""
    study = quickstart_study(methods, options.get("preset_name") or StudySettings.preset_name)
    return pipeline.run_with(study, out, hooks=hooks, executor=executor, **options)
