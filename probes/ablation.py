"""Run a study (``comm-diag ablate NAME``): plan its runs, execute them, report.

The study folder holds ``sweep.json`` (which study, preset settings and datasets
wrote it), ``data/`` (the preset's datasets unless given), ``runs/NAME-KIND-seedS/``
(one per run) and the report (``report.md``, ``summary.csv``, ``figure4.png``,
``learning_curves.png``, ``expectations.json``).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

import comm_diag.trifeature_gen as tg
from comm_diag.comm.config import preset
from comm_diag.comm.run_folder import PROBES_BY_EPOCH, PROBES_CSV

from .executors import run_jobs
from .report import summary_rows, verdicts, write_report
from .studies import Measured, Study, check_expectations, get_study
from .sweep import Hooks, RunJob, experiment, folders, given_datasets, plan
from .tasks import INTERACTIONS


def study_jobs(study: Study, out: Path, *, preset_name: str = "cpu", seeds: Sequence[int] = (0,),
               data: Sequence[Path | str] = (), extra: bool = False, epochs: Optional[int] = None,
               every: Optional[int] = None, datasets: Optional[dict[str, tg.Dataset]] = None) -> list[RunJob]:
    """The study's runs in execution order (every config validated); writes nothing. Without
    ``datasets`` (kind -> dataset) the runs point at the user's ``data`` or where the
    preset's pair will be generated."""
    base = preset(preset_name).replace(epochs=epochs)
    every = study.every if every is None else every
    if datasets is not None:
        kinds = folders(datasets)
    else:
        kinds = folders(given_datasets(data)) if data else {k: str(out / "data" / k) for k in ("unbiased", "synergy")}
    return plan(base, study.all_variants(extra), seeds, kinds, out, every=every)


def select(jobs: list[RunJob], only: Optional[int]) -> list[RunJob]:
    if only is None:
        return jobs
    if not 0 <= only < len(jobs):
        raise ValueError(f"--only {only} is out of range: the study has runs 0 to {len(jobs) - 1} (see --list)")
    return [jobs[only]]


def curve_means(runs: Sequence[Path]) -> dict[str, dict[str, Optional[float]]]:
    """label -> R/U/S -> mean linear-probe accuracy (fused) over probed epochs >= 1 and seeds."""
    acc: dict[str, dict[str, list[float]]] = {}
    for run in runs:
        path = run / PROBES_BY_EPOCH
        if not path.is_file():
            continue
        with open(path, newline="") as f:
            for r in csv.DictReader(f):
                if int(r["epoch"]) >= 1 and r["probe"] == "linear" and r["representation"] == "fused":
                    acc.setdefault(r["method"], {}).setdefault(r["task"], []).append(float(r["balanced_accuracy"]))
    return {m: {k: float(np.mean(t[task])) if task in t else None for k, task in INTERACTIONS.items()}
            for m, t in acc.items()}


def study_report(study: Study, out: Path, runs: Sequence[Path], preset_name: str) -> dict:
    """Report over the finished runs; the study's expectations checked on them."""
    rows, _ = summary_rows(runs)
    measured = Measured(verdicts(rows), curve_means(runs))
    checks = check_expectations(study, measured)
    mark = {True: "held", False: "did NOT hold", None: "not measured (a variant it reads was not run)"}
    sections = [f"## Expected pattern (paper): {study.description}", "",
                *[f"- {text}: **{mark[ok]}**" for text, ok in checks]]
    if any(c for c in measured.curve_mean.values()):
        sections += ["", "Mean accuracy over the probed epochs >= 1 (learning speed):", "",
                     "| variant | R | U | S |", "|---|---|---|---|"]
        for v, c in measured.curve_mean.items():
            sections.append(f"| {v} | " + " | ".join("–" if c[k] is None else f"{c[k]:.1f}" for k in "RUS") + " |")
    result = write_report(runs, out, title=f"comm-diag ablate {study.name} ({preset_name} preset)", sections=sections)
    (out / "expectations.json").write_text(json.dumps({
        "study": study.name, "package_version": tg.__version__,
        "expectations": [{"text": t, "held": ok} for t, ok in checks]}, indent=2))
    return {**result, "expectations": checks}


def run_study(name: str, out: Path | str, *, preset_name: str = "cpu", seeds: Sequence[int] = (0,),
              data: Sequence[Path | str] = (), extra: bool = False, only: Optional[int] = None,
              epochs: Optional[int] = None, every: Optional[int] = None, hooks: Optional[Hooks] = None,
              executor: str = "local", data_overrides: Optional[dict] = None, **executor_options) -> dict:
    """Run (or finish) a study and report on every run of it that is done."""
    study = get_study(name)
    out = Path(out)
    hooks = hooks or Hooks()
    given = given_datasets(data) if data else None
    settings = dict(preset_name=preset_name, seeds=seeds, extra=extra, epochs=epochs, every=every)
    select(study_jobs(study, out, **settings, datasets=given), only)  # bad settings or --only: before any byte
    base = preset(preset_name).replace(epochs=epochs)
    with experiment(out, "study", study.name, base, given, preset_name, hooks, data_overrides) as datasets:
        jobs = study_jobs(study, out, **settings, datasets=datasets)
        run_jobs(select(jobs, only), hooks, executor, **executor_options)
        hooks.on_stage("report")
        done = [Path(j.run) for j in jobs if (Path(j.run) / PROBES_CSV).is_file()]
        return study_report(study, out, done, preset_name)
