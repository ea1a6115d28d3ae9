"""The paper's two experiments end to end: generate, train, probe, report (``comm-diag quickstart``).

Experiment 1 trains every method on unbiased pairs (R and U are probed there),
Experiment 2 on synergy-biased pairs (S is probed there). Both datasets share
the seed, hence images, mapping and probe pairs. Every finished step is kept on
disk: re-running skips finished runs and resumes interrupted ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import trifeature_gen as tg
from comm.config import PRESET_DATA, TrainConfig, preset
from comm.train import StepInfo, same_config, saved_epochs, train

from .report import write_report
from .suite import probe_run
from .tasks import TASKS

METHODS_DEFAULT = ("comm", "cross", "cross_self")
KINDS = {"unbiased": False, "synergy": True}
# What each experiment measures (protocol section 2), and where: R and U on the fused
# representation, S also on each modality alone (synergy only in the fused one is the
# signature of fusion). Probing only these cuts probe time by ~3x.
TASKS_OF = {"unbiased": ("redundancy", "uniqueness1", "uniqueness2"), "synergy": ("synergy",)}
REPRESENTATIONS_OF = {"unbiased": ("fused",), "synergy": None}


@dataclass
class Hooks:
    """Progress callbacks of a long job (the CLI draws bars from them)."""

    on_stage: Callable[[str], None] = lambda msg: None
    on_generate: Optional[Callable[[int, int], None]] = None
    on_step: Optional[Callable[[StepInfo], None]] = None


def parse_seeds(text: str) -> list[int]:
    """'0,1,2' or '0-2' -> [0, 1, 2]; ValueError with one sentence otherwise."""
    try:
        seeds: list[int] = []
        for part in text.split(","):
            part = part.strip()
            if "-" in part[1:]:
                a, b = part.split("-", 1)
                seeds += list(range(int(a), int(b) + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise ValueError(f"seeds must look like 0,1,2 or 0-2, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"seeds must be distinct non-negative integers, got {text!r}")
    return seeds


def dataset_spec(preset_name: str, synergy: bool, seed: int = 0, **overrides) -> tg.DatasetSpec:
    return tg.DatasetSpec(**{**PRESET_DATA[preset_name], **overrides}, synergy=synergy, seed=seed)


def ensure_dataset(spec: tg.DatasetSpec, path: Path, hooks: Hooks) -> tg.Dataset:
    """Load the dataset at path if it is this spec, else generate it."""
    if (path / "manifest.json").is_file():
        ds = tg.load(path)
        if ds.spec == spec:
            return ds
        raise ValueError(f"{path} holds a dataset with other settings; remove it or choose another --out")
    tg.generate(spec, path, progress=hooks.on_generate)
    return tg.load(path)


def _trained_epochs(run: Path, cfg: TrainConfig) -> list[int]:
    """Epochs saved in a run folder written with this config (ValueError if another config)."""
    if not (run / "config.json").is_file():
        return []
    saved = json.loads((run / "config.json").read_text())["train"]
    if not same_config(saved, cfg.to_dict()):
        raise ValueError(f"{run} holds a run with other settings; remove it or choose another --out")
    return saved_epochs(run) if (run / "checkpoints").is_dir() else []


def train_and_probe(cfg: TrainConfig, ds: tg.Dataset, run: Path, hooks: Hooks, label: Optional[str] = None,
                    every_epoch: bool = False, probes: Sequence[str] = ("linear",),
                    tasks: Sequence[str] = TASKS, representations: Optional[Sequence[str]] = None) -> Path:
    """One run: skipped if finished, resumed if interrupted, then probed."""
    trained = cfg.epochs in _trained_epochs(run, cfg)
    if trained and (run / "probes.csv").is_file():
        hooks.on_stage(f"{run.name}: done already, skipped")
        return run
    if not trained:
        resume = (run / "checkpoints" / "last.pt").is_file()
        hooks.on_stage(f"{run.name}: {'resuming' if resume else 'training'} {cfg.method}")
        train(cfg, ds, run, resume=resume, on_step=hooks.on_step)
    hooks.on_stage(f"{run.name}: probing")
    probe_run(run, data=ds, label=label, every_epoch=every_epoch, probes=probes, tasks=tasks,
              representations=representations)
    return run


def quickstart(out: Path | str = "comm-diag-out", *, preset_name: str = "cpu", seeds: Sequence[int] = (0,),
               methods: Sequence[str] = METHODS_DEFAULT, epochs: Optional[int] = None,
               data_overrides: Optional[dict] = None, hooks: Optional[Hooks] = None) -> dict:
    """Run both experiments for every method and seed, then write OUT/report.md,
    OUT/summary.csv and OUT/figure4.png. Returns what ``write_report`` returns."""
    hooks = hooks or Hooks()
    out = Path(out)
    base = preset(preset_name)
    if epochs is not None:
        base = base.replace(epochs=epochs)
    datasets = {}
    for kind, biased in KINDS.items():
        hooks.on_stage(f"dataset: {kind}")
        datasets[kind] = ensure_dataset(dataset_spec(preset_name, biased, **(data_overrides or {})),
                                        out / "data" / kind, hooks)
    runs = []
    for seed in seeds:
        for method in methods:
            for kind, ds in datasets.items():
                cfg = base.replace(method=method, seed=seed)
                runs.append(train_and_probe(cfg, ds, out / "runs" / f"{method}-{kind}-seed{seed}", hooks,
                                            tasks=TASKS_OF[kind], representations=REPRESENTATIONS_OF[kind]))
    hooks.on_stage("report")
    result = write_report(runs, out, title=f"comm-diag quickstart ({preset_name} preset)")
    (out / "quickstart.json").write_text(json.dumps({
        "package_version": tg.__version__, "preset": preset_name, "seeds": list(seeds), "methods": list(methods),
        "train_config": base.to_dict(), "runs": [str(r) for r in runs]}, indent=2))
    return result
