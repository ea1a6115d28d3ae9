"""The paper's two experiments end to end: generate, train, probe, report (``comm-diag quickstart``).

Experiment 1 trains every method on unbiased pairs (R and U are probed there),
Experiment 2 on synergy-biased pairs (S is probed there). Both datasets share
the seed, hence images, mapping and probe pairs. Every finished step is kept on
disk: re-running skips finished runs and resumes interrupted ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from comm_diag.errors import InputError
from comm_diag.comm.methods.plugins import normalize_target
from comm_diag.comm.config import DEFAULT_METHODS
from comm_diag.comm.methods.registry import METHODS, label_of, load_class


from comm_diag.probes.studies import pipeline
from comm_diag.probes.report.conclusions import overview
from comm_diag.probes.studies.pipeline import StudySettings
from comm_diag.probes.studies.study import Study
from comm_diag.probes.hooks import Hooks
from comm_diag.probes.studies.sweep import Variant

def quickstart_study(methods: Sequence[str] = DEFAULT_METHODS, preset: str = "cpu") -> Study:
    """Every method on the preset's two datasets, nothing expected: the paper's Figure 4.
    ``methods``: built-in names or plugin targets (``path/file.py:Class``, ``module:Class``,
    an installed entry point), each loaded here, before any work; a plugin is tried for one
    step on real pairs first, as ``check`` does, and labelled by its class's name."""
    if isinstance(methods, str) or not methods:
        raise InputError("name at least one method (a list such as ['comm', 'cross']; --methods comm,cross); "
                         "`comm-diag methods` lists the built-ins")
    targets = [normalize_target(m) for m in methods]
    for m in targets:
        load_class(m)  # an unknown name or a broken plugin fails here, named
    plugins = [m for m in targets if m not in METHODS]
    return Study(name=preset, kind="quickstart", title="quickstart", record="quickstart.json",
                 description="the paper's two experiments (Figure 4)",
                 variants=tuple(Variant(label_of(m), {"method": m}) for m in targets),
                 preflight=plugins[0] if plugins else None,
                 lead=lambda result: overview(result, gpu=result.on_gpu))


def quickstart(out: Path | str = "comm-diag-out", *, methods: Sequence[str] = DEFAULT_METHODS,
               hooks: Optional[Hooks] = None, executor: str = "local", **options) -> dict:
    """Run both experiments for every method and seed, then write OUT/report.md,
    OUT/summary.csv and OUT/figure4.png; with ``every=k`` every run is also probed every k
    epochs and the report draws learning curves. ``options``: ``StudySettings`` fields
    (preset, seeds, epochs, every, data_overrides) and the executor's. Returns what
    ``pipeline.run`` returns."""
    study = quickstart_study(methods, options.get("preset") or StudySettings.preset)
    return pipeline.run_with(study, out, hooks=hooks, executor=executor, **options)
