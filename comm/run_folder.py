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
import errno
import hashlib
import json
import os
from pathlib import Path
from typing import Optional

import torch

import comm_diag.trifeature_gen as tg

from .config import TrainConfig
from .methods import Method, build_method, resolve
from .runtime import resolve_device

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
    """RUN/config.json as written by ``train``, or None if there is none."""
    path = Path(run) / CONFIG
    return json.loads(path.read_text()) if path.is_file() else None


def build_model(cfg: TrainConfig, device: torch.device, n_modalities: int = 2) -> Method:
    torch.manual_seed(cfg.seed)  # the initial weights depend on the seed only
    return build_method(cfg, n_modalities).to(device)


def _atomic_save(obj, path: Path) -> None:
    """Write, then rename: a reader sees the old file or the new one, and a failed write
    (a full disk) leaves neither a half checkpoint nor its temporary file."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except RuntimeError as e:  # torch's zip writer reports a short write (a full disk) as a RuntimeError
        tmp.unlink(missing_ok=True)
        raise OSError(errno.EIO, f"writing {path.name} failed ({str(e).strip().splitlines()[0]})", str(path)) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict:
    """A checkpoint written by ``_atomic_save``; TrainingError (one line) if it is unreadable."""
    try:
        state = torch.load(path, map_location=device, weights_only=False)
    except Exception as e:  # truncated zip, empty file, not a checkpoint: torch raises many kinds
        raise TrainingError(f"{path} is not a readable checkpoint ({type(e).__name__}): it is truncated or was "
                            f"not written by comm-diag; delete it to retrain from the previous epoch") from None
    if not isinstance(state, dict) or "model" not in state:
        raise TrainingError(f"{path} is not a comm-diag checkpoint")
    return state


def run_config(cfg: TrainConfig, ds: tg.Dataset) -> dict:
    return {"train": cfg.to_dict(), "data": {"path": str(ds.root), "fingerprint": data_fingerprint(ds),
                                             "spec": ds.spec.to_dict(), "n_modalities": ds.n_modalities},
            "package_version": tg.__version__}


def same_config(a: dict, b: dict) -> bool:
    """Two TrainConfig dicts describe the same run (the device may differ; a setting
    missing from an older run's config.json has its default)."""
    return settings(a) == settings(b)


def changed_settings(old: dict, new: dict) -> dict[str, tuple]:
    """setting -> (old value, new value) for every setting two TrainConfig dicts disagree on."""
    a, b = settings(old), settings(new)
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def settings(config: dict) -> dict:
    """A TrainConfig dict as one flat dict of run and method settings, every one of them
    (defaults filled in: older run folders lack the newer ones), without the device."""
    cfg = resolve(TrainConfig.from_dict(config), strict=False)
    return {k: v for k, v in cfg.to_dict().items() if k != "device"}


def _truncate_log(path: Path, keep_steps: int) -> None:
    """Drop log rows past the checkpoint we resume from (they will be redone)."""
    if not path.is_file():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    kept = [rows[0]] + [r for r in rows[1:] if int(r[2]) <= keep_steps]
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(kept if keep_steps > 0 else [])


def load_run(run: Path | str, epoch: Optional[int] = None, device: str = "cpu") -> tuple[Method, dict]:
    """Rebuild a trained model from a run folder (weights after ``epoch``; default: the last)."""
    run = Path(run)
    cfg_path = run / CONFIG
    ckdir = run / CHECKPOINTS
    if not cfg_path.is_file() or not ckdir.is_dir():
        raise FileNotFoundError(f"{run} is not a training run (no config.json or checkpoints/)")
    meta = json.loads(cfg_path.read_text())
    epochs = saved_epochs(run)
    if not epochs:
        raise FileNotFoundError(f"{run} has no checkpoint")
    epoch = epochs[-1] if epoch is None else epoch
    if epoch not in epochs:
        raise FileNotFoundError(f"{run} has no checkpoint for epoch {epoch} (saved: {epochs})")
    cfg = resolve(TrainConfig.from_dict(meta["train"]), strict=False)
    dev = resolve_device(device)
    model = build_model(cfg, dev, meta["data"].get("n_modalities", 2))
    model.load_state_dict(load_checkpoint(checkpoint_path(run, epoch), dev)["model"])
    model.eval()
    return model, {**meta, "epoch": epoch}


def saved_epochs(run: Path | str) -> list[int]:
    return sorted(int(p.stem.split("_")[1]) for p in (Path(run) / CHECKPOINTS).glob("epoch_*.pt"))
def data_fingerprint(ds: tg.Dataset) -> str:
    """sha256 of the dataset's manifest (which holds the sha256 of every file)."""
    return hashlib.sha256((ds.root / "manifest.json").read_bytes()).hexdigest()
