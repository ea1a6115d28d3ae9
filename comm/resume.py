"""What a resumed run takes from its folder: the checkpoint to continue from (checked to be
this run's, of its settings and data) and the arithmetic it started with (``numerics``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch

from comm_diag.comm.run_folder import (TrainingError, changed_settings, check_belongs, checkpoint_path, identity_of,
                                       load_checkpoint, read_config)
from comm_diag.comm.runtime import Runtime, set_threads


def resume_state(out: Path, meta: dict, device: torch.device) -> tuple[dict, bool]:
    """The checkpoint to resume from: last.pt, or the initialisation (epoch_000.pt) of a
    run stopped before its first epoch ended, and whether the run carries no identity (the
    format of 0.2/0.3, ``run_folder.identity_of``); TrainingError if it is not this run's."""
    last = checkpoint_path(out)
    if last.is_file():
        state = load_checkpoint(last, device)
        if not isinstance(state.get("config"), dict) or not isinstance(state["config"].get("train"), dict) \
                or "optimizer" not in state:
            raise TrainingError(f"--resume: {last} is not a comm-diag resume checkpoint")
        recorded = state["config"]
    elif checkpoint_path(out, 0).is_file() and read_config(out) is not None:
        state, recorded = load_checkpoint(checkpoint_path(out, 0), device), read_config(out)
    else:
        raise TrainingError(f"--resume: {out} has no checkpoint to resume from")
    differ = changed_settings(recorded["train"], meta["train"])
    if differ:
        raise TrainingError(f"--resume: {out} was trained with other settings ("
                            + ", ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in differ.items())
                            + "); resume with the same options or choose another --out")
    if recorded.get("data", {}).get("fingerprint") != meta["data"]["fingerprint"]:
        then = recorded.get("data", {}).get("path")
        same_place = then == meta["data"]["path"]
        raise TrainingError(f"--resume: {out} was trained on another dataset "
                            + (f"at this same path ({then}: its files changed since, e.g. it was generated again)"
                               if same_place else f"({then})"))
    legacy = state.get("run") is None and identity_of(recorded) is None  # 0.2/0.3: no identity to check
    check_belongs(state, {} if legacy else meta, last)
    return state, legacy


def resumed_numerics(out: Path, resume: bool, runtime: Runtime, compile: Optional[str]) -> Optional[dict]:
    """The run's numerics (``Runtime.numerics``), part of its identity. A resumed run keeps
    the arithmetic it started with: its recorded CPU thread count is taken again (a study
    resumed with other --workers changes no weight), and another compile backend is refused;
    a run of 0.8 or earlier recorded none, and resumes with none in its identity."""
    now = runtime.numerics(compile)
    recorded = (read_config(out) or {}) if resume and out.is_dir() else {}
    if resume and recorded and "numerics" not in recorded:
        return None
    then = recorded.get("numerics") if isinstance(recorded.get("numerics"), dict) else None
    if then is None:
        return now
    if then.get("compile") != now["compile"]:
        raise TrainingError(f"--resume: {out} was trained with compile={then.get('compile')!r}, now "
                            f"{now['compile']!r}: compiled kernels round otherwise; resume with the same --compile")
    threads = then.get("cpu_threads")
    if isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1 and not runtime.on_gpu:
        now["cpu_threads"] = set_threads(threads)
    return now
