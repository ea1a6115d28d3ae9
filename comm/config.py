"""TrainConfig: the one source of truth for every number of a training run, and presets."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any, Optional, Sequence

from comm_diag.trifeature_gen.spec import DictConfig


PRECISIONS = ("auto", "bf16", "fp32")
# Settings that belong to a method rather than to the run: a method lists those it reads
# in ``Method.settings``; changing one that the chosen method ignores is refused.
METHOD_SETTINGS = ("fusion", "heads", "proj_hidden", "proj_dim", "temperature", "w_full", "w_masked", "nce", "terms",
                   "cross_term", "mask_ratio", "n_masks", "mask_lambda")
SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True)
class TrainConfig(DictConfig):
    """Every setting of a run; saved as RUN_DIR/config.json."""

    _what = "training settings"

    method: str = "comm"  # comm.methods.METHODS key, plugin name, or module:Class / file.py:Class
    encoder: str = "alexnet"  # key of comm.encoders.ENCODERS
    width: float = 0.25  # encoder channel multiplier (alexnet only; 1.0 = torchvision's)
    fusion: str = "transformer"  # key of comm.methods.FUSIONS (CoMM only)
    d: int = 128  # embedding dimension of tokens and of Z (paper: 512)
    heads: int = 8  # attention heads of the fusion block
    proj_hidden: int = 512  # projection head: hidden width
    proj_dim: int = 256  # projection head: output width
    temperature: float = 0.1  # InfoNCE temperature
    w_full: float = 1.0  # CoMM loss: weight of I(Z', Z'')
    w_masked: float = 1.0  # CoMM loss: weight of the masked terms
    nce: str = "cross_view"  # InfoNCE negatives: cross_view (the other view's B-1) | nt_xent (both views', 2B-2)
    terms: str = "sum"  # CoMM loss: sum (the paper's equation) | mean (the authors' code) of the n+1 terms
    mask_ratio: float = 0.5  # InfMasking: fraction of a sample's tokens masked in each masked view
    n_masks: int = 5  # InfMasking: masked views per sample (T)
    mask_lambda: float = 1.0  # InfMasking: covariance weight at the end of training (it grows linearly)
    cross_term: str = "clip"  # Cross+Self's cross-modal term: clip (CLIP on linear projections of the first
    #   SimCLR view) | heads (the authors': nt_xent between the SimCLR heads, on separate crops of scale 0.5-1)
    aug1: Optional[str] = None  # augmentation policy of modality 1 (None: the method's default)
    aug2: Optional[str] = None  # augmentation policy of modality 2
    crop_min: Optional[float] = None  # lower scale of the random crop (None: the method's default)
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 0.5  # linear warm-up, then the schedule
    schedule: str = "cosine"  # after warm-up: cosine (decay to 0 at the last step) | constant
    decay_norms_and_biases: bool = True  # weight decay on biases and norm layers too (the authors: no)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "auto"  # auto (bf16 autocast on CUDA and on CPUs with native bf16, else fp32) | bf16 | fp32
    image_size: int = 64  # the data's image side; checked against the dataset
    preset: str = "cpu"

    @classmethod
    def parse_settings(cls, items: Sequence[str]) -> dict[str, Any]:
        """['d=64', 'crop_min=0.2', ...] -> {field: typed value}, typed by the field's annotation
        (``--set`` on the command line: every field is reachable from this one definition)."""
        kinds = {f.name: str(f.type) for f in fields(cls)}
        out: dict[str, Any] = {}
        for item in items:
            key, sep, text = item.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or key not in kinds:
                raise ValueError(f"--set takes KEY=VALUE with KEY one of {', '.join(kinds)}; got {item!r}")
            kind = kinds[key]
            try:
                if text == "None" and kind.startswith("Optional"):
                    out[key] = None
                elif kind == "bool":
                    if text.lower() not in ("true", "false"):
                        raise ValueError(text)
                    out[key] = text.lower() == "true"
                elif "float" in kind:
                    out[key] = float(text)
                elif "int" in kind:
                    out[key] = int(text)
                else:
                    out[key] = text
            except ValueError:
                raise ValueError(f"--set {key}: expected {kind.replace('Optional[', '').rstrip(']')}, got {text!r}") from None
        return out

    def replace(self, **changes: Any) -> "TrainConfig":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def check_applicable(self, baseline: "TrainConfig") -> "TrainConfig":
        """ValueError if a method-level setting differs from ``baseline`` (the preset) although
        the method does not read it: an option that would be silently ignored is refused."""
        from .methods.plugins import load_class

        reads = getattr(load_class(self.method), "settings", METHOD_SETTINGS)
        ignored = [k for k in METHOD_SETTINGS if getattr(self, k) != getattr(baseline, k) and k not in reads]
        if ignored:
            raise ValueError(f"method {self.method!r} does not use {', '.join(k.replace('_', '-') for k in ignored)}; "
                             f"leave {'it' if len(ignored) == 1 else 'them'} at the preset's value")
        return self

    def validate(self) -> "TrainConfig":
        from .augment import parse_policy
        from .encoders import ENCODERS
        from .methods import FUSIONS
        from .methods.plugins import load_class

        load_class(self.method)  # PluginError (a ValueError) naming the problem
        for name, value, choices in [("encoder", self.encoder, ENCODERS), ("fusion", self.fusion, FUSIONS)]:
            if value not in choices:
                raise ValueError(f"unknown {name} {value!r}; choose from {', '.join(choices)}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"unknown device {self.device!r}; choose from auto, cpu, cuda")
        for name, value, choices in [("nce", self.nce, ("cross_view", "nt_xent")), ("terms", self.terms, ("sum", "mean")),
                                     ("schedule", self.schedule, SCHEDULES),
                                     ("cross-term", self.cross_term, ("clip", "heads"))]:
            if value not in choices:
                raise ValueError(f"unknown {name} {value!r}; choose from {', '.join(choices)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; choose from {', '.join(PRECISIONS)}")
        for policy in (self.aug1, self.aug2):
            if policy is not None:
                parse_policy(policy)
        if self.crop_min is not None and not 0.0 < self.crop_min <= 1.0:
            raise ValueError(f"crop-min must be in (0, 1], got {self.crop_min}")
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{f.name.replace('_', '-')} must be a finite number, got {value}")
        if self.batch_size < 2:
            raise ValueError(f"batch-size must be >= 2 (the other samples are the negatives), got {self.batch_size}")
        for name in ("epochs", "d", "heads", "proj_hidden", "proj_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if not 0.0 < self.mask_ratio < 1.0 or self.n_masks < 2 or self.mask_lambda < 0:
            raise ValueError(f"mask-ratio must be in (0, 1), n-masks >= 2 and mask-lambda >= 0; got "
                             f"{self.mask_ratio}, {self.n_masks}, {self.mask_lambda}")
        if not 0.0 < self.width <= 4.0:
            raise ValueError(f"width must be in (0, 4], got {self.width}")
        if self.warmup_epochs < 0:
            raise ValueError(f"warmup-epochs must be >= 0, got {self.warmup_epochs}")
        if self.d % self.heads or self.d % 4:
            raise ValueError(f"d={self.d} must be a multiple of 4 and of heads={self.heads}")
        if self.w_full < 0 or self.w_masked < 0 or self.w_full + self.w_masked == 0:
            raise ValueError("loss weights w-full and w-masked must be >= 0 and not both 0")
        if self.lr <= 0 or self.temperature <= 0 or self.weight_decay < 0:
            raise ValueError("lr and temperature must be > 0, weight-decay >= 0")
        return self


PRESETS: dict[str, TrainConfig] = {
    # 64 px, an AlexNet with BatchNorm at a quarter of its width, d=128: what 2 CPU cores
    # train in minutes. BatchNorm: with texture labels and the same budget (6 epochs of
    # pairs, crop 0.5-1) its features read texture at 88% against 64% without, and CoMM's
    # uniqueness rises by 6-10 points (README, "Why CoMM's uniqueness stays low").
    # Augmentation: a random crop of scale 0.5-1 for every method (Cross's own setting).
    # At 64 px the full SimCLR set slowed CoMM badly: after 2 epochs on unbiased pairs,
    # R/U read 37/28 with it, 61/37 with crop 0.2-1 only, 70/30 with crop 0.5-1 + flip +
    # colour, 74/43 with crop 0.5-1 only (benchmarks in the README).
    "cpu": TrainConfig(encoder="alexnet_bn", aug1="crop", aug2="crop", crop_min=0.5, epochs=6),
    # The paper and the authors' code: 224 px, AlexNet, d=512, batch 64, AdamW at a constant
    # 3e-4 with weight decay 1e-4 off for biases and norms, tau 0.1, 100 epochs; NT-Xent terms
    # (same-view negatives too), averaged; every method's own augmentation (CoMM: SimCLR's set).
    "paper": TrainConfig(encoder="alexnet", width=1.0, d=512, batch_size=64, lr=3e-4, weight_decay=1e-4,
                         temperature=0.1, epochs=100, warmup_epochs=0.0, schedule="constant",
                         decay_norms_and_biases=False, nce="nt_xent", terms="mean", cross_term="heads",
                         image_size=224,
                         preset="paper"),
    # A one-minute run of the whole pipeline on tiny data: checks an install, shows nothing.
    "smoke": TrainConfig(d=32, proj_hidden=64, proj_dim=32, epochs=1, batch_size=64, image_size=32,
                         preset="smoke"),
}
# dataset settings each preset expects (checked against the data it is given)
PRESET_DATA: dict[str, dict[str, Any]] = {
    "cpu": {"size": 64},
    "paper": {"size": 224},
    "smoke": {"size": 32, "train_pairs": 512, "probe_pairs": 512, "test_pairs": 256},
}


def preset(name: str) -> TrainConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[name]

