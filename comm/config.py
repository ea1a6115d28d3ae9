"""TrainConfig: the one source of truth for every number of a training run, and presets."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping, Optional, Sequence

from comm_diag.errors import InputError
from comm_diag.dict_config import DictConfig, setting
from comm_diag.trifeature_gen.spec import DatasetSpec, check_seed

# the methods of the paper's Figure 4: quickstart's methods, check's controls, the dose study's
# arms (here, not in the method registry, so that the command's options know them without torch)
DEFAULT_METHODS = ("comm", "cross", "cross_self")


PRECISIONS = ("auto", "bf16", "fp32")
# fields a run records but a user does not set, and where they come from
DERIVED = {"image_size": "it is read from the dataset (generate data with --size N)",
           "preset": "it names the preset the run starts from: give it with --preset",
           "method_settings": "it holds the method's own settings: give each as --set NAME=VALUE"}
SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True)
class TrainConfig(DictConfig):
    """The run's settings; saved as RUN/config.json.

    The method's own hyperparameters are not fields here: each method declares them in
    its ``Settings`` dataclass (``comm.methods.settings.MethodSettings``), and
    ``method_settings`` holds the values given for them (after ``comm.methods.resolve``:
    every one of them, defaults filled in and checked). As a dict (config.json, sweeps)
    the two are one flat mapping, as in earlier versions: a name that is not a run
    setting is a method setting.
    """

    _what = "training settings"

    method: str = setting("comm", "Method: a built-in or plugin name (`comm-diag methods` lists them) or "
                                  "path/to/file.py:ClassName")
    method_settings: Mapping[str, Any] = field(default_factory=dict)  # the method's Settings, by name
    encoder: str = setting("alexnet_bn", "Encoder: a key of comm.encoders.ENCODERS (another name is refused "
                                         "with their list)")
    width: float = setting(0.25, "Encoder channel multiplier (1.0 = torchvision's)")
    d: int = setting(128, "Width of the tokens and of the representation (CoMM's Z, Cross's projections)")
    aug1: Optional[str] = setting("crop", "Augmentation of modality 1: all, none, crop, color, ... or a+b; "
                                          "torchvision: the authors' set image by image (None, as in the paper "
                                          "preset: each method's own)")
    aug2: Optional[str] = setting("crop", "Augmentation of modality 2 (and of any further one)")
    crop_min: Optional[float] = setting(0.5, "Lower scale of the random crop (None, as in the paper preset: each "
                                                      "method's own)")
    epochs: int = setting(6, "Epochs")
    batch_size: int = setting(64, "Batch size (per process)")
    lr: float = setting(1e-3, "Peak learning rate (AdamW)")
    weight_decay: float = setting(1e-4, "AdamW weight decay")
    warmup_epochs: float = setting(0.5, "Linear warm-up, in epochs, then the schedule")
    schedule: str = setting("cosine", "After warm-up: cosine (decay to 0 at the last step) or constant")
    decay_norms_and_biases: bool = True  # weight decay on biases and norm layers too (the authors: no)
    seed: int = setting(0, "Seed of weights, batches and augmentations")
    device: str = setting("auto", "auto, cpu or cuda")
    precision: str = setting("auto", "auto (bf16 autocast where the GPU or CPU computes bf16 natively, else "
                                     "fp32), bf16 or fp32")
    deterministic: bool = setting(False, "Deterministic GPU algorithms: a rerun or a resume on the same GPU gives "
                                         "bit-identical weights (slower; on CPU runs are deterministic anyway)")
    cuda_graph: bool = setting(True, "On a GPU, record the training step once as a CUDA graph and replay it "
                                     "(methods that declare graph_safe; the same weights as eager steps)")
    fast: bool = setting(False, "The fast path: bf16 autocast, the captured step and, on a GPU, the augmentation "
                                "compiled into a few kernels (same draws); its learning curve beside fp32's is the "
                                "fidelity study's 'fast' variant")
    image_size: int = DatasetSpec.size  # the data's, set by ``at_size_of`` alone, never by a user
    preset: str = "cpu"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """The inverse of ``to_dict`` (names that are not run settings: method settings);
        ValueError if a run setting has the wrong type (a damaged config.json)."""
        if not isinstance(d, dict):
            raise InputError(f"training settings must be a JSON object, got {type(d).__name__}")
        cls.check_types(d)
        run = {f.name for f in fields(cls)} - {"method_settings"}
        # dataclasses.replace keeps a recorded None ("the method's own augmentation"), which
        # ``replace`` would skip in favour of the default
        recorded = replace(cls(), **{k: v for k, v in d.items() if k in run})
        return recorded.replace(**{k: v for k, v in d.items() if k not in run and k != "method_settings"},
                                **dict(d.get("method_settings", {})))

    def to_dict(self) -> dict[str, Any]:
        """Run and method settings in one flat dict (config.json's "train")."""
        return {**self.run_settings(), **self.method_settings}

    @classmethod
    def parse_settings(cls, items: Sequence[str]) -> dict[str, Any]:
        """['d=64', 'temperature=0.2', ...] -> {name: value} (``--set`` on the command line).
        A run setting is typed by its field here; any other name is a method setting, kept
        as text and typed by the method's Settings when the config is resolved."""
        run = set(cls().run_settings())
        out: dict[str, Any] = {}
        for item in items:
            key, sep, text = item.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or not key:
                raise InputError(f"--set takes KEY=VALUE (a run setting or one of the method's settings); got {item!r}")
            if key in DERIVED:
                raise InputError(f"{key} is not a setting: {DERIVED[key]}")
            if key in out:  # one source of truth: no silent winner between two --set of one key
                raise InputError(f"--set {key} is given twice ({key}={out[key]!r} and {item!r}): give it once")
            out[key] = cls.parse_value(key, text) if key in run else text
        return out

    @classmethod
    def merge_given(cls, options: Mapping[str, Any], items: Sequence[str] = ()) -> dict[str, Any]:
        """The settings a user gave: named options (None: not given) and ``--set KEY=VALUE``
        items, one source of truth: a setting given both ways is refused, never silently
        won by one of them."""
        given = {k: v for k, v in options.items() if v is not None}
        from_set = cls.parse_settings(items)
        both = sorted(set(given) & set(from_set))
        if both:
            k = both[0]
            raise InputError(f"--{k.replace('_', '-')} {given[k]} and --set {k}={from_set[k]} both set {k}: give it once")
        return {**from_set, **given}

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with ``changes``; None values are skipped. A name that is not a run
        setting goes to ``method_settings``: a study, a preset, the command line and a
        plugin all change a method's setting the same way."""
        run = {f.name for f in fields(self)}
        given = {k: v for k, v in changes.items() if v is not None}
        method = {k: v for k, v in given.items() if k not in run}
        out = {k: v for k, v in given.items() if k in run}
        if method or "method_settings" in out:
            out["method_settings"] = {**out.get("method_settings", self.method_settings), **method}
        return replace(self, **out)

    def run_settings(self) -> dict[str, Any]:
        """The run-level settings only (what does not depend on the method)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "method_settings"}

    def validate(self) -> "TrainConfig":
        """The run-level settings (``comm.methods.resolve`` checks the method's too)."""
        from comm_diag.comm.augment import parse_policy
        from comm_diag.comm.encoders import ENCODERS

        self.check_types(self.run_settings())  # epochs=1.5, seed=True, lr='0.1' from Python: named, not a TypeError later
        if self.encoder not in ENCODERS:
            raise InputError(f"unknown encoder {self.encoder!r}; choose from {', '.join(ENCODERS)}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise InputError(f"unknown device {self.device!r}; choose from auto, cpu, cuda")
        if self.schedule not in SCHEDULES:
            raise InputError(f"unknown schedule {self.schedule!r}; choose from {', '.join(SCHEDULES)}")
        if self.precision not in PRECISIONS:
            raise InputError(f"unknown precision {self.precision!r}; choose from {', '.join(PRECISIONS)}")
        if self.fast and self.precision == "fp32":
            raise InputError("fast is the bf16 path: it takes precision auto or bf16, not fp32")
        for policy in (self.aug1, self.aug2):
            if policy is not None:
                parse_policy(policy)
        if self.crop_min is not None and not 0.0 < self.crop_min <= 1.0:
            raise InputError(f"crop-min must be in (0, 1], got {self.crop_min}")
        check_finite(self.run_settings())
        if self.batch_size < 2:
            raise InputError(f"batch-size must be >= 2 (the other samples are the negatives), got {self.batch_size}")
        for name in ("epochs", "d"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        check_seed(self.seed)
        if not 0.0 < self.width <= 4.0:
            raise InputError(f"width must be in (0, 4], got {self.width}")
        if self.warmup_epochs < 0:
            raise InputError(f"warmup-epochs must be >= 0, got {self.warmup_epochs}")
        if self.lr <= 0 or self.weight_decay < 0:
            raise InputError("lr must be > 0, weight-decay >= 0")
        return self


def check_finite(settings: Mapping[str, Any]) -> None:
    """ValueError naming the first NaN or infinite number among ``settings``."""
    for name, value in settings.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"{name.replace('_', '-')} must be a finite number, got {value}")


@dataclass(frozen=True)
class Preset:
    """A named budget: the training settings and the data generated for them by default
    (``generate --preset``, ``quickstart``). A run reads its image size from its data, so
    a preset trains on data of any size; ``data`` is only what it generates."""

    train: TrainConfig
    data: Mapping[str, Any]
    plumbing: bool = False  # a check that everything runs: its verdicts say nothing of the methods


PRESETS: dict[str, Preset] = {
    # TrainConfig's defaults: 64 px, an AlexNet with BatchNorm at a quarter of its width,
    # d=128, what 2 CPU cores train in minutes. BatchNorm: with texture labels and the same
    # budget (6 epochs of pairs, crop 0.5-1) its features read texture at 88% against 64%
    # without, and CoMM's uniqueness rises by 6-10 points (README, "Why CoMM's uniqueness
    # stays low"). Augmentation: a random crop of scale 0.5-1 for every method (Cross's own
    # setting). At 64 px the full SimCLR set slowed CoMM badly: after 2 epochs on unbiased
    # pairs, R/U read 37/28 with it, 61/37 with crop 0.2-1 only, 70/30 with crop 0.5-1 +
    # flip + colour, 74/43 with crop 0.5-1 only (benchmarks in the README).
    "cpu": Preset(TrainConfig(), {}),  # DatasetSpec's defaults (64 px)
    # The paper and the authors' code: 224 px, AlexNet, d=512, batch 64, AdamW at a constant
    # 3e-4 with weight decay 1e-4 off for biases and norms, tau 0.1, 100 epochs; NT-Xent terms
    # (same-view negatives too), averaged; every method's own augmentation (CoMM: SimCLR's set).
    # The method settings a preset names apply to every method that has them as the package's
    # own settings (a plugin's own field of the same name keeps its default:
    # MethodSettings.package_settings). fp32, as the authors trained (no autocast): whether
    # bf16 changes the curve is the fidelity study's to say.
    "paper": Preset(TrainConfig(encoder="alexnet", width=1.0, d=512, batch_size=64, lr=3e-4, weight_decay=1e-4,
                                aug1=None, aug2=None, crop_min=None, precision="fp32",
                                epochs=100, warmup_epochs=0.0, schedule="constant", decay_norms_and_biases=False,
                                method_settings={"temperature": 0.1, "nce": "nt_xent", "terms": "mean",
                                                 "cross_term": "heads"},
                                preset="paper"),
                    # the authors' test set: every same-shape pair of test images, self-pairs included
                    {"size": 224, "all_test_pairs": True}),
    # A run of the whole pipeline on tiny data in under a minute: checks an install, shows
    # nothing (plumbing: its reports say so).
    # Plain AlexNet and every method's own augmentation, as before 0.4.
    "smoke": Preset(TrainConfig(encoder="alexnet", aug1=None, aug2=None, crop_min=None, d=32,
                                method_settings={"proj_hidden": 64, "proj_dim": 32}, epochs=1, batch_size=64,
                                preset="smoke"),
                    {"size": 32, "train_pairs": 512, "probe_pairs": 512, "test_pairs": 256}, plumbing=True),
}


def fast(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` on the fast path: bf16 (a preset's fp32, the paper's, yields to it; a user's
    explicit --precision fp32 with --fast is refused by ``validate``)."""
    return cfg.replace(fast=True, precision="bf16")


def check_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[name]


def preset_data(name: str) -> dict[str, Any]:
    """The dataset settings ``name`` generates by default."""
    return dict(check_preset(name).data)


def at_size_of(cfg: TrainConfig, spec: DatasetSpec) -> TrainConfig:
    """``cfg`` at the image size of data made by ``spec``: the one place a run's image size
    is set (from its data, never by a user: a preset trains on data of any size)."""
    return cfg.replace(image_size=spec.size)


def preset(name: str) -> TrainConfig:
    """The run settings of preset ``name``, at the image size of its default data (a model
    built without data, as the benchmarks do, takes it; a run takes its data's). The
    preset's method settings are not among them: ``comm.methods.resolve`` gives each method
    those it declares as the package's settings (``preset_method_settings``)."""
    p = check_preset(name)
    return at_size_of(replace(p.train, method_settings={}), DatasetSpec(**p.data))


def preset_method_settings(name: str) -> dict[str, Any]:
    """The method settings preset ``name`` sets (the paper's temperature, its NT-Xent terms);
    none for a name that is not a preset."""
    return dict(PRESETS[name].train.method_settings) if name in PRESETS else {}

