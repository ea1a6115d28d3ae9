"""The training loop: AdamW, warm-up + schedule, batched augmentation, checkpoints, resume
(the run folder's format is ``run_folder``'s; device and precision are ``runtime``'s).

Every random number is derived from (seed, epoch, step), so a run stopped at
any moment and resumed from its last checkpoint ends with the same weights as
an uninterrupted one (on the same device).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np
import torch

from comm_diag.errors import InputError
import comm_diag.trifeature_gen as tg

from comm_diag.outputs import claim, replace_and_open, write_file
from comm_diag.received import no_links
from comm_diag.comm import distributed as dist
from comm_diag.comm.augment import Augment
from comm_diag.comm.config import TrainConfig, at_size_of
from comm_diag.comm.methods import METHODS, Method, as_batch, preflight, resolve
from comm_diag.comm.optim import lr_at, param_groups
from comm_diag.comm.run_folder import (CHECKPOINTS, CONFIG, LOG, TrainingError, build_model, checkpoint_path,
                                       identity_of, kept_log, run_config, save_checkpoint)
from comm_diag.comm.resume import resume_state, resumed_numerics
from comm_diag.comm.runtime import Runtime, seed_global
from comm_diag.comm.cuda_graph import GraphedStep, unsafe_reason
from comm_diag.comm.step import TrainStep, step_seed


@dataclass(frozen=True)
class StepInfo:
    epoch: int  # 1-based
    step: int  # 1-based within the epoch
    steps_per_epoch: int
    epochs: int  # total epochs of the run
    global_step: int
    loss: float
    pairs_per_s: float


def fit_to_data(cfg: TrainConfig, ds: tg.Dataset) -> TrainConfig:
    """``cfg`` for this dataset: its image size is the data's (a preset trains on data of
    any size); ValueError if a batch needs more pairs than the data has."""
    if cfg.batch_size > ds.n_samples("train"):
        raise InputError(f"batch size {cfg.batch_size} is larger than the {ds.n_samples('train')} training pairs")
    return at_size_of(cfg, ds.spec)


def augmenters(method: Method, cfg: TrainConfig) -> list[Augment]:
    """Per-modality augmentation: the method's default, with the config's policy and
    crop scale where it sets them."""
    base = method.default_augment
    scale = base.crop_scale if cfg.crop_min is None else (cfg.crop_min, 1.0)
    policies = [cfg.aug1, cfg.aug2] + [cfg.aug2] * (method.n_modalities - 2)  # modality >= 3: as modality 2
    return [dataclasses.replace(base, policy=base.policy if p is None else p, crop_scale=scale)
            for p in policies[:method.n_modalities]]


def device_modalities(ds: tg.Dataset, pair_set: str, device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per modality: (uint8 Nx3xHxW images on the device, (P,) index of each sample's image);
    an image array shared by several modalities is copied once. Converted to float per batch."""
    copies: dict[int, torch.Tensor] = {}
    out = []
    for i in range(ds.n_modalities):
        images, index = ds.modality(pair_set, i)
        if id(images) not in copies:
            copies[id(images)] = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device)  # Nx3xHxW
        out.append((copies[id(images)], torch.from_numpy(index).to(device)))
    return out


def compile_modules(model: torch.nn.Module, backend="inductor") -> int:
    """``torch.compile`` every module the method calls, in place (``nn.Module.compile``: the
    parameters and the state_dict keep their names, so checkpoints are those of an
    uncompiled run): the model's children, and the members of its ModuleLists and
    ModuleDicts (a list is never called itself: 0.4 compiled the lists, so the encoders,
    converters and heads in them ran uncompiled). The method's step stays Python: a user's
    method needs nothing to be compiled. ``backend``: a torch.compile backend (a name or a
    function). Returns how many modules were compiled."""
    compiled = 0
    for child in model.children():
        members = list(child.values() if isinstance(child, torch.nn.ModuleDict) else child) \
            if isinstance(child, (torch.nn.ModuleList, torch.nn.ModuleDict)) else [child]
        for m in members:
            if any(True for _ in m.parameters()):
                m.compile(backend=backend)
                compiled += 1
    return compiled


def _has_unused(model: torch.nn.Module) -> bool:
    """Whether some parameters take no part in the method's loss (DDP must look for them)."""
    return bool(getattr(model, "unused_parameters", False))


def _record(step_fn: TrainStep, xs, where: str):
    """The step as a CUDA graph (comm.cuda_graph), or None, after one line saying why it
    trains eagerly instead (the weights are the same either way)."""
    try:
        return GraphedStep(step_fn, xs)
    except TrainingError:
        raise
    except Exception as e:  # a kernel that cannot be recorded: the eager step is the same step
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        print(f"note: the training step of {step_fn.method} could not be recorded as a CUDA graph ({first}); "
              f"it trains eagerly", file=sys.stderr, flush=True)
        return None


def checked(cfg: TrainConfig, data: tg.Dataset | Path | str) -> tuple[TrainConfig, tg.Dataset]:
    """The resolved config for this dataset and the dataset, checked before any byte is
    written; a user's method also takes one trial step on a few real pairs (not under
    torchrun, where a step's collectives need every rank; there the loop names a failing step)."""
    ds = data if isinstance(data, tg.Dataset) else tg.load(data)
    cfg = fit_to_data(resolve(cfg), ds)
    if cfg.method not in METHODS and not dist.launched():
        preflight(cfg, [as_batch(x) for x in ds.samples("train", np.arange(min(4, ds.n_samples("train"))))])
    return cfg, ds


def train(
    cfg: TrainConfig,
    data: tg.Dataset | Path | str,
    out: Path | str,
    *,
    resume: bool = False,
    on_step: Optional[Callable[[StepInfo], None]] = None,
    log_every: int = 1,
    sync_every: Optional[int] = None,
    compile: Optional[str] = None,
) -> Path:
    """Train ``cfg.method`` on the dataset's train pairs; returns the run folder.

    Under torchrun (N processes) it trains data-parallel: every global batch of
    N x batch_size pairs is split between the processes, the losses see the
    negatives of all of them, and only rank 0 writes files or reports progress.

    Writes RUN/config.json (resolved config + data fingerprint), RUN/log.csv (one
    row per step: every loss term, lr, pairs/s), RUN/checkpoints/last.pt (model +
    optimiser, atomically, at the end of every epoch) and
    RUN/checkpoints/epoch_XXX.pt (weights after epoch XXX; 000 = initialisation).

    ``sync_every``: the loss terms stay on the device and are read back (logged, checked
    for a non-finite loss, reported to ``on_step``) every that many steps and at the end
    of every epoch; None: every step on CPU (a read-back costs nothing there), every
    ``runtime.GPU_SYNC_EVERY`` steps on a GPU. The arithmetic is the same whatever its value.

    ``compile``: a ``torch.compile`` backend ("inductor", the default one) applied to each of
    the model's modules (encoders, fusion, heads); their weights and checkpoints are the
    same as without it, and the losses equal within float rounding (tested on CPU).
    """
    cfg, ds = checked(cfg, data)
    joined = not dist.is_distributed() and dist.launched()
    gpu = dist.init_from_env(cfg.device)
    try:
        # rank 0 writes the run folder and holds it for the whole run (comm_diag.outputs)
        with claim(out, "run") if dist.rank() == 0 else contextlib.nullcontext(Path(out)) as out:
            runtime = Runtime.of(cfg, gpu).activate()
            sync_every = runtime.sync_every if sync_every is None else sync_every
            if sync_every < 1:
                raise InputError(f"sync_every must be >= 1 step, got {sync_every}")
            return _train(cfg, ds, out, resume, on_step if dist.rank() == 0 else None, log_every, runtime,
                          sync_every, compile)
    finally:
        if joined:
            dist.shutdown()


@dataclass
class _Prepared:
    """A run ready for its first step: model and optimiser built (and restored on resume),
    config.json and the initial weights written."""

    model: Method
    opt: torch.optim.Optimizer
    meta: dict  # config.json: resolved settings, data, identity
    start_epoch: int  # the last finished epoch (0: none)
    graphed: bool  # whether the step may be recorded as a CUDA graph
    augs: list[Augment]  # one per modality


def _prepare(cfg: TrainConfig, ds: tg.Dataset, out: Path, resume: bool, runtime: Runtime,
             compile: Optional[str]) -> _Prepared:
    world, main = dist.world_size(), dist.rank() == 0
    if out.is_dir():  # every rank reads the folder (config.json) before it trains
        no_links(out, "run folder")  # a link (checkpoints/, log.csv) would lead a write outside the run
    meta = run_config(cfg, ds, resumed_numerics(out, resume, runtime, compile))
    model = build_model(cfg, runtime.device, ds.n_modalities)
    if compile:
        compile_modules(model, compile)
    if world > 1 and runtime.on_gpu:
        # batch statistics over all processes' samples, as in one process (SyncBatchNorm has no CPU kernel)
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    augs = augmenters(model, cfg)
    why_eager = unsafe_reason(model, runtime, world, augs) if cfg.cuda_graph else "--no-cuda-graph"
    graphed = why_eager is None
    if cfg.cuda_graph and runtime.on_gpu and main and not graphed:
        print(f"note: {cfg.method} trains with eager steps ({why_eager}), not a CUDA graph", file=sys.stderr,
              flush=True)
    opt = runtime.optimizer(param_groups(model, cfg), cfg.lr, cfg.weight_decay, capturable=graphed)
    start_epoch = 0
    if resume:
        state, legacy = resume_state(out, meta, runtime.device)
        if legacy:  # its checkpoints carry no identity, so the resumed run stays without one
            meta.pop("run_id")
        model.load_state_dict(state["model"])
        if "optimizer" in state:  # from the initialisation: a fresh optimiser is its state
            opt.load_state_dict(state["optimizer"])
        start_epoch = state["epoch"]
    elif checkpoint_path(out).is_file():
        raise TrainingError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    dist.barrier()  # every rank has checked the folder before rank 0 writes into it

    n_pairs = ds.n_samples("train")
    if cfg.batch_size * world > n_pairs:
        raise InputError(f"{world} processes x batch {cfg.batch_size} is more than the {n_pairs} training pairs")
    if main:
        (out / CHECKPOINTS).mkdir(parents=True, exist_ok=True)
        write_file(out / CONFIG, json.dumps(
            {**meta, "processes": world, "precision_used": runtime.precision, "runtime": runtime.describe(),
             "compiled": compile or None}, indent=2))
        if start_epoch == 0:
            save_checkpoint({"model": model.state_dict(), "epoch": 0, "run": identity_of(meta)},
                            checkpoint_path(out, 0))
    return _Prepared(model, opt, meta, start_epoch, graphed, augs)


class _StepLog:
    """The loss terms of the steps since the last read-back, kept on the device and read in one
    host sync every ``sync_every`` steps (a GPU step never waits on a ``.tolist()``): checked
    for a non-finite loss, written to log.csv (rank 0) and reported to ``on_step``."""

    def __init__(self, out: Path, cfg: TrainConfig, steps_per_epoch: int, start_epoch: int, on_step,
                 log_every: int, sync_every: int):
        self.cfg, self.steps_per_epoch, self.on_step = cfg, steps_per_epoch, on_step
        self.log_every, self.sync_every = log_every, sync_every
        self.global_batch = cfg.batch_size * dist.world_size()
        self.ckdir = out / CHECKPOINTS
        path, main = out / LOG, dist.rank() == 0
        # the kept rows go to a new file renamed over log.csv: the old one is never opened for writing
        self.file = replace_and_open(path, kept_log(path, start_epoch * steps_per_epoch)) if main \
            else open(os.devnull, "w")
        self.writer, self.header = csv.writer(self.file), main and path.stat().st_size > 0
        self.pending: list[tuple[int, int, float, torch.Tensor]] = []  # (step, global step, time, terms)

    def add(self, step: int, gstep: int, terms: torch.Tensor) -> bool:
        """Keep a step's terms; True when they are due to be read back."""
        self.pending.append((step, gstep, time.perf_counter(), terms))
        return len(self.pending) >= self.sync_every or step + 1 == self.steps_per_epoch

    def flush(self, epoch: int, names: list[str], t0: float) -> None:
        cfg = self.cfg
        # every rank sees the mean terms, so all stop together on a non-finite loss
        rows = dist.mean_over_ranks(torch.stack([v for *_, v in self.pending])).tolist()  # one host sync
        for (step, gstep, t, _), values in zip(self.pending, rows):
            terms = dict(zip(names, values))
            if not math.isfinite(terms["loss"]):
                raise TrainingError(f"the loss became {terms['loss']} at epoch {epoch}, step {step + 1}; "
                                    f"the last good checkpoint is kept in {self.ckdir}")
            rate = (step + 1) * self.global_batch / (t - t0)
            if (step + 1) % self.log_every == 0 or step + 1 == self.steps_per_epoch:
                if not self.header:
                    self.writer.writerow(["epoch", "step", "global_step", "lr", *terms, "pairs_per_s"])
                    self.header = True
                self.writer.writerow([epoch, step + 1, gstep + 1, f"{lr_at(cfg, gstep, self.steps_per_epoch):.6g}",
                                      *(f"{v:.6g}" for v in terms.values()), f"{rate:.1f}"])
            if self.on_step is not None:
                self.on_step(StepInfo(epoch, step + 1, self.steps_per_epoch, cfg.epochs, gstep + 1, terms["loss"],
                                      rate))
        self.pending.clear()

    def close(self) -> None:
        self.file.close()


def _save_epoch(out: Path, prepared: _Prepared, epoch: int) -> None:
    """The weights after ``epoch`` (epoch_XXX.pt) and what a resume needs (last.pt, with the
    optimiser and the config), each written whole or not at all."""
    model, ident = prepared.model.state_dict(), identity_of(prepared.meta)
    save_checkpoint({"model": model, "epoch": epoch, "run": ident}, checkpoint_path(out, epoch))
    save_checkpoint({"model": model, "optimizer": prepared.opt.state_dict(), "epoch": epoch,
                     "config": prepared.meta, "run": ident}, checkpoint_path(out))


def _train(cfg: TrainConfig, ds: tg.Dataset, out: Path, resume: bool, on_step, log_every: int,
           runtime: Runtime, sync_every: int, compile: Optional[str] = None) -> Path:
    for _ in training_steps(cfg, ds, out, resume, on_step, log_every, runtime, sync_every, compile):
        pass
    return out


def training_steps(cfg: TrainConfig, ds: tg.Dataset, out: Path, resume: bool, on_step, log_every: int,
                   runtime: Runtime, sync_every: int, compile: Optional[str] = None) -> Iterator[None]:
    """The training of a run (resolved ``cfg``, its folder ``out`` already held), one step per
    ``next``: ``train`` runs it to its end; ``comm.together`` interleaves several runs' steps
    in one process. Everything a step draws comes from the run's own generators, seeded by
    (seed, epoch, step), so the interleaving changes no weight."""
    rank, world = dist.rank(), dist.world_size()
    prepared = _prepare(cfg, ds, out, resume, runtime, compile)
    model, graphed = prepared.model, prepared.graphed
    n_pairs, global_batch = ds.n_samples("train"), cfg.batch_size * world
    steps_per_epoch = n_pairs // global_batch
    modalities = device_modalities(ds, "train", runtime.device)
    # DDP averages the gradients; the losses gather the negatives of every process. Parameters a
    # method leaves out of its loss (Cross+Self's projections with cross_term="heads") get no
    # gradient, which DDP must be told to expect.
    forward = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=_has_unused(model)) \
        if world > 1 else model.step
    step_fn = TrainStep(model, prepared.opt, runtime, prepared.augs, cfg.method, forward)
    graph = None  # recorded at the first step (comm.cuda_graph), when it can be
    log = _StepLog(out, cfg, steps_per_epoch, prepared.start_epoch, on_step, log_every, sync_every)
    try:
        for epoch in range(prepared.start_epoch + 1, cfg.epochs + 1):
            model.train()
            seed_global(cfg.seed * 100_003 + epoch)  # any module-level randomness (dropout)
            perm_gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
            perm = torch.randperm(n_pairs, generator=perm_gen).to(runtime.device)
            t0 = time.perf_counter()
            for step in range(steps_per_epoch):
                gstep = (epoch - 1) * steps_per_epoch + step
                lr = lr_at(cfg, gstep, steps_per_epoch)
                model.progress = gstep / (cfg.epochs * steps_per_epoch)
                # this process's share of the global batch (all of it in one process)
                start = step * global_batch + rank * cfg.batch_size
                idx = perm[start:start + cfg.batch_size]
                xs = [images[index[idx]].float() / 255.0 for images, index in modalities]  # n x Bx3xHxW
                seed = step_seed(cfg.seed, gstep, rank)
                where = f"at epoch {epoch}, step {step + 1}; the last finished epoch is kept"
                if graphed and graph is None:
                    graph = _record(step_fn, xs, where)
                    graphed = graph is not None
                names, terms = graph(xs, seed, lr) if graph is not None else \
                    step_fn(xs, runtime.generator(seed), lr, where)
                if log.add(step, gstep, terms):
                    log.flush(epoch, names, t0)
                yield
            log.file.flush()
            if rank == 0:
                _save_epoch(out, prepared, epoch)
    finally:
        log.close()
