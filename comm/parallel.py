"""One training on several local processes, as a library call: ``train_parallel`` starts
torchrun on this module's worker, which joins the process group and calls ``train``.

The job (resolved config, dataset, run folder) travels as a JSON file, so the workers
train exactly the config the caller checked; nothing is rebuilt from command-line text.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from comm_diag.errors import InputError
import comm_diag.trifeature_gen as tg

from comm_diag.comm.config import TrainConfig
from comm_diag.comm.methods import resolve
from comm_diag.comm.run_folder import TrainingError
from comm_diag.comm.runtime import gpu_available, usable_cores
from comm_diag.comm.train import fit_to_data, train


def train_parallel(cfg: TrainConfig, data: tg.Dataset | Path | str, out: Path | str, nproc: int, *,
                   resume: bool = False) -> Path:
    """``train`` data-parallel on ``nproc`` local processes (torchrun, DistributedDataParallel:
    gloo on CPU, NCCL with one GPU per process); ``cfg.batch_size`` is per process. The
    config and data are checked here, before any process starts. torchrun stops every
    process as soon as one fails, and a failure is a TrainingError (finished epochs are
    kept: ``resume=True`` continues). Returns the run folder."""
    if nproc < 2:
        raise InputError(f"--nproc must be >= 2 to launch processes, got {nproc}")
    ds = data if isinstance(data, tg.Dataset) else tg.load(data)
    cfg = fit_to_data(cfg, ds)  # the config itself is resolved and checked by write_job
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    if not gpu_available() or cfg.device == "cpu":
        # the cores are shared between the processes
        env.setdefault("COMM_DIAG_THREADS", str(max(1, usable_cores() // nproc)))
    with tempfile.TemporaryDirectory() as tmp:
        job = write_job(cfg, ds, out, Path(tmp) / "job.json", resume=resume)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "-m", __name__, str(job)]
        # the workers' progress passes through; torchrun's own report of a failed worker (a
        # multi-page traceback of the launcher) is left out: the worker's one line says why
        done = subprocess.run(cmd, env=env, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        ours = [line[line.index("error (rank"):] for line in done.stderr.splitlines() if "error (rank" in line]
        reason = "; ".join(ours) if ours else " / ".join(done.stderr.strip().splitlines()[-3:])
        raise TrainingError(f"a training process failed (exit code {done.returncode}: {reason}); "
                            f"finished epochs are kept: resume to continue")
    return Path(out)


def write_job(cfg: TrainConfig, data: tg.Dataset | Path | str, out: Path | str, path: Path | str, *,
              resume: bool = False) -> Path:
    """The job file the workers read: to start them yourself (several nodes, a scheduler),
    ``torchrun [its options] -m comm_diag.comm.parallel JOB.json``."""
    cfg = resolve(cfg)
    root = data.root if isinstance(data, tg.Dataset) else Path(data)
    path = Path(path)
    path.write_text(json.dumps({"config": cfg.to_dict(), "data": str(Path(root).resolve()),
                                "out": str(Path(out).resolve()), "resume": resume}, indent=2))
    return path


def _report_epochs(info) -> None:
    if info.step == info.steps_per_epoch:
        print(f"epoch {info.epoch}/{info.epochs}: loss {info.loss:.4f}, {info.pairs_per_s:.0f} pairs/s", flush=True)


def worker(job_path: str) -> int:
    """One process of ``train_parallel`` (under torchrun): its exit status."""
    job = json.loads(Path(job_path).read_text())
    try:
        train(TrainConfig.from_dict(job["config"]), job["data"], job["out"], resume=job["resume"],
              on_step=_report_epochs)
    except (ValueError, OSError, TrainingError, RuntimeError) as e:
        print(f"error (rank {os.environ.get('RANK', '?')}): {e}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(worker(sys.argv[1]))
