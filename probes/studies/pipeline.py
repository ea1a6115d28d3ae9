"""One experiment pipeline: a declared study (``studies.Study``) run end to end.

quickstart, every ablation and ``check`` are studies: variants of the preset, the
datasets they train on (the preset's unbiased + synergy pair, or the user's), an
optional one-step trial of a method on real pairs, expectations, and report sections.
``run`` does the same for all of them:

    plan every run (every config resolved: bad settings fail before any byte)
    -> preflight (if the study names a method) -> claim OUT, datasets (``sweep.study_folder``)
    -> execute the runs (skipped when done, resumed when interrupted; ``executors``)
    -> compose the report once, in memory, from the runs' probe tables (``report``)
    -> OUT/report.md, summary.csv, figure4.png, and the study's record (JSON).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from comm_diag.errors import InputError
import comm_diag.trifeature_gen as tg
from comm_diag.comm.config import TrainConfig, at_size_of, fast as fast_path, preset
from comm_diag.comm.methods import as_batch, preflight, resolve
from comm_diag.probes.measure.suite import probe_record
from comm_diag.outputs import write_file

from comm_diag.probes.studies.disk import said, study_bytes
from comm_diag.probes.studies.executors import check_options, run_jobs
from comm_diag.probes.report.html_page import md_cell
from comm_diag.probes.report.progress import progress as progress_hooks
from comm_diag.probes.report.render import render
from comm_diag.probes.report.summary import summarize
from comm_diag.probes.report.conclusions import plumbing_only
from comm_diag.probes.studies.study import Measured, Study, check_expectations
from comm_diag.probes.hooks import Hooks
from comm_diag.probes.studies.sweep import (RunJob, dataset_spec, folders, given_datasets, plan, planned_datasets,
                                           study_folder, variant_datasets)
from comm_diag.probes.measure.readouts import readouts
from comm_diag.probes.measure.table import ProbeTable
from comm_diag.probes.report.tensorboard import writer_class


@dataclass(frozen=True)
class StudySettings:
    """How a study is run; the same options for every study (and every method in it)."""

    preset: str = "cpu"
    seeds: Sequence[int] = (0,)
    data: Sequence[Path | str] = ()  # the user's datasets (one, or an unbiased + a synergy one)
    extra: bool = False  # also the study's optional variants
    only: Optional[int] = None  # run only this run of the plan (``--list`` numbers them)
    epochs: Optional[int] = None  # None: the preset's
    every: Optional[int] = None  # probe every k-th epoch; None: the study's
    data_overrides: dict = field(default_factory=dict)  # DatasetSpec fields changed from the preset's
    tensorboard: bool = False  # each run's curves also as TensorBoard events (RUN/tensorboard/)
    fast: bool = False  # every run on the fast path (``comm.config.fast``): one preset for every method

    def base(self) -> TrainConfig:
        cfg = preset(self.preset).replace(epochs=self.epochs)
        return fast_path(cfg) if self.fast else cfg

    @classmethod
    def split(cls, options: dict) -> tuple["StudySettings", dict]:
        """Keyword options -> (these settings, the rest: the executor's options)."""
        names = {f.name for f in fields(cls)}
        mine = {k: v for k, v in options.items() if k in names and v is not None}
        return cls(**mine), {k: v for k, v in options.items() if k not in names}


def study_jobs(study: Study, out: Path, settings: StudySettings,
               datasets: Optional[dict[str, tg.Dataset]] = None) -> list[RunJob]:
    """The study's runs in execution order, every config resolved; writes nothing. Without
    ``datasets`` (kind -> dataset) the runs point at the user's data or at where the
    preset's pair will be generated."""
    if datasets is not None:
        kinds = folders(datasets)
    elif settings.data:
        kinds = folders(given_datasets(settings.data))
    else:
        kinds = {k: str(out / "data" / k) for k in study.preset_kinds(settings.extra)}
    every = study.every if settings.every is None else settings.every
    if every < 0:
        raise InputError(f"every must be >= 0 epochs, got {every}")
    variants = study.all_variants(settings.extra)
    for v in variants:  # a variant's dataset settings are checked before any byte too
        if v.data and settings.data:
            raise InputError(f"variant {v.name!r} changes dataset settings ({v.data_folder}): it generates its "
                             f"own data, so it cannot run on a dataset given with --data")
        if v.data:
            dataset_spec(settings.preset, False, **{**settings.data_overrides, **v.data}).validate()
    if settings.tensorboard:
        writer_class()  # tensorboardX missing: one line before any byte
    return plan(settings.base(), variants, settings.seeds, kinds, out, every=every, probes=study.probes,
                tensorboard=settings.tensorboard)


def describe_plan(study: Study, out: Path, settings: StudySettings) -> list[dict]:
    """One row per run of the plan (``ablate --list``): its number, folder name, variant,
    seed, data and the settings it changes from the preset (seed aside)."""
    rows = []
    for i, job in enumerate(study_jobs(study, out, settings)):
        # against the preset as it resolves for the same method: its own defaults are no change
        base = resolve(settings.base().replace(method=job.config["method"], seed=job.seed)).to_dict()
        changes = {k: v for k, v in job.config.items() if base.get(k) != v}
        data = Path(job.data)  # a variant's own datasets show their settings: synergy_prob=0.5/synergy
        shown = str(data.relative_to(out / "data")) if data.is_relative_to(out / "data") else job.kind
        rows.append({"index": i, "run": job.name, "variant": job.label, "seed": job.seed, "data": shown,
                     "changes": ", ".join(f"{k}={v}" for k, v in changes.items()) or "-"})
    return rows


def only_run(jobs: list[RunJob], only: Optional[int]) -> list[RunJob]:
    if only is None:
        return jobs
    if not 0 <= only < len(jobs):
        raise InputError(f"--only {only} is out of range: the study has runs 0 to {len(jobs) - 1} (see --list)")
    return [jobs[only]]


def curve_means(epoch_rows: Sequence[dict]) -> dict[str, dict[str, Optional[float]]]:
    """label -> readout key (R, U, U2, S, any task added) -> mean linear-probe accuracy (fused)
    over probed epochs >= 1 and seeds (``report.summary.summarize``'s "epochs" rows)."""
    trained = ProbeTable.of(epoch_rows)
    linear = [r for r in readouts() if r.probe == "linear"]
    out: dict[str, dict[str, Optional[float]]] = {}
    for m in trained.methods(probe="linear", epoch=lambda e: e >= 1):
        means = {r.key: [x["balanced_accuracy"] for x in trained.select(
            method=m, task=r.task, probe=r.probe, representation=r.representation, epoch=lambda e: e >= 1)]
            for r in linear}
        out[m] = {k: float(np.mean(v)) if v else None for k, v in means.items()}
    return out


NOT_COMPARED = "not compared: the smoke preset is a plumbing check only"


def expectation_lines(study: Study, checks: list, curves: dict, plumbing: bool = False) -> list[str]:
    """The report section of a study's expectations (and of its learning speed, if probed);
    at a plumbing preset nothing is compared (``plumbing``)."""
    if not study.expectations:
        return []
    mark = {True: "held", False: "did NOT hold",
            None: NOT_COMPARED if plumbing else "not compared (a variant it reads was not run, or nothing of it "
                                                "was measured)"}
    lines = [f"## Expected pattern: {study.description}", "",
             *[f"- {text}: **{mark[ok]}**" for text, ok in checks]]
    keys = [k for k in dict.fromkeys(k for c in curves.values() for k, x in c.items() if x is not None)]
    if keys:
        lines += ["", "Mean accuracy over the probed epochs >= 1 (learning speed; linear probe, fused "
                  "representation):", "", "| variant | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
        for v, c in curves.items():
            lines.append(f"| {md_cell(v)} | " + " | ".join("–" if c.get(k) is None else f"{c[k]:.1f}" for k in keys)
                         + " |")
    return lines


def prepare(study: Study, out: Path | str, settings: StudySettings = StudySettings(),
            hooks: Optional[Hooks] = None) -> dict[str, tg.Dataset]:
    """Claim ``out`` for ``study`` and generate (or find) every dataset ``run`` will train on,
    training nothing: ``run`` on the same folder and settings then reuses them. Returns them
    by folder under OUT/data/ ("unbiased", "synergy", "authors_renderer/unbiased", ...)."""
    hooks = hooks or Hooks()
    out = Path(out)
    given = given_datasets(settings.data) if settings.data else None
    only_run(study_jobs(study, out, settings, given), settings.only)
    with study_folder(out, study.kind, study.name, settings.base(), given, settings.preset, hooks,
                      settings.data_overrides, kinds=study.preset_kinds(settings.extra)) as datasets:
        own = variant_datasets(out, settings.preset, study.all_variants(settings.extra), hooks,
                               settings.data_overrides)
    return {**datasets, **{f"{folder}/{kind}": ds for folder, kinds in own.items() for kind, ds in kinds.items()}}


def run(study: Study, out: Path | str, settings: StudySettings = StudySettings(), *,
        hooks: Optional[Hooks] = None, executor: str = "local", **executor_options) -> dict:
    """Run (or finish) ``study`` in ``out`` and report on every run of it that is done.
    Returns the report's result (rows, verdicts, s_recoverable, notes) plus ``lead`` (the
    study's lead lines), ``expectations`` ((sentence, held?) pairs) and ``outputs`` (the
    results of the study's own outputs, e.g. the dose study's "dose" rows and "readings")."""
    hooks = hooks or Hooks()
    out = Path(out)
    given = given_datasets(settings.data) if settings.data else None
    jobs = only_run(study_jobs(study, out, settings, given), settings.only)  # bad settings or --only: before any byte
    kinds = () if given else study.preset_kinds(settings.extra)
    hooks.on_stage(said(study_bytes(jobs, planned_datasets(out, settings.preset, study.all_variants(settings.extra),
                                                           kinds, settings.data_overrides)), out))
    base = settings.base()
    if study.preflight:
        spec = next(iter(given.values())).spec if given else dataset_spec(settings.preset, False,
                                                                           **settings.data_overrides)
        hooks.on_stage(f"{study.preflight_label}: one trial step and features() on real pairs")
        preflight(at_size_of(base.replace(method=study.preflight, seed=settings.seeds[0]), spec),
                  [as_batch(x) for x in tg.trial_pairs(spec.size)])
    with study_folder(out, study.kind, study.name, base, given, settings.preset, hooks,
                      settings.data_overrides, kinds=study.preset_kinds(settings.extra)) as datasets:
        variants = study.all_variants(settings.extra)
        own = variant_datasets(out, settings.preset, variants, hooks, settings.data_overrides)
        trained_on = {v.name: own[v.data_folder] if v.data else datasets for v in variants}
        jobs = study_jobs(study, out, settings, datasets)
        run_jobs(only_run(jobs, settings.only), hooks, executor, **executor_options)
        hooks.on_stage("report")
        runs = [Path(j.run) for j in jobs if probe_record(j.run)]  # probed whole
        result = summarize(runs)  # summarize -> the study's reading of it -> render
        lead = list(study.lead(result)) if study.lead else []
        measured = Measured(result.verdicts, curve_means(result.epochs), tuple(result.epochs),
                            result.published_comparable)
        plumbing = plumbing_only(result.presets)  # a plumbing run compares nothing with the paper's patterns
        expectations = [(e.text, None) for e in study.expectations] if plumbing else \
            check_expectations(study, measured)
        outputs = study.outputs(result, trained_on, out) if study.outputs else {}
        tail = expectation_lines(study, expectations, measured.curve_mean, plumbing)
        tail += ([""] if tail and outputs.get("section") else []) + outputs.get("section", [])
        render(result, out, title=f"comm-diag {study.title} ({settings.preset} preset)", lead=lead, tail=tail)
        write_file(out / study.record, json.dumps({
            "study": study.name, "experiment": study.kind, "package_version": tg.__version__,
            "preset": settings.preset, "seeds": list(settings.seeds),
            "methods": [v.name for v in variants], "preset_config": base.to_dict(),
            # each variant's resolved settings (its first run's): a check's records the user's method's
            "configs": {j.label: j.config for j in reversed(jobs)},
            "runs": [str(r) for r in runs],
            "expectations": [{"text": t, "held": ok} for t, ok in expectations]}, indent=2))
    return result.with_(lead=tuple(lead), expectations=tuple(expectations),
                        outputs={k: v for k, v in outputs.items() if k != "section"})


def run_with(study: Study, out: Path | str, *, hooks: Optional[Hooks] = None, progress: str = "auto",
             executor: str = "local", **options) -> dict:
    """``run`` with keyword options: ``StudySettings`` fields and the executor's (workers;
    address, cpus_per_run, gpus_per_run), as the library entry points take them. Progress is
    drawn as ``progress`` says (``probes.report.progress``: bars in a terminal, lines in a notebook,
    or off) and every event also reaches ``hooks``."""
    check_options(executor, options, also=[f.name for f in fields(StudySettings)])
    settings, executor_options = StudySettings.split(options)
    with progress_hooks(progress, also=hooks) as drawn:
        return run(study, out, settings, hooks=drawn, executor=executor, **executor_options)
