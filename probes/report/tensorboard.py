"""A run's curves as TensorBoard event files (``--tensorboard``; the optional extra
``pip install -e ".[tensorboard]"``, tensorboardX): RUN/tensorboard/ holds every loss term,
the learning rate and the throughput per step (from log.csv) and, per probed epoch, each
probe's balanced accuracy and bits (from probes_by_epoch.csv, or probes.csv at the last
epoch). ``tensorboard --logdir OUT`` then shows every run of a study side by side.

The events are written from the run's own files once it is trained and probed, so a run
stopped and resumed exports the same curves, and exporting again replaces them. Only what
comm-diag wrote is replaced: the folder lists its event files in ``MARK``, and a folder
holding anything else (a user's notes, another writer's events) is refused, never deleted.
A staging folder left by an export that was killed is cleared by the next one.
"""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
from pathlib import Path

from comm_diag.comm.run_folder import LOG, PROBES_BY_EPOCH, PROBES_CSV, read_config
from comm_diag.errors import MissingExtra, OutputError
from comm_diag.probes.measure.table import ProbeTable
from comm_diag.received import no_links, read_json

FOLDER = "tensorboard"
MARK = ".comm-diag-export.json"  # the event files an export wrote: all that a later export may delete
STAGING = f".{FOLDER}.staging-"
NOT_TERMS = {"epoch", "step", "global_step", "lr", "pairs_per_s"}  # log.csv's columns that are not loss terms


class TensorBoardMissing(MissingExtra):
    """tensorboardX is not installed."""


def writer_class():
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise TensorBoardMissing("--tensorboard", "tensorboard", "tensorboardX") from None
    return SummaryWriter


def _rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


def _ours(folder: Path) -> bool:
    """Whether ``folder`` holds only the files its export mark lists (and the mark)."""
    try:
        listed = set(read_json(folder / MARK)["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    present = {p.name for p in folder.iterdir()}
    return all(p.is_file() for p in folder.iterdir()) and present <= listed | {MARK}


def _clear_staging(run: Path) -> None:
    """Remove the staging folders of exports that were killed (marked with the files they hold)."""
    for p in run.glob(STAGING + "*"):
        if p.is_dir() and all(f.is_file() and f.name.startswith("events.out.tfevents") or f.name == MARK
                              for f in p.iterdir()):
            shutil.rmtree(p)


def check_replaceable(run: Path | str) -> Path:
    """RUN/tensorboard/, if an export may take its name (absent, or an export of comm-diag's
    own); else OutputError: called before training too, so a refusal costs no work."""
    target = Path(run) / FOLDER
    if target.exists() and not (target.is_dir() and _ours(target)):
        raise OutputError(f"{target} holds files comm-diag's export did not write; it replaces only its own "
                          f"export: move them elsewhere and run again")
    return target


def export(run: Path | str) -> Path:
    """Write RUN/tensorboard/ from the run's log and probe tables (replacing an older export);
    returns the folder. Tags: ``loss/<term>``, ``train/lr``, ``train/pairs_per_s`` (x: the
    global step), ``probe/<probe>/<representation>/<task>`` in % and ``bits/...`` (x: epoch)."""
    SummaryWriter = writer_class()
    run = Path(run)
    no_links(run, "run folder")  # the export is written inside it
    target = check_replaceable(run)
    _clear_staging(run)
    epochs = read_config(run)["train"]["epochs"]
    probed = _rows(run / PROBES_BY_EPOCH) or [{**r, "epoch": epochs} for r in _rows(run / PROBES_CSV)]
    staging = Path(tempfile.mkdtemp(prefix=STAGING, dir=run))  # complete before it takes the name
    try:
        with SummaryWriter(logdir=str(staging), flush_secs=3600) as w:
            for r in _rows(run / LOG):
                step = int(r["global_step"])
                for term in (k for k in r if k not in NOT_TERMS and r[k] not in ("", None)):
                    w.add_scalar(f"loss/{term}", float(r[term]), step)
                w.add_scalar("train/lr", float(r["lr"]), step)
                w.add_scalar("train/pairs_per_s", float(r["pairs_per_s"]), step)
            for r in ProbeTable.of(probed).trained():  # a control is a horizontal line: it is in probes.csv
                tag = f"{r['probe']}/{r['representation']}/{r['task']}"
                w.add_scalar(f"probe/{tag}", float(r["balanced_accuracy"]), int(r["epoch"]))
                if r.get("bits"):
                    w.add_scalar(f"bits/{tag}", float(r["bits"]), int(r["epoch"]))
        (staging / MARK).write_text(json.dumps({"files": sorted(p.name for p in staging.iterdir())}))
        if target.exists():
            shutil.rmtree(target)  # comm-diag's own export (checked above)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return run / FOLDER
