"""Probed run folders, found and checked before anything is read from them: each run's
config, its probes.json (the weights it probed are the ones on disk), its probe tables
(columns, numbers, scores in range, no row twice) and its learning-curve rows."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Iterable, Optional, Sequence

from comm_diag.errors import InputError
from comm_diag.comm.run_folder import (PROBES_BY_EPOCH, PROBES_CSV, PROBES_JSON, TrainingError, checkpoint_digest,
                                       identity_of, read_config)
from comm_diag.outputs import OutputError
from comm_diag.received import no_links, read_json
from comm_diag.trifeature_gen.io import file_sha256

from comm_diag.probes.measure.suite import REQUIRED_COLUMNS


class ReportError(InputError):
    """Nothing to report, or runs that cannot be read."""


def find_runs(paths: Iterable[Path | str], *, mix_datasets: bool = False) -> list[Path]:
    """Probed run folders (holding probes.csv) at or below the given paths.

    Refused, so that no mean looks more certain than it is: a run reached twice (it
    would count as two seeds), and runs trained on different datasets of one kind
    (unbiased or synergy-biased) unless ``mix_datasets``.
    """
    runs: list[Path] = []
    ids: dict[str, Path] = {}
    for p in map(Path, paths):
        if not p.exists():
            raise ReportError(f"{p} does not exist")
        found = [p] if (p / PROBES_CSV).is_file() else sorted(q.parent for q in p.rglob(PROBES_CSV))
        for run in found:
            try:
                no_links(run, "run folder")
            except OutputError as e:
                raise ReportError(str(e)) from None
            if run.resolve() in {r.resolve() for r in runs}:
                raise ReportError(f"the run {run} is given twice: it would count as two seeds")
            ident = probed_identity(run)
            if ident is not None and ident in ids:
                raise ReportError(f"{run} and {ids[ident]} are the same run (one identity: a copy): "
                                  f"it would count as two seeds")
            if ident is not None:
                ids[ident] = run
            runs.append(run)
    if not runs:
        raise ReportError("no probed runs found (a run needs probes.csv: run `comm-diag probe RUN` first)")
    if not mix_datasets:
        by_data: dict[tuple[bool, str], list[Path]] = {}
        for run in runs:
            meta = run_meta(run)
            by_data.setdefault((bool(meta["data"]["spec"]["synergy"]), meta["data"]["fingerprint"]), []).append(run)
        for biased in (False, True):
            groups = [g for (b, _), g in by_data.items() if b == biased]
            if len(groups) > 1:
                raise ReportError(f"the runs were trained on {len(groups)} different "
                                  f"{'synergy-biased' if biased else 'unbiased'} datasets (e.g. {groups[0][0]} and "
                                  f"{groups[1][0]}); report them separately, or pass --mix-datasets to pool them")
    return runs


def probed_identity(run: Path) -> Optional[str]:
    """The run's identity, after checking that its probes are of its own weights: probes.json
    names the run of config.json and the digest of the checkpoint it probed, which must
    still be the one on disk. None for runs written before 0.4 (no identity)."""
    meta = run_meta(run)
    try:
        probed = read_json(run / PROBES_JSON)
        if not isinstance(probed, dict):
            raise ValueError
    except (OSError, ValueError):
        raise ReportError(f"{run}/probes.json is missing or damaged: probe the run again") from None
    ident = identity_of(meta)
    if ident is None:
        return None
    if probed.get("run_id") != ident:
        raise ReportError(f"{run}: its probes were not made on this run (probes.json names another run than "
                          f"config.json): probe it again")
    epoch = probed.get("epoch")
    try:
        digest = checkpoint_digest(run, epoch) if isinstance(epoch, int) else None
    except OSError:
        digest = None
    if digest is None or digest != probed.get("weights_sha256"):
        raise ReportError(f"{run}: the weights it was probed on are not the ones in checkpoints/ (changed or "
                          f"missing since): probe it again")
    recorded = probed.get("sha256")  # since 0.5: the probe tables themselves
    if recorded is not None:
        for name in (PROBES_CSV, PROBES_BY_EPOCH):
            now = file_sha256(run / name) if (run / name).is_file() else None
            if now != (recorded.get(name) if isinstance(recorded, dict) else "damaged"):
                raise ReportError(f"{run}/{name} is not the file its probes.json records (edited, copied in or "
                                  f"removed since probing): probe the run again")
    return ident


PROBE_FILE_COLUMNS = set(REQUIRED_COLUMNS)  # files written before 0.2 lack the bits


def run_meta(run: Path) -> dict:
    try:
        meta = read_config(run)
        meta["data"]["spec"]["synergy"], meta["data"]["fingerprint"], meta["train"]["epochs"]
    except TrainingError as e:
        raise ReportError(str(e)) from None
    except (OSError, ValueError, KeyError, TypeError):
        raise ReportError(f"{run} is not a readable run: its config.json is missing or damaged") from None
    return meta


def read_rows(run: Path) -> tuple[list[dict], bool]:
    meta = run_meta(run)
    try:  # utf-8-sig: a byte-order mark (a spreadsheet's save) is not part of the first column's name
        with open(run / PROBES_CSV, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            missing = PROBE_FILE_COLUMNS - set(reader.fieldnames or ())
            if missing:
                raise ReportError(f"{run}/probes.csv lacks the columns {', '.join(sorted(missing))}: "
                                  f"probe the run again (comm-diag probe {run})")
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as e:
        raise ReportError(f"{run}/probes.csv is not a text table ({type(e).__name__}): probe the run again") from None
    try:
        for r in rows:
            r["seed"] = int(r["seed"])
            r["balanced_accuracy"] = float(r["balanced_accuracy"])
            r["auroc"] = float(r["auroc"]) if r["auroc"] else None
            for k in ("bits", "bits_fraction", "ba_se"):
                r[k] = float(r[k]) if r.get(k) else None
            if r.get("converged", "") not in ("", "True", "False"):
                raise InputError(f"converged = {r['converged']!r}")
            r["converged"] = {"True": True, "False": False}.get(r.get("converged", ""))  # None: before 0.9
    except (TypeError, ValueError):
        raise ReportError(f"{run}/probes.csv holds a value that is not a number: probe the run again") from None
    for r in rows:  # a score no probe can give is a damaged file, never a verdict
        for k in ("balanced_accuracy", "auroc"):
            if r[k] is not None and not 0.0 <= r[k] <= 100.0:  # NaN fails too
                raise ReportError(f"{run}/probes.csv holds {k} = {r[k]} (a score is in [0, 100]): "
                                  f"the file is damaged; probe the run again")
        for k in ("bits", "ba_se"):
            if r[k] is not None and not (math.isfinite(r[k]) and r[k] >= 0):
                raise ReportError(f"{run}/probes.csv holds {k} = {r[k]}: the file is damaged; probe the run again")
    keys = [(r["method"], r["seed"], r["task"], r["probe"], r["representation"]) for r in rows]
    if len(set(keys)) < len(keys):
        twice = next(k for k in keys if keys.count(k) > 1)
        raise ReportError(f"{run}/probes.csv holds the row {'/'.join(map(str, twice))} more than once: it would "
                          f"count as several seeds; probe the run again")
    unfinished = unfinished_epoch(run, meta)
    if unfinished is not None:
        raise ReportError(f"{run} is unfinished (probed at epoch {unfinished} of {meta['train']['epochs']}): "
                          f"finish it with `comm-diag train --resume` and probe it again")
    return rows, bool(meta["data"]["spec"]["synergy"])


def unfinished_epoch(run: Path, meta: dict) -> Optional[int]:
    """The epoch a run's probes.json was written at, if before the run's last epoch; else None."""
    try:
        probed = read_json(run / PROBES_JSON)["epoch"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ReportError(f"{run}/probes.json is missing or damaged: probe the run again") from None
    return probed if probed < meta["train"]["epochs"] else None


def epoch_rows(runs: Sequence[Path]) -> list[dict]:
    """The rows of every run's probes_by_epoch.csv (runs probed during training), typed, each
    with the pairs its run was trained on ("training": unbiased or synergy)."""
    out = []
    for run in runs:
        path = run / PROBES_BY_EPOCH
        if path.is_file():
            try:
                with open(path, newline="", encoding="utf-8-sig") as f:
                    reader = csv.DictReader(f)
                    missing = {"epoch", *PROBE_FILE_COLUMNS} - set(reader.fieldnames or ())
                    rows = list(reader)
                    if missing:
                        raise ReportError(f"{path} lacks the columns {', '.join(sorted(missing))}: probe the run "
                                          f"again with --every")
                    typed = [{**r, "epoch": int(r["epoch"]), "balanced_accuracy": float(r["balanced_accuracy"])}
                             for r in rows]
            except (ValueError, UnicodeDecodeError, csv.Error) as e:
                if isinstance(e, ReportError):
                    raise
                raise ReportError(f"{path} holds a value that is not a number ({e}): probe the run again") from None
            if any(not 0.0 <= r["balanced_accuracy"] <= 100.0 for r in typed):
                raise ReportError(f"{path} holds a score outside [0, 100]: the file is damaged; probe the run again")
            biased = bool(run_meta(run)["data"]["spec"]["synergy"])
            out += [{**r, "training": "synergy" if biased else "unbiased"} for r in typed]
    return out
