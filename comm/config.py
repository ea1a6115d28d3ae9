"""TrainConfig: the one source of truth for every number of a training run, and presets."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Optional

from trifeature_gen.spec import DictConfig


PRECISIONS = ("auto", "bf16", "fp32")


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
    aug1: Optional[str] = None  # augmentation policy of modality 1 (None: the method's default)
    aug2: Optional[str] = None  # augmentation policy of modality 2
    crop_min: Optional[float] = None  # lower scale of the random crop (None: the method's default)
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 0.5  # linear warm-up, then cosine decay to 0
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "auto"  # auto (bf16 autocast on CUDA and on CPUs with native bf16, else fp32) | bf16 | fp32
    image_size: int = 64  # the data's image side; checked against the dataset
    preset: str = "cpu"

    def replace(self, **changes: Any) -> "TrainConfig":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

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
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; choose from {', '.join(PRECISIONS)}")
        for policy in (self.aug1, self.aug2):
            if policy is not None:
                parse_policy(policy)
        if self.crop_min is not None and not 0.0 < self.crop_min <= 1.0:
            raise ValueError(f"crop-min must be in (0, 1], got {self.crop_min}")
        for name in ("epochs", "batch_size", "d", "heads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise ValueError("batch-size must be >= 2 (the other samples are the negatives)")
        if self.d % self.heads or self.d % 4:
            raise ValueError(f"d={self.d} must be a multiple of 4 and of heads={self.heads}")
        if self.w_full < 0 or self.w_masked < 0 or self.w_full + self.w_masked == 0:
            raise ValueError("loss weights w-full and w-masked must be >= 0 and not both 0")
        if self.lr <= 0 or self.temperature <= 0 or self.weight_decay < 0:
            raise ValueError("lr and temperature must be > 0, weight-decay >= 0")
        return self


PRESETS: dict[str, TrainConfig] = {
    # 64 px, an AlexNet at a quarter of its width, d=128: what 2 CPU cores train in minutes.
    # Augmentation: a random crop of scale 0.5-1 for every method (Cross's own setting).
    # At 64 px the full SimCLR set slowed CoMM badly: after 2 epochs on unbiased pairs,
    # R/U read 37/28 with it, 61/37 with crop 0.2-1 only, 70/30 with crop 0.5-1 + flip +
    # colour, 74/43 with crop 0.5-1 only (benchmarks in the README).
    "cpu": TrainConfig(aug1="crop", aug2="crop", crop_min=0.5, epochs=6),
    # The paper: 224 px, AlexNet, d=512, batch 64, AdamW 3e-4 / 1e-4, tau 0.1, 100 epochs.
    "paper": TrainConfig(encoder="alexnet", width=1.0, d=512, batch_size=64, lr=3e-4, weight_decay=1e-4,
                         temperature=0.1, epochs=100, warmup_epochs=0.0, image_size=224, preset="paper"),
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

