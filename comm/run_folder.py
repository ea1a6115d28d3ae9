"""The run folder, in one place: its layout, and how it is written and read.

    RUN/config.json               the resolved TrainConfig, the data fingerprint, the package version
    RUN/log.csv                   one row per step: every loss term, lr, pairs/s
    RUN/checkpoints/epoch_XXX.pt  weights after epoch XXX (000 = initialisation)
    RUN/checkpoints/last.pt       weights, optimiser and epoch, to resume
    RUN/probes.csv, probes.json, probes_by_epoch.csv   written by comm_diag.probes

Writes are atomic (temporary name, then rename); a damaged checkpoint is one clear error.
"""

from __future__ import annotations

import csv
import io
import errno
import hashlib
import json
import pickle
import re
from pathlib import Path
from typing import Optional

import torch

import comm_diag.trifeature_gen as tg
from comm_diag.outputs import read_json, write_file
from comm_diag.trifeature_gen.io import file_sha256

from comm_diag.comm.config import TrainConfig
from comm_diag.comm.methods import Method, build_method, resolve
from comm_diag.comm.methods.plugins import is_code_target, require_given
from comm_diag.comm.runtime import resolve_device, seed_global

CONFIG = "config.json"
LOG = "log.csv"
CHECKPOINTS = "checkpoints"
LAST = "last.pt"
PROBES_CSV = "probes.csv"
PROBES_JSON = "probes.json"
PROBES_BY_EPOCH = "probes_by_epoch.csv"


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss, bad resume, mismatched data)."""


def checkpoint_path(run: Path | str, epoch: Optional[int] = None) -> Path:
    """RUN/checkpoints/epoch_XXX.pt, or last.pt (with the optimiser) when epoch is None."""
    return Path(run) / CHECKPOINTS / (LAST if epoch is None else f"epoch_{epoch:03d}.pt")


def read_config(run: Path | str) -> Optional[dict]:
    """RUN/config.json as written by ``train``, checked to be one (a JSON object with
    ``train`` and ``data`` objects whose settings have their types), or None if there is
    none; TrainingError (one line, naming the file) if it is damaged."""
    path = Path(run) / CONFIG
    if not path.is_file():
        return None
    try:
        meta = read_json(path)
    except json.JSONDecodeError as e:
        raise TrainingError(f"{path} is not valid JSON ({e.msg}, line {e.lineno}): the run's config is damaged") from None
    except (OSError, UnicodeDecodeError) as e:
        raise TrainingError(f"{path} cannot be read ({e})") from None
    if not (isinstance(meta, dict) and isinstance(meta.get("train"), dict) and isinstance(meta.get("data"), dict)):
        raise TrainingError(f"{path} is not a comm-diag run config: it needs a 'train' and a 'data' object")
    data = meta["data"]
    if not (isinstance(data.get("fingerprint"), str) and isinstance(data.get("path"), str)
            and isinstance(data.get("spec"), dict)):
        raise TrainingError(f"{path} is damaged: its 'data' object needs 'path', 'fingerprint' and 'spec'")
    try:
        TrainConfig.from_dict(meta["train"]).validate()
    except (TypeError, ValueError) as e:
        raise TrainingError(f"{path} is damaged: {e}") from None
    return meta


# settings of where and how a run computes, not of the experiment: outside its identity, and a
# run may be resumed with others (another GPU, or deterministic algorithms switched on)
WHERE_IT_RUNS = ("device", "deterministic", "cuda_graph")
# settings added after runs carried identities: left out of the digest at their default, so a
# run of 0.8 (which recorded none of them) keeps its identity and resumes
ADDED_SINCE_0_8 = {"fast": False}


def run_id(train: dict, fingerprint: str, numerics: Optional[dict] = None) -> str:
    """A run's identity: a digest of its resolved settings (WHERE_IT_RUNS aside), of its
    dataset's manifest and of its ``numerics`` (``Runtime.numerics``: compile, CPU threads;
    None for a run of 0.8 or earlier, which recorded none). Two folders with one identity
    are one run (a copy), and every checkpoint carries the identity of the run that wrote it."""
    settings_ = {k: v for k, v in train.items() if k not in WHERE_IT_RUNS
                 and not (k in ADDED_SINCE_0_8 and v == ADDED_SINCE_0_8[k])}
    what = {"train": settings_, "data": fingerprint, **({"numerics": numerics} if numerics is not None else {})}
    text = json.dumps(what, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build_model(cfg: TrainConfig, device: torch.device, n_modalities: int = 2) -> Method:
    seed_global(cfg.seed)  # the initial weights depend on the seed only
    return build_method(cfg, n_modalities).to(device)


def save_checkpoint(obj, path: Path) -> None:
    """``outputs.write_file``: a reader sees the old file or the new one, a failed write (a
    full disk) leaves neither a half checkpoint nor its temporary file, and a link at the
    path is replaced, never written through."""
    try:
        write_file(path, lambda tmp: torch.save(obj, tmp))
    except RuntimeError as e:  # torch's zip writer reports a short write (a full disk) as a RuntimeError
        raise OSError(errno.EIO, f"writing {path.name} failed ({str(e).strip().splitlines()[0]})", str(path)) from None


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict:
    """A checkpoint written by ``save_checkpoint``; TrainingError (one line) if it is unreadable.

    Loaded with ``weights_only=True``: a checkpoint may hold only tensors and plain data
    (dicts, lists, numbers, strings), so a received file can never run code when it is
    read; anything else in it is refused, not executed."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError:
        raise TrainingError(f"{path} holds objects other than tensors and plain data: refused, not loaded "
                            f"(a comm-diag checkpoint holds only those, and a received file never runs code)") from None
    except Exception as e:  # truncated zip, empty file, not a checkpoint: torch raises many kinds
        raise TrainingError(f"{path} is not a readable checkpoint ({type(e).__name__}): it is truncated or was "
                            f"not written by comm-diag; delete it to retrain from the previous epoch") from None
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict) or \
            not isinstance(state.get("epoch"), int):
        raise TrainingError(f"{path} is not a comm-diag checkpoint")
    return state


def identity_of(meta: dict) -> Optional[str]:
    """The run's identity (config.json's run_id), or None for a run in the format of 0.2 and
    0.3, which carries none (nor do its checkpoints). The one check of a run folder's format:
    such a run is resumed, probed and reported without the checks an identity allows."""
    return meta.get("run_id")


def check_belongs(state: dict, meta: dict, path: Path, epoch: Optional[int] = None) -> None:
    """TrainingError unless the checkpoint was written by the run of ``meta`` (its identity)
    at ``epoch``. A run without identity (``identity_of``: 0.2/0.3) is not checked."""
    if identity_of(meta) is not None and state.get("run") != meta["run_id"]:
        raise TrainingError(f"{path} was not written by this run (its identity differs from config.json's): "
                            f"it is not used as this run's weights; remove it or train the run again")
    if epoch is not None and state["epoch"] != epoch:
        raise TrainingError(f"{path} holds the weights of epoch {state['epoch']}, not of epoch {epoch}: "
                            f"the run folder is inconsistent")


def run_config(cfg: TrainConfig, ds: tg.Dataset, numerics: Optional[dict] = None) -> dict:
    """config.json: the resolved settings, the dataset (absolute path, so the run is found
    from any folder; manifest fingerprint; the digest of every file, its content
    identity), the arithmetic that shaped the weights (``numerics``) and the run's identity."""
    fingerprint = data_fingerprint(ds)
    return {"train": cfg.to_dict(), "run_id": run_id(cfg.to_dict(), fingerprint, numerics),
            **({"numerics": numerics} if numerics is not None else {}),
            "data": {"path": str(Path(ds.root).resolve()), "fingerprint": fingerprint,
                     "files": dict(ds.manifest.get("sha256", {})), "spec": ds.spec.to_dict(),
                     "n_modalities": ds.n_modalities},
            "package_version": tg.__version__}


def same_config(a: dict, b: dict) -> bool:
    """Two TrainConfig dicts describe the same run (WHERE_IT_RUNS may differ; a setting
    missing from an older run's config.json has its default). ``a`` may come from a
    file: its method is imported only if it is ``b``'s."""
    return settings(a, trusted=b.get("method")) == settings(b)


def changed_settings(old: dict, new: dict) -> dict[str, tuple]:
    """setting -> (old value, new value) for every setting two TrainConfig dicts disagree
    on (``old`` may come from a file: its method is imported only if it is ``new``'s)."""
    a, b = settings(old, trusted=new.get("method")), settings(new)
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def settings(config: dict, trusted: Optional[str] = None) -> dict:
    """A TrainConfig dict as one flat dict of run and method settings, every one of them
    (defaults filled in: older run folders lack the newer ones), without WHERE_IT_RUNS.

    A method that is code named by a file (``path.py:Class``) is imported only when it
    is ``trusted`` (the method the person at the keyboard gave); otherwise the dict is
    returned as it is, unresolved, so it compares as a different run."""
    method = config.get("method", TrainConfig.method)
    if is_code_target(method) and method != trusted and trusted is not None:
        return {k: v for k, v in config.items() if k not in WHERE_IT_RUNS}
    cfg = resolve(TrainConfig.from_dict(config), strict=False)
    return {k: v for k, v in cfg.to_dict().items() if k not in WHERE_IT_RUNS}


def kept_log(path: Path, keep_steps: int) -> str:
    """log.csv's text up to the checkpoint a run resumes from (the rows after it are redone;
    none for a fresh run); the log is then rewritten as a new file, never appended to."""
    if keep_steps <= 0 or not path.is_file():
        return ""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return ""
    def step_of(row: list[str]) -> Optional[int]:
        return int(row[2]) if len(row) == len(rows[0]) and row[2].isdigit() else None

    # a row torn by a kill during its write ("1,2") is dropped with the rows to redo
    kept = [rows[0]] + [r for r in rows[1:] if (s := step_of(r)) is not None and s <= keep_steps]
    text = io.StringIO()
    csv.writer(text).writerows(kept)
    return text.getvalue()


def load_run(run: Path | str, epoch: Optional[int] = None, device: str = "cpu",
             method: Optional[str] = None) -> tuple[Method, dict]:
    """Rebuild a trained model from a run folder (weights after ``epoch``; default: the last).

    ``method``: the method as the caller gave it. A run whose config names code to
    import (``path.py:Class``, ``module:Class``) is loaded only when ``method`` names the
    same: a value read from a received file never makes comm-diag import code. Every
    checkpoint must carry the run's identity (``check_belongs``) and fit its config."""
    run = Path(run)
    meta = read_config(run)
    if meta is None or not (run / CHECKPOINTS).is_dir():
        raise FileNotFoundError(f"{run} is not a training run (no config.json or checkpoints/)")
    require_given(meta["train"].get("method", TrainConfig.method), method, f"{run}/config.json")
    cfg = resolve(TrainConfig.from_dict(meta["train"]), strict=False)
    epochs = saved_epochs(run)
    if not epochs:
        raise FileNotFoundError(f"{run} has no checkpoint")
    beyond = [e for e in epochs if e > cfg.epochs]
    if beyond:
        raise TrainingError(f"{run}/{CHECKPOINTS} holds {checkpoint_path(run, beyond[0]).name}, past the run's "
                            f"{cfg.epochs} epochs: it is not part of this run; remove it")
    epoch = epochs[-1] if epoch is None else epoch
    if epoch not in epochs:
        raise FileNotFoundError(f"{run} has no checkpoint for epoch {epoch} (saved: {epochs})")
    dev = resolve_device(device)
    model = build_model(cfg, dev, meta["data"].get("n_modalities", 2))
    path = checkpoint_path(run, epoch)
    state = load_checkpoint(path, dev)
    check_belongs(state, meta, path, epoch)
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise TrainingError(f"{path} does not fit the run's config.json ({first[:160]}): it was written by "
                            f"another method or with other settings") from None
    model.eval()
    return model, {**meta, "epoch": epoch}


CHECKPOINT_NAME = re.compile(r"epoch_(\d{3,})\.pt")


def saved_epochs(run: Path | str) -> list[int]:
    """The epochs RUN/checkpoints holds weights for; other names there are never read."""
    folder = Path(run) / CHECKPOINTS
    found = (CHECKPOINT_NAME.fullmatch(p.name) for p in folder.iterdir()) if folder.is_dir() else ()
    # only the name comm-diag writes for the epoch: a stray epoch_0001.pt is not epoch 1's
    return sorted(int(m.group(1)) for m in found if m and m.group(0) == checkpoint_path(run, int(m.group(1))).name)


def checkpoint_digest(run: Path | str, epoch: int) -> str:
    """sha256 of the weights of one epoch (probes.json records what it probed)."""
    return file_sha256(checkpoint_path(run, epoch))


def data_fingerprint(ds: tg.Dataset) -> str:
    """sha256 of the dataset's manifest (which holds the sha256 of every file)."""
    return hashlib.sha256((ds.root / "manifest.json").read_bytes()).hexdigest()
