"""The paper's two experiments end to end: generate, train, probe, report (``comm-diag quickstart``).

Experiment 1 trains every method on unbiased pairs (R and U are probed there),
Experiment 2 on synergy-biased pairs (S is probed there). Both datasets share
the seed, hence images, mapping and probe pairs. Every finished step is kept on
disk: re-running skips finished runs and resumes interrupted ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

import comm_diag.trifeature_gen as tg
from comm_diag.comm.config import preset
from comm_diag.comm.methods import METHODS

from .executors import run_jobs
from .report import write_report
from .sweep import Hooks, Variant, experiment, folders, plan

METHODS_DEFAULT = ("comm", "cross", "cross_self")


def quickstart(out: Path | str = "comm-diag-out", *, preset_name: str = "cpu", seeds: Sequence[int] = (0,),
               methods: Sequence[str] = METHODS_DEFAULT, epochs: Optional[int] = None, every: int = 0,
               data_overrides: Optional[dict] = None, hooks: Optional[Hooks] = None,
               executor: str = "local", **executor_options) -> dict:
    """Run both experiments for every method and seed, then write OUT/report.md,
    OUT/summary.csv and OUT/figure4.png; with ``every=k`` every run is also probed every k
    epochs and the report draws learning curves. Returns what ``write_report`` returns."""
    hooks = hooks or Hooks()
    out = Path(out)
    base = preset(preset_name).replace(epochs=epochs)
    variants = [Variant(m, {"method": m}) for m in methods]
    if every < 0:
        raise ValueError(f"every must be >= 0 epochs, got {every}")
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"unknown method {m!r}; choose from {', '.join(METHODS)}")
    plan(base, variants, seeds, {"unbiased": "", "synergy": ""}, out)  # every config valid before any byte
    with experiment(out, "quickstart", preset_name, base, None, preset_name, hooks, data_overrides) as datasets:
        jobs = plan(base, variants, seeds, folders(datasets), out, every=every)
        runs = [Path(r) for r in run_jobs(jobs, hooks, executor, **executor_options)]
        hooks.on_stage("report")
        result = write_report(runs, out, title=f"comm-diag quickstart ({preset_name} preset)")
        (out / "quickstart.json").write_text(json.dumps({
            "package_version": tg.__version__, "preset": preset_name, "seeds": list(seeds), "methods": list(methods),
            "train_config": base.to_dict(), "runs": [str(r) for r in runs]}, indent=2))
    return result
