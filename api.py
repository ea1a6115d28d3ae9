"""comm-diag from Python: one function per command, with the command's option names and defaults.

    import comm_diag.api as cd
    result = cd.quickstart("out", preset="smoke")
    cd.check("my_method.py:MyMethod", "check-out", preset="smoke", settings={"proj_dim": 64})

Every argument after the first ones is keyword-only; a misspelt or unknown one is refused
with the list of valid ones (``TypeError``), never ignored. Progress is drawn as
``progress`` says: ``auto`` (bars in a terminal, plain lines in a notebook or a log),
``bar``, ``lines`` or ``off``; ``hooks`` (``probes.hooks.Hooks``) receive the same events.
The command line (``cli.py``) parses its options and calls these.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from comm_diag.errors import InputError
import comm_diag.trifeature_gen as tg
from comm_diag.comm.config import preset_data
from comm_diag.comm.config import DEFAULT_METHODS

from comm_diag.probes.studies import ablation, calibrate as calibration, check as checking
from comm_diag.probes.studies import quickstart as quickstart_study
from comm_diag.probes.report import tensorboard as board
from comm_diag.probes.studies.check import CONTROLS
from comm_diag.probes.studies.executors import check_options, settle_options
from comm_diag.probes.report.progress import progress as progress_hooks
from comm_diag.probes.report.render import report as write_report
from comm_diag.probes.measure.suite import probe_run
from comm_diag.probes.hooks import Hooks
from comm_diag.probes.studies.sweep import parse_seeds

Seeds = str | int | Sequence[int]


def _seeds(seeds: Seeds) -> list[int]:
    """'0,1,2', '0-2', 3 or [0, 1, 2] -> a list of seeds (the CLI's --seeds)."""
    if isinstance(seeds, int):
        return [seeds]
    return parse_seeds(seeds) if isinstance(seeds, str) else parse_seeds(",".join(map(str, seeds)))


def _distinct(what: str, items: Optional[Sequence[Any]], *, empty_ok: bool = False) -> Optional[list]:
    """``items`` as a list, refused (ValueError naming ``what``) if it is one string where a
    list is expected (its characters would be taken as names), empty, or names something
    twice (it would count as two seeds or two rows)."""
    if items is None:
        return None
    if isinstance(items, (str, bytes, Path)):
        raise InputError(f"{what} must be a list, got the single value {str(items)!r} (write [{str(items)!r}])")
    items = list(items)
    if not items and not empty_ok:
        raise InputError(f"{what}: name at least one {what.removesuffix('s')}")
    twice = [x for i, x in enumerate(items) if x in items[:i]]
    if twice:
        raise InputError(f"{what}: {twice[0]!r} is given twice (it would be counted twice)")
    return items


def generate(out: Optional[Path | str] = None, *, preset: Optional[str] = None, synergy: bool = False,
             png: bool = False, force: bool = False, progress: str = "auto", hooks: Optional[Hooks] = None,
             warn: Callable[[str], None] = lambda msg: None, **settings: Any) -> Path:
    """``comm-diag generate``: a bimodal Trifeature dataset in ``out``
    [data/trifeature-SIZE[-synergy]]. ``settings``: any ``DatasetSpec`` field (size, seed,
    share_prob, synergy_prob, train_pairs, ...); ``preset``: start from a training preset's
    data (its image size and pair counts); ``warn`` receives each clamp (more pairs asked
    than allowed). A folder that may not receive it is refused before any work."""
    from comm_diag.outputs import check

    names = {f for f in tg.DatasetSpec.__dataclass_fields__ if f != "synergy"}
    unknown = sorted(set(settings) - names)
    if unknown:
        raise TypeError(f"unknown dataset setting{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                        f"valid: {', '.join(sorted(names))}")
    base = preset_data(preset) if preset else {}
    spec = tg.DatasetSpec(**{**base, **settings}, synergy=synergy).validate()
    out = Path("data") / f"trifeature-{spec.size}{'-synergy' if synergy else ''}" if out is None else Path(out)
    check(out, "dataset", force=force, reuse=False)  # before a bar is drawn
    with progress_hooks(progress, also=hooks) as drawn:
        return tg.generate(spec, out, force=force, png=png, progress=drawn.on_generate, warn=warn)


def train(data: Path | str, out: Optional[Path | str] = None, *, method: str = "comm", preset: str = "cpu",
          resume: bool = False, compile: bool = False, nproc: int = 1, progress: str = "auto",
          hooks: Optional[Hooks] = None, tensorboard: bool = False, **settings: Any) -> Path:
    """``comm-diag train``: ``method`` on the dataset's train pairs, in ``out`` [runs/METHOD-seedS].
    ``settings``: run settings (epochs, lr, seed, device, ...) and the method's own (as ``--set``);
    ``nproc`` > 1: data-parallel processes (torchrun), the batch size per process;
    ``tensorboard``: the run's loss terms, lr and throughput also in RUN/tensorboard/."""
    from comm_diag.comm.config import DERIVED, preset as preset_config
    from comm_diag.comm.methods.plugins import normalize_target
    from comm_diag.comm.methods.registry import label_of
    from comm_diag.comm.parallel import train_parallel
    from comm_diag.comm.train import train as train_run

    if not isinstance(method, str) or not method:
        raise InputError(f"method must be a method's name or path/to/file.py:Class, got {method!r}")
    derived = sorted(set(settings) & set(DERIVED))
    if derived:
        raise InputError(f"{derived[0]} is not a setting: {DERIVED[derived[0]]}")
    method = normalize_target(method)
    if settings.get("fast") and "precision" not in settings:  # the preset's fp32 (paper) yields to --fast
        settings = {**settings, "precision": "bf16"}
    cfg = preset_config(preset).replace(method=method, **settings)  # resolved and checked once, by the training
    if tensorboard:
        board.writer_class()  # tensorboardX missing: one line before any byte
    out = Path(out) if out is not None else train_out(method, cfg.seed)
    if tensorboard:
        board.check_replaceable(out)  # a user's file in the way: said before the training, not after
    if nproc > 1:
        run = train_parallel(cfg, tg.load(data), out, nproc, resume=resume)
    else:
        with progress_hooks(progress, also=hooks, label=f"train {label_of(method)}") as drawn:
            run = train_run(cfg, tg.load(data), out, resume=resume, on_step=drawn.on_step,
                            compile="inductor" if compile else None)
    if tensorboard:
        board.export(run)
    return run


def probe(run: Path | str, *, data: Optional[Path | str] = None, probe: str | Sequence[str] = "linear",
          every: int = 0, allow_unfinished: bool = False, method: Optional[str] = None, backend: str = "auto",
          on_model: Optional[Callable[[str], None]] = None, progress: str = "auto",
          hooks: Optional[Hooks] = None) -> list[dict]:
    """``comm-diag probe``: the run's last epoch and its random-init control; the probes.csv rows.
    ``on_model(name)`` is told which model (the run, its init) is probed next (so are the
    progress lines and ``hooks.on_stage``)."""
    probes = _distinct("probe", [p.strip() for p in probe.split(",")] if isinstance(probe, str) else probe)
    with progress_hooks(progress, also=hooks) as drawn:
        def told(name: str) -> None:
            drawn.on_stage(f"probing {name}")
            if on_model is not None:
                on_model(name)

        return probe_run(run, data=data, probes=probes, every=every, allow_unfinished=allow_unfinished,
                         method=method, backend=backend, on_model=told)


def report(runs: Sequence[Path | str], out: Path | str = "report", *, mix_datasets: bool = False,
           progress: str = "auto", hooks: Optional[Hooks] = None) -> dict:
    """``comm-diag report``: report.md, report.html, summary.csv and the figures of probed runs."""
    if not isinstance(mix_datasets, bool):  # "yes" (or "no"!) was taken as true
        raise InputError(f"mix_datasets must be True or False, got {mix_datasets!r}")
    runs = _distinct("runs", runs)
    with progress_hooks(progress, also=hooks) as drawn:
        drawn.on_stage(f"report of {len(runs)} path(s) into {out}")
        return write_report(runs, out, mix_datasets=mix_datasets)


def quickstart(out: Path | str = "comm-diag-out", *, preset: str = "cpu", seeds: Seeds = "0",
               epochs: Optional[int] = None, every: int = 0, methods: Sequence[str] = DEFAULT_METHODS,
               workers: int = 0, executor: str = "local", progress: str = "auto", hooks: Optional[Hooks] = None,
               tensorboard: bool = False, fast: bool = False, **executor_options: Any) -> dict:
    """``comm-diag quickstart``: the paper's Figure 4 end to end (data, training, probes, report).
    ``methods``: built-ins or your own (path/to/file.py:Class), as ``check`` takes them;
    ``tensorboard``: every run's curves also in RUN/tensorboard/ (``tensorboard --logdir OUT``)."""
    return quickstart_study.quickstart(out, methods=_distinct("methods", methods), preset=preset,
                                 seeds=_seeds(seeds), epochs=epochs, every=every, hooks=hooks, progress=progress,
                                 executor=executor, tensorboard=tensorboard, fast=fast,
                                 **_executor(executor, workers, executor_options, quickstart))


def ablate(study: str, out: Optional[Path | str] = None, *, data: Sequence[Path | str] = (), preset: str = "cpu",
           seeds: Seeds = "0", epochs: Optional[int] = None, every: Optional[int] = None, extra: bool = False,
           only: Optional[int] = None, interaction: Optional[Sequence[str]] = None,
           levels: Optional[Sequence[float] | str] = None, methods: Optional[Sequence[str]] = None,
           workers: int = 0, executor: str = "local", progress: str = "auto", hooks: Optional[Hooks] = None,
           tensorboard: bool = False, fast: bool = False, **executor_options: Any) -> dict:
    """``comm-diag ablate``: a study of ``studies.registry.STUDIES`` in ``out`` [ablations/STUDY];
    ``interaction``, ``levels`` and ``methods`` are the dose study's (defaults: synergy,
    0-1 in quarters, CoMM / Cross / Cross+Self)."""
    return ablation.run_study(study, ablate_out(study) if out is None else out,
                              interactions=_distinct("interaction", interaction), levels=levels,
                              methods=_distinct("methods", methods), preset=preset, seeds=_seeds(seeds),
                              data=list(data), epochs=epochs, every=every, extra=extra, only=only, hooks=hooks,
                              progress=progress, executor=executor, tensorboard=tensorboard, fast=fast,
                              **_executor(executor, workers, executor_options, ablate))


def calibrate(out: Path | str = "calibrate-out", *, data: Optional[Path | str] = None, preset: str = "cpu",
              seeds: Seeds = "0,1,2", references: Optional[Sequence[str]] = None, progress: str = "auto",
              hooks: Optional[Hooks] = None) -> list[dict]:
    """``comm-diag calibrate``: known-answer representations through the probes and the verdict rule."""
    return calibration.run_calibration(out, data=data, preset=preset, seeds=_seeds(seeds),
                                       references=_distinct("references", references), hooks=hooks,
                                       progress=progress)


def check(target: str, out: Optional[Path | str] = None, *, data: Sequence[Path | str] = (), preset: str = "cpu",
          seeds: Seeds = "0", epochs: Optional[int] = None, controls: Sequence[str] = CONTROLS,
          settings: Optional[Mapping[str, Any]] = None, dose: Sequence[str] = (),
          levels: Optional[Sequence[float] | str] = None, workers: int = 0, executor: str = "local",
          progress: str = "auto", hooks: Optional[Hooks] = None, tensorboard: bool = False, fast: bool = False,
          **executor_options: Any) -> dict:
    """``comm-diag check``: does ``target`` capture R, U and S beside the controls? (With
    ``dose``: its dose-response curves.) ``settings``: your method's own settings and run
    settings (``--set``); run settings apply to the controls too (one budget for all)."""
    if isinstance(controls, str):
        controls = [c.strip() for c in controls.split(",") if c.strip()] if controls != "none" else []
    if epochs is not None and "epochs" in (settings or {}):
        raise InputError(f"--epochs {epochs} and --set epochs={settings['epochs']} both set epochs: give it once")
    out = check_out(target, bool(dose)) if out is None else out
    return checking.check(target, out, controls=_distinct("controls", controls, empty_ok=True),
                          dose=_distinct("dose", dose, empty_ok=True), levels=levels,
                          settings=dict(settings or {}), preset=preset, seeds=_seeds(seeds), data=list(data),
                          epochs=epochs, hooks=hooks, progress=progress, executor=executor, tensorboard=tensorboard,
                          fast=fast, **_executor(executor, workers, executor_options, check))


# ----------------------------------------------------------------------------- what the CLI shows of them

def label(method: str) -> str:
    """How a method is named in folders and tables: a built-in by its name, a plugin by its class."""
    from comm_diag.comm.methods.plugins import normalize_target
    from comm_diag.comm.methods.registry import label_of

    return label_of(normalize_target(method))


def train_out(method: str, seed: int) -> Path:
    """Where ``train`` writes by default: runs/LABEL-seedN."""
    return Path("runs") / f"{label(method)}-seed{seed}"


def seed_list(seeds: Seeds) -> list[int]:
    """'0,1,2', '0-2' or a sequence -> the seeds, checked (distinct, non-negative)."""
    return _seeds(seeds)


def ablate_out(study: str) -> Path:
    """Where ``ablate`` writes by default."""
    return Path("ablations") / study


def check_out(target: str, dose: bool = False) -> Path:
    """Where ``check`` writes by default: check-out/CLASSNAME (-dose for a dose check)."""
    return Path("check-out") / (label(target) + ("-dose" if dose else ""))


def studies() -> dict:
    """The studies ``ablate`` runs, by name (``probes.studies.registry.STUDIES``)."""
    from comm_diag.probes.studies.registry import STUDIES

    return dict(STUDIES)


def ablate_plan(study: str, out: Optional[Path | str] = None, *, data: Sequence[Path | str] = (),
                preset: str = "cpu", seeds: Seeds = "0", epochs: Optional[int] = None, every: Optional[int] = None,
                extra: bool = False, only: Optional[int] = None, interaction: Optional[Sequence[str]] = None,
                levels: Optional[Sequence[float] | str] = None,
                methods: Optional[Sequence[str]] = None) -> tuple[str, list[dict]]:
    """``ablate --list``: the study's description and one row per run of its plan (number,
    folder, variant, seed, data, the settings it changes); nothing is written."""
    from comm_diag.probes.studies.pipeline import StudySettings, describe_plan

    spec = ablation.study_named(study, interactions=_distinct("interaction", interaction), levels=levels,
                                methods=_distinct("methods", methods))
    settings = StudySettings(preset=preset, seeds=tuple(_seeds(seeds)), data=tuple(data), extra=extra,
                             only=only, epochs=epochs, every=every)
    return spec.description, describe_plan(spec, Path(ablate_out(study) if out is None else out), settings)


REQUIRE_EXIT = checking.REQUIRE_EXIT  # check --require: the exit code when a required interaction is not captured


def required(require: Optional[str]) -> list[str]:
    """``check --require``: 'synergy,uniqueness' -> ['S', 'U'] (InputError on another word)."""
    return checking.parse_require(require)


def unmet(result, require: Optional[str]) -> list[str]:
    """``check --require``: the names of the required interactions ('synergy,uniqueness') the
    checked method did not capture."""
    from comm_diag.probes.measure.tasks import NAMES

    return [NAMES[k] for k in checking.unmet(result, required(require))]


def _executor(executor: str, workers: int, options: dict, caller: Callable) -> dict:
    """The executor's options: ``workers`` and ``together`` for the local one, the rest (address,
    cpus_per_run, gpus_per_run) for Ray; a misspelt one is refused by the pipeline, a value
    out of range here, before any dataset or sweep.json is written."""
    merged = settle_options(executor, {"workers": workers, **options})
    # e.g. method=[...] for methods=[...]: TypeError naming every keyword the caller takes
    own = [n for n, p in inspect.signature(caller).parameters.items() if p.kind is p.KEYWORD_ONLY]
    check_options(executor, merged, also=own)
    return merged


# the commands; the helpers above (defaults, plans, --require) serve the CLI and are public too
__all__ = ["ablate", "calibrate", "check", "generate", "probe", "quickstart", "report", "train", "CONTROLS"]
