"""Probe a trained run: every task x representation x probe, plus its random-init control.

Writes RUN/probes.json (every score, seed, config, package version) and the
tidy RUN/probes.csv with exactly the columns of ``PROBE_COLUMNS``; with
``every=k`` also RUN/probes_by_epoch.csv (every k-th saved epoch, plus the first
and the last; same columns plus ``epoch``).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import numpy as np

from comm_diag.errors import InputError
import comm_diag.trifeature_gen as tg
from comm_diag.comm.methods import Method
from comm_diag.comm.methods.registry import label_of
from comm_diag.comm.run_folder import (PROBES_BY_EPOCH, PROBES_CSV, PROBES_JSON, checkpoint_digest, data_fingerprint,
                                       load_run, read_config, saved_epochs)
from comm_diag.comm.runtime import runtime_for
from comm_diag.outputs import OutputError, claim, safe_cell, write_file
from comm_diag.received import no_links, read_json
from comm_diag.trifeature_gen.io import file_sha256

from comm_diag.probes.measure.backends import backend_for, backend_name
from comm_diag.probes.measure.features import extract
from comm_diag.probes.measure.fit_workers import resolve_jobs, run_fits, workers_released
from comm_diag.probes.measure.classifiers import (AUTHORS_CROP, AUTHORS_REPRESENTATION, PROBES, PROTOCOLS,
                                                  probe_rng, probe_row, run_protocols, score_row)
from comm_diag.probes.measure.tasks import ground_truth_bits, task_labels, task_names
from comm_diag.probes.measure.table import control_of, select

# bits: the probe's lower bound on I(Z; T); bits_fraction: bits / the exact bits of the task's own
# interaction (redundant, unique or synergistic) in the test law (added in 0.2). ba_se: the standard
# error of balanced_accuracy over the test pairs; converged: every logistic fit of the probe met the
# stated optimum (added in 0.9; probes.json has each fit's record). Readers accept files without them.
PROBE_COLUMNS = ("method", "seed", "task", "probe", "representation", "balanced_accuracy", "ba_se", "auroc", "bits",
                 "bits_fraction", "converged")
REQUIRED_COLUMNS = ("method", "seed", "task", "probe", "representation", "balanced_accuracy", "auroc")


class ProbeError(InputError):
    """A run or dataset that cannot be probed."""


Also = Sequence[tuple[str, str, str]]  # extra (probe, task, representation) scores


def _fit_together(calls: Sequence[tuple], backend) -> list[dict]:
    """The rows of ``classifiers.probe_row``'s calls on ``backend``, their logistic fits
    answered in batches (``classifiers.run_protocols``): every task x representation x C of
    a model in one solve where they share a shape (the torch backend's use)."""
    protocols = [PROTOCOLS[probe](features, labels, probe_rng(seed, task, probe))
                 for probe, task, _, seed, features, labels, _ in calls]
    scores = run_protocols(protocols, backend)
    return [score_row(probe, task, rep, s, exact) for (probe, task, rep, *_, exact), s in zip(calls, scores)]


def probe_model(model: Method, ds: tg.Dataset, *, probes: Sequence[str] = ("linear",),
                tasks: Optional[Sequence[str]] = None, representations: Optional[Sequence[str]] = None,
                also: Also = (), seed: int = 0, backend: str = "auto", jobs: Optional[int] = 1) -> list[dict]:
    """Scores of one frozen model: rows {task, probe, representation, balanced_accuracy, auroc, bits,
    bits_fraction}: every probe x task x representation, plus the ``also`` triples.

    ``representations``: which of the model's outputs to probe (default: all it returns).
    ``backend``: where the probes are fitted (``probes.measure.backends``; auto: torch on the model's
    device, CPU or GPU; torch solves the logistic fits of every task x representation
    x C that share a shape as one batch, ``classifiers.run_protocols``). ``jobs``: scikit-learn's fits run in that many worker processes
    at once, each fit on one core (``fit_workers``; None: this process's share of the cores,
    ``runtime.core_share``); the rows are the same whatever their number (tested). The
    workers outlive the call, for the next model, until ``fit_workers.release`` (``probe_run``
    releases its own, and defaults to every core). Default 1 here, as the workers would
    outlive a script's call; a worker imports no torch (``classifiers.probe_row``), so two
    start in ~2 s on 2 cores.
    """
    tasks = task_names() if tasks is None else tasks  # every task: read now, not when this module loaded
    for p in [*probes, *(a[0] for a in also)]:
        if p not in PROBES:
            raise ProbeError(f"unknown probe {p!r}; choose from {', '.join(PROBES)}")
    if not probes and not also:
        raise ProbeError(f"no probe given; choose from {', '.join(PROBES)}")
    for given, what in ((probes, "probe"), (tasks, "task")):
        twice = sorted({x for x in given if list(given).count(x) > 1})
        if twice:  # every row would be written twice and read as two seeds
            raise ProbeError(f"the {what} {twice[0]!r} is given twice")
    if jobs is not None:
        resolve_jobs(jobs, 1)  # its type, before any feature is extracted
    name = backend_name(backend, model.device)
    train_f, test_f = extract(model, ds, "probe_train"), extract(model, ds, "test")
    if "authors" in [*probes, *(a[0] for a in also)]:  # their probe reads features of cropped images
        cropped = {s: extract(model, ds, s, crop=AUTHORS_CROP) for s in ("probe_train", "test")}
    train_y, test_y = task_labels(ds, "probe_train"), task_labels(ds, "test")
    truth = ground_truth_bits(ds, "test")
    # the authors' protocol reads what theirs reads, the fused representation (their CLS output)
    wanted = [(probe, task, rep) for rep in train_f if representations is None or rep in representations
              for task in tasks for probe in probes if probe != "authors" or rep == AUTHORS_REPRESENTATION]
    wanted += [a for a in also if a not in wanted and a[2] in train_f]

    def args(probe: str, task: str, rep: str) -> tuple:
        tr, te = (cropped["probe_train"], cropped["test"]) if probe == "authors" else (train_f, test_f)
        return probe, task, rep, seed, (tr[rep], te[rep]), (train_y[task], test_y[task]), truth.get(task)

    calls = [args(*w) for w in wanted]
    if name == "torch":  # batched on the device, in this process (its device is here)
        return _fit_together(calls, backend_for(name, model.device)) if calls else []
    # scikit-learn's fits, in worker processes when asked (probe_row imports no torch)
    return run_fits(probe_row, calls, resolve_jobs(jobs, len(wanted)))


def _resolve_data(run: Path, meta: dict, data: Optional[tg.Dataset | Path | str]) -> tg.Dataset:
    if data is None:
        path = Path(meta["data"]["path"])
        if not (path / "manifest.json").is_file():
            raise ProbeError(f"the dataset {run} was trained on ({path}) is gone; pass --data")
        ds = tg.load(path)
    else:
        ds = data if isinstance(data, tg.Dataset) else tg.load(data)
    if data_fingerprint(ds) != meta["data"]["fingerprint"]:
        # a synergy run may be probed on its unbiased twin: the same images, probe and test pairs
        twin = meta["data"]["spec"]
        same = {k: v for k, v in twin.items() if k not in TWIN_MAY_DIFFER} == \
            {k: v for k, v in ds.spec.to_dict().items() if k not in TWIN_MAY_DIFFER}
        files = meta["data"].get("files")  # the content identity (runs since 0.4); older runs: the spec only
        if files is not None:
            theirs = ds.manifest.get("sha256", {})
            same = same and all(files.get(f) is not None and files.get(f) == theirs.get(f) for f in TWIN_FILES)
        if not same:
            raise ProbeError(f"{run} was trained on a different dataset than {ds.root} (its images, probe or test "
                             f"pairs differ from the training data's)")
    return ds


TWIN_MAY_DIFFER = ("synergy", "synergy_prob", "train_pairs")
# what a run is probed on must be the training data's, file for file
TWIN_FILES = ("images/train.npy", "images/test.npy", "pairs/probe_train.csv", "pairs/test.csv")


def write_csv(path: Path, rows: Iterable[dict], columns: Sequence[str]) -> None:
    """Rows as CSV with exactly ``columns`` (floats to 4 decimals, missing values empty, text
    that a spreadsheet would run as a formula neutralised: ``outputs.safe_cell``), written by
    ``outputs.write_file`` (atomic, never through a link)."""
    text = io.StringIO()
    w = csv.DictWriter(text, fieldnames=list(columns), extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None or (isinstance(r.get(k), float) and np.isnan(r[k]))
                        else (f"{r[k]:.4f}" if isinstance(r[k], float) else safe_cell(r[k]))) for k in columns})
    write_file(path, text.getvalue())


def probe_run(run: Path | str, *, data: Optional[tg.Dataset | Path | str] = None,
              probes: Sequence[str] = ("linear",), tasks: Optional[Sequence[str]] = None,
              representations: Optional[Sequence[str]] = None, also: Also = (), every: int = 0,
              label: Optional[str] = None, device: Optional[str] = None,
              on_model: Optional[Callable[[str], None]] = None, allow_unfinished: bool = False,
              method: Optional[str] = None, backend: str = "auto", jobs: Optional[int] = None) -> list[dict]:
    """Probe the run's last epoch and its initialisation (method ``<label>@init``);
    with ``every=k`` every k-th saved epoch too (learning curves; the ``also`` triples
    only at the first and last epoch). Returns the probes.csv rows.

    A run that has not reached its last epoch is refused unless ``allow_unfinished``
    (its probes.json then records the epoch, and ``report`` refuses it). ``method``: the
    run's method as the caller gives it, needed when it is code (``run_folder.load_run``).
    ``backend``, ``jobs``: where the probes are fitted (``probe_model``; default: scikit-learn's
    fits spread over this process's share of the cores, the workers shut down when the run
    is probed, so a command ends at once; the same rows whatever ``jobs``). probes.json records the run's
    identity, the digest of the weights it probed and the backend. ``device``: where the
    model is loaded and (backend auto) probed; None: where the run trained, as its config
    says (``auto`` there is this machine's GPU if it has one), so ``comm-diag probe`` and a
    study probe a run the same way."""
    run = Path(run)
    if every < 0:
        raise ProbeError(f"every must be >= 0 epochs, got {every}")
    try:
        # the run is held while it is probed: a second `probe` of it is refused, never silently
        # replaced by whichever wrote last
        with claim(run, "run"):
            return _probe_held(run, data, probes, tasks, representations, also, every, label, device, on_model,
                               allow_unfinished, method, backend, jobs)
    except OutputError as e:
        raise ProbeError(str(e)) from None


def _probe_held(run: Path, data, probes, tasks, representations, also, every, label, device, on_model,
                allow_unfinished, method, backend, jobs) -> list[dict]:
    """``probe_run``'s work, on a run this process holds."""
    try:
        no_links(run, "run folder")  # probes.csv or checkpoints/ as a link would lead a write or a read outside
        if device is None:
            recorded = read_config(run)
            device = str(runtime_for(recorded["train"] if recorded else {}).device)
        model, meta = load_run(run, device=device, method=method)
    except (FileNotFoundError, OutputError) as e:
        raise ProbeError(str(e)) from None
    if meta["epoch"] < meta["train"]["epochs"] and not allow_unfinished:
        raise ProbeError(f"{run} is unfinished: trained {meta['epoch']} of {meta['train']['epochs']} epochs. "
                         f"Finish it with `comm-diag train --resume`, or pass --allow-unfinished to probe it as it is")
    ds = _resolve_data(run, meta, data)
    cfg = meta["train"]
    name, seed = label or label_of(cfg["method"]), cfg["seed"]  # a plugin by its class's name, never its path
    epochs = saved_epochs(run)
    wanted = sorted({0, epochs[-1], *(e for e in epochs if every and e % every == 0)})
    by_epoch = []
    with workers_released():
        for e in wanted:
            if on_model:
                on_model(f"{name} epoch {e}")
            m = model if e == epochs[-1] else load_run(run, epoch=e, device=device, method=method)[0]
            extra = also if e in (0, epochs[-1]) else ()
            for r in probe_model(m, ds, probes=probes, tasks=tasks, representations=representations, also=extra,
                                 seed=seed, backend=backend, jobs=jobs):
                by_epoch.append({"epoch": e, "method": name, "seed": seed, **r})
    last = [dict(r) for r in select(by_epoch, epoch=epochs[-1])]
    init = [{**r, "method": control_of(name)} for r in select(by_epoch, epoch=0)]
    rows = last + init if epochs[-1] != 0 else init
    # one unit: the record (probes.json, naming the tables' digests) goes first and comes back
    # last, so a kill or a full disk between the files leaves a run not probed, never new
    # tables vouched for by an old record (nor an old learning curve by a new one)
    (run / PROBES_JSON).unlink(missing_ok=True)
    write_csv(run / PROBES_CSV, rows, PROBE_COLUMNS)
    if every:
        write_csv(run / PROBES_BY_EPOCH, by_epoch, ("epoch", *PROBE_COLUMNS))
    else:
        (run / PROBES_BY_EPOCH).unlink(missing_ok=True)
    write_file(run / PROBES_JSON, json.dumps({
        "package_version": tg.__version__, "config": meta, "epoch": epochs[-1], "probes": list(probes),
        "backend": backend_for(backend, model.device).name,
        "run_id": meta.get("run_id"), "weights_sha256": checkpoint_digest(run, epochs[-1]),
        "data": str(ds.root), "rows": rows, "by_epoch": by_epoch if every else None,
        # the files whose numbers reach a report, tied to this record (report checks them)
        "sha256": {f: file_sha256(run / f) for f in (PROBES_CSV, PROBES_BY_EPOCH) if (run / f).is_file()}},
        indent=2))
    return rows


def probe_record(run: Path | str, curve: bool = False, probes: Sequence[str] = (),
                 tasks: Sequence[str] = ()) -> bool:
    """The run's probe record is whole: probes.json is there and readable, and the tables it
    names (probes.csv; probes_by_epoch.csv with ``curve``) are the ones it vouches for; and
    it covers ``probes`` and ``tasks`` (a study's own, so a run probed by hand with fewer is
    probed again, not skipped with a shrunken conclusion). A study's "done" is this, never a
    table's mere presence (0.8 skipped a run whose probes.json a kill had left unwritten, and
    then failed on it at every rerun)."""
    run = Path(run)
    try:
        record = read_json(run / PROBES_JSON)
        recorded = record.get("sha256") or {}
        covered = set(probes) <= set(record.get("probes") or ()) and \
            set(tasks) <= {r.get("task") for r in record.get("rows") or () if isinstance(r, dict)}
    except (OSError, ValueError, AttributeError, TypeError):
        return False
    if not covered:
        return False
    names = (PROBES_CSV, PROBES_BY_EPOCH) if curve else (PROBES_CSV,)
    return all(n in recorded and (run / n).is_file() and file_sha256(run / n) == recorded[n] for n in names)

