"""The training loop: AdamW, warm-up + cosine, batched augmentation, atomic checkpoints, resume.

Every random number is derived from (seed, epoch, step), so a run stopped at
any moment and resumed from its last checkpoint ends with the same weights as
an uninterrupted one (on the same device).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import errno
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch

import comm_diag.trifeature_gen as tg

from ..outputs import claim
from . import distributed as dist
from .augment import Augment
from .config import PRESET_DATA, TrainConfig
from .methods import Method, build_method

CHECKPOINTS = "checkpoints"


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss, bad resume, mismatched data)."""


@dataclass(frozen=True)
class StepInfo:
    epoch: int  # 1-based
    step: int  # 1-based within the epoch
    steps_per_epoch: int
    epochs: int  # total epochs of the run
    global_step: int
    loss: float
    pairs_per_s: float


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but CUDA is not available on this machine")
    return torch.device(name)


def native_bf16_cpu() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), where bf16 autocast
    trains the CPU preset 1.3-1.8x faster; elsewhere it is emulated and slower."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # a torch without these probes
        return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """'bf16' or 'fp32': what ``precision`` ('auto', 'bf16', 'fp32') means on this device."""
    if precision != "auto":
        return precision
    return "bf16" if device.type == "cuda" or native_bf16_cpu() else "fp32"


def autocast(precision: str, device: torch.device):
    """The forward's autocast context: bf16 matmuls and convolutions, losses in fp32."""
    if resolve_precision(precision, device) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def usable_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def set_threads() -> int:
    """Use every core this process may run on, or COMM_DIAG_THREADS where a sweep
    shares the cores between worker processes."""
    n = int(os.environ.get("COMM_DIAG_THREADS", usable_cores()))
    torch.set_num_threads(n)
    return n


def data_fingerprint(ds: tg.Dataset) -> str:
    """sha256 of the dataset's manifest (which holds the sha256 of every file)."""
    return hashlib.sha256((ds.root / "manifest.json").read_bytes()).hexdigest()


def check_data(cfg: TrainConfig, ds: tg.Dataset) -> None:
    if ds.spec.size != cfg.image_size:
        raise ValueError(f"the data has {ds.spec.size} px images but the config expects {cfg.image_size} px "
                         f"(preset {cfg.preset!r} wants {PRESET_DATA.get(cfg.preset, {})}); "
                         f"generate data with --size {cfg.image_size} or pick another preset")
    if cfg.batch_size > len(ds.pairs["train"]):
        raise ValueError(f"batch size {cfg.batch_size} is larger than the {len(ds.pairs['train'])} training pairs")


def lr_at(cfg: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """Linear warm-up over warmup_epochs, then cosine decay to 0 at the last step
    (``schedule="cosine"``) or the peak lr to the end (``"constant"``)."""
    total = cfg.epochs * steps_per_epoch
    warm = int(cfg.warmup_epochs * steps_per_epoch)
    if step < warm:
        return cfg.lr * (step + 1) / warm
    if cfg.schedule == "constant":
        return cfg.lr
    t = (step - warm) / max(1, total - warm)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


def augmenters(method: Method, cfg: TrainConfig) -> list[Augment]:
    """Per-modality augmentation: the method's default, with the config's policy and
    crop scale where it sets them."""
    base = method.default_augment
    scale = base.crop_scale if cfg.crop_min is None else (cfg.crop_min, 1.0)
    return [dataclasses.replace(base, policy=base.policy if p is None else p, crop_scale=scale)
            for p in (cfg.aug1, cfg.aug2)]


def to_device_images(arr, device: torch.device) -> torch.Tensor:
    """uint8 NxHxWx3 numpy -> uint8 Nx3xHxW tensor on the device (converted per batch)."""
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous().to(device)  # Nx3xHxW


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


def param_groups(model: torch.nn.Module, cfg: TrainConfig) -> list[dict]:
    """AdamW groups: every parameter decayed, or (``decay_norms_and_biases=False``, the
    authors' choice) biases, norm layers' scales and other 0/1-d parameters (CLIP's
    logit scale) without decay."""
    if cfg.decay_norms_and_biases:
        return [{"params": list(model.parameters())}]
    flat = [p for p in model.parameters() if p.ndim <= 1]  # biases, BatchNorm/LayerNorm weights, scalars
    rest = [p for p in model.parameters() if p.ndim > 1]
    return [{"params": rest}, {"params": flat, "weight_decay": 0.0}]


def build_model(cfg: TrainConfig, device: torch.device) -> Method:
    torch.manual_seed(cfg.seed)  # the initial weights depend on the seed only
    return build_method(cfg).to(device)


def run_config(cfg: TrainConfig, ds: tg.Dataset) -> dict:
    return {"train": cfg.to_dict(), "data": {"path": str(ds.root), "fingerprint": data_fingerprint(ds),
                                             "spec": ds.spec.to_dict()},
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
    """A TrainConfig dict with every field (defaults filled in), without the device."""
    return {k: v for k, v in {**TrainConfig().to_dict(), **config}.items() if k != "device"}


def train(
    cfg: TrainConfig,
    data: tg.Dataset | Path | str,
    out: Path | str,
    *,
    resume: bool = False,
    on_step: Optional[Callable[[StepInfo], None]] = None,
    log_every: int = 1,
) -> Path:
    """Train ``cfg.method`` on the dataset's train pairs; returns the run folder.

    Under torchrun (N processes) it trains data-parallel: every global batch of
    N x batch_size pairs is split between the processes, the losses see the
    negatives of all of them, and only rank 0 writes files or reports progress.

    Writes RUN/config.json (resolved config + data fingerprint), RUN/log.csv (one
    row per step: every loss term, lr, pairs/s), RUN/checkpoints/last.pt (model +
    optimiser, atomically, at the end of every epoch) and
    RUN/checkpoints/epoch_XXX.pt (weights after epoch XXX; 000 = initialisation).
    """
    cfg.validate()
    ds = data if isinstance(data, tg.Dataset) else tg.load(data)
    check_data(cfg, ds)
    joined = not dist.is_distributed() and dist.launched()
    gpu = dist.init_from_env(cfg.device)
    try:
        # rank 0 writes the run folder and holds it for the whole run (comm_diag.outputs)
        with claim(out, "run") if dist.rank() == 0 else contextlib.nullcontext(Path(out)) as out:
            return _train(cfg, ds, out, resume, on_step if dist.rank() == 0 else None, log_every,
                          gpu or resolve_device(cfg.device))
    finally:
        if joined:
            dist.shutdown()


def _train(cfg: TrainConfig, ds: tg.Dataset, out: Path, resume: bool, on_step, log_every: int,
           device: torch.device) -> Path:
    rank, world = dist.rank(), dist.world_size()
    main = rank == 0
    if device.type == "cpu":
        set_threads()
    ckdir = out / CHECKPOINTS
    last = ckdir / "last.pt"
    meta = run_config(cfg, ds)

    model = build_model(cfg, device)
    if world > 1 and device.type == "cuda":
        # batch statistics over all processes' samples, as in one process (SyncBatchNorm has no CPU kernel)
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    opt = torch.optim.AdamW(param_groups(model, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay)
    start_epoch = 0
    if resume:
        if not last.is_file():
            raise TrainingError(f"--resume: {out} has no checkpoint to resume from")
        state = load_checkpoint(last, device)
        differ = changed_settings(state["config"]["train"], meta["train"])
        if differ:
            raise TrainingError(f"--resume: {out} was trained with other settings ("
                                + ", ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in differ.items())
                                + "); resume with the same options or choose another --out")
        if state["config"]["data"]["fingerprint"] != meta["data"]["fingerprint"]:
            raise TrainingError(f"--resume: {out} was trained on another dataset ({state['config']['data']['path']})")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start_epoch = state["epoch"]
    elif last.is_file():
        raise TrainingError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    dist.barrier()  # every rank has checked the folder before rank 0 writes into it

    global_batch = cfg.batch_size * world
    if global_batch > len(ds.pairs["train"]):
        raise ValueError(f"{world} processes x batch {cfg.batch_size} is more than the "
                         f"{len(ds.pairs['train'])} training pairs")
    if main:
        ckdir.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(
            {**meta, "processes": world, "precision_used": resolve_precision(cfg.precision, device)}, indent=2))
        if start_epoch == 0:
            _atomic_save({"model": model.state_dict(), "epoch": 0}, ckdir / "epoch_000.pt")

    images = to_device_images(ds.images["train"], device)
    p = ds.pairs["train"]
    i1, i2 = torch.from_numpy(p.i1).to(device), torch.from_numpy(p.i2).to(device)
    steps_per_epoch = len(p) // global_batch
    augs = augmenters(model, cfg)
    # DDP averages the gradients; the losses gather the negatives of every process
    forward = torch.nn.parallel.DistributedDataParallel(model) \
        if world > 1 else model.step
    log_path = out / "log.csv"
    if main:
        _truncate_log(log_path, start_epoch * steps_per_epoch)
    amp = autocast(cfg.precision, device)  # resolved once; the context is re-entered every step

    log_file = open(log_path, "a", newline="") if main else open(os.devnull, "w")
    writer, header = csv.writer(log_file), main and log_path.stat().st_size > 0
    try:
        for epoch in range(start_epoch + 1, cfg.epochs + 1):
            model.train()
            torch.manual_seed(cfg.seed * 100_003 + epoch)  # any module-level randomness (dropout)
            perm_gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
            perm = torch.randperm(len(p), generator=perm_gen).to(device)
            t0 = time.perf_counter()
            for step in range(steps_per_epoch):
                gstep = (epoch - 1) * steps_per_epoch + step
                for group in opt.param_groups:
                    group["lr"] = lr_at(cfg, gstep, steps_per_epoch)
                model.progress = gstep / (cfg.epochs * steps_per_epoch)
                # this process's share of the global batch (all of it in one process)
                start = step * global_batch + rank * cfg.batch_size
                idx = perm[start:start + cfg.batch_size]
                xs = [images[i1[idx]].float() / 255.0, images[i2[idx]].float() / 255.0]  # Bx3xHxW each
                gen = torch.Generator(device=device).manual_seed(cfg.seed * 7_919_993 + gstep + rank * 1_000_000_007)
                fns = [lambda x, a=a: a(x, gen) for a in augs]
                with amp:
                    out_terms = forward(xs, fns)
                loss = out_terms["loss"]
                # every rank sees the mean terms, so all stop together on a non-finite loss
                values = dist.mean_over_ranks(torch.stack([v.detach().float() for v in out_terms.values()]))
                terms = dict(zip(out_terms, values.tolist()))
                if not math.isfinite(terms["loss"]):
                    raise TrainingError(f"the loss became {terms['loss']} at epoch {epoch}, step {step + 1}; "
                                        f"the last good checkpoint is kept in {ckdir}")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                rate = (step + 1) * global_batch / (time.perf_counter() - t0)
                if (step + 1) % log_every == 0 or step + 1 == steps_per_epoch:
                    if not header:
                        writer.writerow(["epoch", "step", "global_step", "lr", *terms, "pairs_per_s"])
                        header = True
                    writer.writerow([epoch, step + 1, gstep + 1, f"{lr_at(cfg, gstep, steps_per_epoch):.6g}",
                                     *(f"{v:.6g}" for v in terms.values()), f"{rate:.1f}"])
                if on_step is not None:
                    on_step(StepInfo(epoch, step + 1, steps_per_epoch, cfg.epochs, gstep + 1, terms["loss"], rate))
            log_file.flush()
            if main:
                state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch, "config": meta}
                _atomic_save({"model": state["model"], "epoch": epoch}, ckdir / f"epoch_{epoch:03d}.pt")
                _atomic_save(state, last)
    finally:
        log_file.close()
    return out


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
    cfg_path = run / "config.json"
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
    cfg = TrainConfig.from_dict(meta["train"])
    dev = resolve_device(device)
    model = build_model(cfg, dev)
    model.load_state_dict(load_checkpoint(ckdir / f"epoch_{epoch:03d}.pt", dev)["model"])
    model.eval()
    return model, {**meta, "epoch": epoch}


def saved_epochs(run: Path | str) -> list[int]:
    return sorted(int(p.stem.split("_")[1]) for p in (Path(run) / CHECKPOINTS).glob("epoch_*.pt"))
