"""The optimiser's parameter groups and the learning-rate schedule of a run: pure functions of
its config (training, the benchmarks and the tests read the same ones)."""

from __future__ import annotations

import math

import torch

from comm_diag.comm.config import TrainConfig


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


def param_groups(model: torch.nn.Module, cfg: TrainConfig) -> list[dict]:
    """AdamW groups: every parameter decayed, or (``decay_norms_and_biases=False``, the
    authors' choice) biases, norm layers' scales and other 0/1-d parameters (CLIP's
    logit scale) without decay."""
    if cfg.decay_norms_and_biases:
        return [{"params": list(model.parameters())}]
    flat = [p for p in model.parameters() if p.ndim <= 1]  # biases, BatchNorm/LayerNorm weights, scalars
    rest = [p for p in model.parameters() if p.ndim > 1]
    return [{"params": rest}, {"params": flat, "weight_decay": 0.0}]
