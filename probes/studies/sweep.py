"""Many runs of one experiment: a plan (variants x seeds x datasets), its execution, its folder.

Quickstart, ablation studies and ``comm-diag check`` are all a list of ``RunJob``s:
one training + probing each, in its own folder, skipped when finished and resumed
when interrupted. Jobs are plain data, so worker processes and Ray tasks run them
the same way (``comm_diag.probes.studies.executors``).

The R/U/S protocol (paper Figure 4): a variant trained on unbiased pairs is probed
for redundancy and uniqueness, trained on synergy-biased pairs for synergy; given a
single dataset, every task is probed on it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

from comm_diag.errors import InputError
import comm_diag.trifeature_gen as tg
from comm_diag.comm.config import TrainConfig, preset_data
from comm_diag.comm.methods import resolve
from comm_diag.outputs import claim as claim_output, read_json, write_file
from comm_diag.comm.run_folder import (checkpoint_path, data_fingerprint, read_config,
                                       same_config, saved_epochs, settings)
from comm_diag.comm.together import TrainJob
from comm_diag.comm.train import train

from comm_diag.probes.hooks import Hooks
from comm_diag.probes.report import tensorboard
from comm_diag.probes.measure.suite import probe_record, probe_run
from comm_diag.probes.measure.tasks import tasks_after

# What a run on each kind of data measures (each task declares the data it is read after),
# and where: R and U on the fused representation, S also on each modality alone (synergy
# only in the fused one is the signature of fusion). Probing only these cuts probe time by ~3x.
REPRESENTATIONS_OF: dict[str, Optional[tuple[str, ...]]] = {"unbiased": ("fused",), "synergy": None, "all": None}
# Synergy at two levels: the linear probe on the fused representation asks whether the
# representation computed it ("fused into"); the MLP probe on it, whether it can be
# recovered from it at all ("recoverable from"). Under biased training a method that
# keeps both attributes lets an MLP compute their agreement without having fused them.
ALSO_OF: dict[str, tuple[tuple[str, str, str], ...]] = {
    "unbiased": (), "synergy": (("mlp", "synergy", "fused"),), "all": (("mlp", "synergy", "fused"),)}


KINDS = ("unbiased", "synergy")  # the preset's two datasets: R and U are read after the first, S the second
# dataset settings a variant may change (a study axis): the image size is the preset's, the
# data seed is the study's (same images), and every variant has an unbiased and a synergy set
DATA_SETTINGS = tuple(f.name for f in dataclasses.fields(tg.DatasetSpec) if f.name not in ("size", "seed", "synergy"))


@dataclass(frozen=True)
class Variant:
    """One arm of an experiment: a label (the ``method`` column of probes.csv), the run and
    method settings it changes from the preset (``TrainConfig.replace`` routes them) and the
    dataset settings it changes (``data``; a name of ``DATA_SETTINGS`` among ``overrides``
    moves there): a variant with data settings trains and is probed on datasets of its own,
    generated with the same seed (same images, probe and test pairs where the generator allows)."""

    name: str
    overrides: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    kinds: tuple[str, ...] = KINDS  # the datasets it trains on (a synergy dose needs only the synergy one)

    def __post_init__(self) -> None:
        if not self.kinds or set(self.kinds) - set(KINDS):
            raise InputError(f"variant {self.name!r}: kinds must be among {', '.join(KINDS)}, got {self.kinds!r}")
        moved = {k: v for k, v in self.overrides.items() if k in DATA_SETTINGS}
        if moved:
            object.__setattr__(self, "overrides", {k: v for k, v in self.overrides.items() if k not in moved})
            object.__setattr__(self, "data", {**self.data, **moved})
        bad = sorted(set(self.data) - set(DATA_SETTINGS))
        if bad:
            raise InputError(f"variant {self.name!r}: {', '.join(bad)} is not a dataset setting a study can vary; "
                             f"choose from {', '.join(DATA_SETTINGS)}")

    @property
    def data_folder(self) -> Optional[str]:
        """OUT/data/<this>/ holds its datasets (variants with the same data settings share them)."""
        return "-".join(f"{k}={self.data[k]}" for k in sorted(self.data)) if self.data else None


@dataclass(frozen=True)
class RunJob:
    """One training + probing, as plain data (picklable for processes and Ray)."""

    name: str  # run folder name, unique in a plan
    label: str  # the ``method`` column of its probes.csv
    config: dict  # TrainConfig.to_dict()
    data: str  # dataset folder
    kind: str  # unbiased | synergy | all: which tasks it is probed for
    run: str  # run folder
    every: int = 0  # also probe every k-th saved epoch (learning curves); 0: init and last only
    probes: tuple[str, ...] = ("linear",)
    tensorboard: bool = False  # also export RUN/tensorboard/ once it is probed (``probes.report.tensorboard``)

    @property
    def seed(self) -> int:
        return self.config["seed"]


MAX_SEEDS = 1000  # a typo such as 0-100000 would plan 200,002 trainings


def parse_seeds(text: str) -> list[int]:
    """'0,1,2' or '0-2' -> [0, 1, 2]; ValueError with one sentence otherwise."""
    try:
        seeds: list[int] = []
        for part in text.split(","):
            part = part.strip()
            if "-" in part[1:]:
                a, b = part.split("-", 1)
                if int(b) - int(a) >= MAX_SEEDS:  # before the list is built: '0-10**9' would fill the memory
                    raise OverflowError
                seeds += list(range(int(a), int(b) + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise InputError(f"seeds must look like 0,1,2 or 0-2, got {text!r}") from None
    except OverflowError:
        seeds = [0] * (MAX_SEEDS + 1)
    if len(seeds) > MAX_SEEDS:
        raise InputError(f"--seeds {text} plans more than {MAX_SEEDS} seeds (each a training of every method): "
                         f"give at most {MAX_SEEDS}")
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise InputError(f"seeds must be distinct non-negative integers, got {text!r}")
    return seeds


def dataset_spec(preset: str, synergy: bool, seed: int = 0, **overrides) -> tg.DatasetSpec:
    return tg.DatasetSpec(**{**preset_data(preset), **overrides}, synergy=synergy, seed=seed)


def ensure_dataset(spec: tg.DatasetSpec, path: Path, hooks: Hooks) -> tg.Dataset:
    """Load the dataset at path if it is this spec, else generate it."""
    if (path / "manifest.json").is_file():
        ds = tg.load(path)
        if ds.spec == spec and ds.manifest.get("renderer_revision", 1) == tg.STYLE_REVISION[spec.renderer]:
            return ds
        if ds.spec == spec:
            raise InputError(f"{path} holds images of an earlier revision of the {spec.renderer!r} renderer; "
                             f"remove it to have them drawn again")
        raise InputError(f"{path} holds a dataset with other settings; remove it or choose another --out")
    tg.generate(spec, path, progress=hooks.on_generate)
    return tg.load(path)


def preset_datasets(out: Path, preset: str, hooks: Hooks, data_overrides: Optional[dict] = None,
                    folder: str = "", kinds: Sequence[str] = KINDS) -> dict[str, tg.Dataset]:
    """The preset's unbiased and synergy datasets (same seed: same images and probe pairs),
    or those of ``kinds``, in OUT/data/[folder/]KIND."""
    datasets = {}
    for kind in kinds:
        hooks.on_stage(f"dataset: {folder + '/' if folder else ''}{kind}")
        datasets[kind] = ensure_dataset(dataset_spec(preset, kind == "synergy", **(data_overrides or {})),
                                        out / "data" / folder / kind, hooks)
    return datasets


def variant_datasets(out: Path, preset: str, variants: Sequence[Variant], hooks: Hooks,
                     data_overrides: Optional[dict] = None) -> dict[str, dict[str, tg.Dataset]]:
    """The unbiased and synergy datasets of every variant that changes dataset settings, by
    ``Variant.data_folder``: the preset's, with the study's and then the variant's changes."""
    return {folder: preset_datasets(out, preset, hooks, {**(data_overrides or {}), **data}, folder=folder,
                                    kinds=kinds)
            for folder, (data, kinds) in _variant_data(variants).items()}


def _variant_data(variants: Sequence[Variant]) -> dict[str, tuple[dict, list[str]]]:
    """Data folder -> (its settings, the kinds its variants train on), for the variants that
    change dataset settings."""
    wanted: dict[str, tuple[dict, set]] = {}
    for v in variants:
        if v.data:
            wanted.setdefault(v.data_folder, (v.data, set()))[1].update(v.kinds)
    return {folder: (data, [k for k in KINDS if k in kinds]) for folder, (data, kinds) in wanted.items()}


def planned_datasets(out: Path, preset: str, variants: Sequence[Variant], kinds: Sequence[str],
                     data_overrides: Optional[dict] = None) -> list[tuple[Path, tg.DatasetSpec]]:
    """(folder, spec) of every dataset a study on the preset's data generates (``kinds``: the
    preset's own; none when the user gives --data), as ``preset_datasets`` and
    ``variant_datasets`` will: what the study's disk estimate counts."""
    own = [(out / "data" / k, dataset_spec(preset, k == "synergy", **(data_overrides or {}))) for k in kinds]
    return own + [(out / "data" / folder / k, dataset_spec(preset, k == "synergy",
                                                           **{**(data_overrides or {}), **data}))
                  for folder, (data, ks) in _variant_data(variants).items() for k in ks]


# what the two datasets of a study must share: the images' look and the tasks' definitions
SAME_IN_BOTH = ("size", "renderer", "period", "shared", "unique", "synergy_src", "synergy_tgt", "seed",
                "train_fraction")


def given_datasets(paths: Sequence[Path | str]) -> dict[str, tg.Dataset]:
    """User datasets: one (every task probed on it) or an unbiased + a synergy one."""
    dss = [tg.load(p) for p in paths]
    if len(dss) == 1:
        return {"all": dss[0]}
    kinds = sorted(ds.spec.synergy for ds in dss)
    if len(dss) != 2 or kinds != [False, True]:
        got = ", ".join(f"{p} ({'synergy-biased' if ds.spec.synergy else 'unbiased'})" for p, ds in zip(paths, dss))
        raise InputError(f"give --data once (every task is probed on it) or twice, one unbiased and one "
                         f"synergy-biased dataset; got {got}")
    unlike = [k for k in SAME_IN_BOTH if getattr(dss[0].spec, k) != getattr(dss[1].spec, k)]
    if unlike:  # the two kinds' scores are compared with each other: one world of images and tasks
        raise InputError("the unbiased and synergy datasets given with --data differ in "
                         + ", ".join(f"{k} ({getattr(dss[0].spec, k)} vs {getattr(dss[1].spec, k)})" for k in unlike)
                         + "; a study compares their scores, so give two datasets drawn alike but for --synergy")
    return {("synergy" if ds.spec.synergy else "unbiased"): ds for ds in dss}


def plan(base: TrainConfig, variants: Sequence[Variant], seeds: Sequence[int], data: dict[str, Path | str],
         out: Path, every: int = 0, probes: Sequence[str] = ("linear",), tensorboard: bool = False) -> list[RunJob]:
    """Every (seed, variant, dataset) run, in the order they execute (seed-major, so the
    first seed of every variant finishes first). ``data``: kind -> dataset folder."""
    jobs = []
    for seed in seeds:
        for v in variants:
            cfg = resolve(base.replace(**v.overrides, seed=seed))
            if v.data:  # its own datasets, generated by ``variant_datasets``
                own = {kind: str(out / "data" / v.data_folder / kind) for kind in v.kinds}
            else:  # the study's, or the user's single dataset ("all") whatever its kinds
                own = {kind: path for kind, path in data.items() if kind == "all" or kind in v.kinds}
            for kind, path in own.items():
                name = f"{v.name}-{kind}-seed{seed}" if kind != "all" else f"{v.name}-seed{seed}"
                jobs.append(RunJob(name=name, label=v.name, config=cfg.to_dict(), data=str(path), kind=kind,
                                   run=str(out / "runs" / name), every=every, probes=tuple(probes),
                                   tensorboard=tensorboard))
    return jobs


def _recorded(path: Path, method: str) -> dict:
    """OUT/sweep.json; its method is imported only if it is ``method`` (the caller's)."""
    try:
        old = read_json(path)
    except json.JSONDecodeError as e:
        raise InputError(f"{path} is not valid JSON ({e.msg}, line {e.lineno}): the experiment record is damaged") from None
    if not isinstance(old, dict) or not isinstance(old.get("train_config", {}), dict):
        raise InputError(f"{path} is not a comm-diag experiment record")
    old.pop("package_version", None)
    if "train_config" in old:  # settings added since that folder was written take their defaults
        try:
            old["train_config"] = settings(old["train_config"], trusted=method)
        except (TypeError, ValueError) as e:
            raise InputError(f"{path} is damaged: {e}") from None
    return old


def _mismatch(out: Path, old: dict, new: dict, keys) -> None:
    diff = [k for k in keys if old.get(k) != new.get(k)]
    if diff:
        raise InputError(f"{out} holds another experiment (different {', '.join(diff)}); "
                         f"remove it or choose another --out")


@contextlib.contextmanager
def study_folder(out: Path, kind: str, name: str, base: TrainConfig, given: Optional[dict[str, tg.Dataset]],
                preset: str, hooks: Hooks, data_overrides: Optional[dict] = None,
                kinds: Sequence[str] = KINDS) -> Iterator[dict[str, tg.Dataset]]:
    """Hold the study folder ``out`` for the whole block and yield its datasets.

    ``out`` is claimed exclusively (``comm_diag.outputs``) and marked as this experiment in
    OUT/sweep.json before anything else is written there; another experiment's folder
    (other study, settings or datasets) is refused. The datasets are the user's
    (``data``) or the preset's pair (those of ``kinds``; none when every variant has datasets
    of its own), generated under OUT/data/ (and reused when there).
    """
    ident = {"experiment": kind, "name": name, "train_config": settings(base.to_dict())}
    with claim_output(out, "experiment") as out:
        path = out / "sweep.json"
        old = _recorded(path, base.method) if path.is_file() else None
        if old is not None:
            _mismatch(out, old, ident, ident)
        else:
            out.mkdir(parents=True, exist_ok=True)
            write_file(path, json.dumps({**ident, "data": {}, "package_version": tg.__version__}, indent=2))
        datasets = given or (preset_datasets(out, preset, hooks, data_overrides, kinds=kinds) if kinds else {})
        fingerprints = {k: data_fingerprint(ds) for k, ds in datasets.items()}
        if old is not None and old.get("data"):
            _mismatch(out, old, {"data": fingerprints}, ["data"])
        write_file(path, json.dumps({**ident, "data": fingerprints, "package_version": tg.__version__}, indent=2))
        yield datasets


def _trained_epochs(run: Path, cfg: TrainConfig) -> list[int]:
    """Epochs saved in a run folder written with this config (ValueError if another config)."""
    meta = read_config(run)
    if meta is None:
        return []
    saved = meta["train"]
    # the image size is the data's (training sets it, config.at_size_of); the data's identity is
    # checked by its fingerprint (sweep.json, and a resume), so it is compared nowhere here
    if not same_config(saved, {**cfg.to_dict(), "image_size": saved.get("image_size", cfg.image_size)}):
        raise InputError(f"{run} holds a run with other settings; remove it or choose another --out")
    return saved_epochs(run)


def is_done(job: RunJob) -> bool:
    """Trained to its last epoch and probed, with its learning curve when the job asks for one
    (a finished run rerun with --every is probed again; ValueError if its folder holds
    another run)."""
    cfg = TrainConfig.from_dict(job.config)
    run = Path(job.run)
    return cfg.epochs in _trained_epochs(run, cfg) and \
        probe_record(run, curve=bool(job.every), probes=job.probes, tasks=tasks_after(job.kind))


def training_of(job: RunJob, hooks: Hooks) -> Optional[TrainJob]:
    """What is left to train of a job (None: trained to its last epoch), resumed where its
    folder holds a checkpoint; says which on ``hooks``."""
    cfg = TrainConfig.from_dict(job.config)
    run = Path(job.run)
    if cfg.epochs in _trained_epochs(run, cfg):
        return None
    resume = checkpoint_path(run).is_file()
    hooks.on_stage(f"{job.name}: {'resuming' if resume else 'training'} {job.label}")
    return TrainJob(cfg, job.data, run, resume=resume)


def execute(job: RunJob, hooks: Optional[Hooks] = None) -> str:
    """Run one job: skipped if finished, resumed if interrupted, then probed. Returns the run folder."""
    hooks = hooks or Hooks()
    if is_done(job):
        hooks.on_stage(f"{job.name}: done already, skipped")
        if job.tensorboard and not (Path(job.run) / tensorboard.FOLDER).is_dir():
            tensorboard.export(job.run)
        return job.run
    cfg = TrainConfig.from_dict(job.config)
    run = Path(job.run)
    if job.tensorboard:
        tensorboard.check_replaceable(run)  # before the training it would otherwise follow
    ds = tg.load(job.data)
    todo = training_of(job, hooks)
    if todo is not None:
        train(cfg, ds, run, resume=todo.resume, on_step=hooks.on_step)
    hooks.on_stage(f"{job.name}: probing")
    probe_run(run, data=ds, label=job.label, every=job.every, probes=job.probes, tasks=tasks_after(job.kind),
              representations=REPRESENTATIONS_OF[job.kind], also=ALSO_OF[job.kind],
              device=cfg.device, method=cfg.method)  # features on the training device
    if job.tensorboard:
        tensorboard.export(run)
    return job.run


def folders(datasets: dict[str, tg.Dataset]) -> dict[str, str]:
    return {k: str(ds.root) for k, ds in datasets.items()}
