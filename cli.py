"""The ``comm-diag`` command: thin Typer wrappers over the library functions."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Callable, Iterator, Optional

import typer
from rich.console import Console

import comm_diag.trifeature_gen as tg
from comm_diag.trifeature_gen.factors import FACTOR_NAMES


app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Which multimodal interactions does a self-supervised method learn? "
                       "Controlled bimodal Trifeature experiments (CoMM, ICLR 2025).")
console = Console()
err = Console(stderr=True)


class UserError(Exception):
    """Bad input: reported as one line, exit code 1."""


def fail(msg: str) -> None:
    err.print(f"[bold red]error:[/] {msg}", highlight=False, soft_wrap=True)  # one line, never wrapped
    raise typer.Exit(code=1)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn the library's input errors into one line and exit 1, never a traceback."""
    from comm_diag.comm.run_folder import TrainingError

    try:
        yield
    except (UserError, ValueError, FileExistsError, FileNotFoundError, TrainingError) as e:
        fail(str(e))
    except MemoryError:
        fail("out of memory: use a smaller --size, --views, --batch-size or fewer pairs")
    except OSError as e:  # a full disk, a read-only folder, a path under a file: the system's reason
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        reason = e.strerror or f"{e} (is the disk full?)"  # numpy's short writes carry no errno
        fail(f"input/output failed: {reason}{where}; nothing half-written was kept")
    except KeyboardInterrupt:
        fail("interrupted")


def _version(value: bool) -> None:
    if value:
        console.print(f"comm-diag {tg.__version__}")
        raise typer.Exit()


@app.callback()
def main(version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                         help="Print the version and exit.")] = None) -> None:
    terminate_as_interrupt()


def terminate_as_interrupt() -> None:
    """SIGTERM (``kill``, a job scheduler's stop) ends a command as Ctrl-C does: its
    ``finally`` blocks run, so lock files and temporary folders go with it and the
    last finished epoch is kept; the default handler would end the process on the spot."""
    import signal
    import threading

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


# ----------------------------------------------------------------------------- generate / info

def default_data_dir(size: int, synergy: bool) -> Path:
    return Path("data") / f"trifeature-{size}{'-synergy' if synergy else ''}"


def parse_synergy_attrs(text: str) -> tuple[str, str]:
    parts = text.split(":")
    if len(parts) != 2 or not all(parts):
        raise UserError(f"--synergy-attrs must look like SRC:TGT (e.g. texture:color), got {text!r}")
    for p in parts:
        if p not in FACTOR_NAMES:
            raise UserError(f"unknown attribute {p!r} in --synergy-attrs; choose from {', '.join(FACTOR_NAMES)}")
    return parts[0], parts[1]


D = tg.DatasetSpec()  # the dataset defaults, shown in --help (one source: DatasetSpec)


@app.command()
def generate(
    out: Annotated[Optional[Path], typer.Option(help="Output folder [default: data/trifeature-SIZE[-synergy]].")] = None,
    preset_name: Annotated[Optional[str], typer.Option("--preset", help="Start from a training preset's data: "
                                                       "smoke (32 px, 512 pairs), cpu (64 px), paper (224 px).")] = None,
    size: Annotated[Optional[int], typer.Option(help=f"Image side in px (>= 32; 224 is the paper's) [{D.size}].")] = None,
    synergy: Annotated[bool, typer.Option("--synergy", help="Bias the train pairs to obey the synergy mapping.")] = False,
    shared: Annotated[Optional[str], typer.Option(help=f"Attribute both images share (redundancy) [{D.shared}].")] = None,
    unique: Annotated[Optional[str], typer.Option(help=f"Attribute drawn independently per image [{D.unique}].")] = None,
    synergy_attrs: Annotated[Optional[str], typer.Option(
        help=f"SRC:TGT, synergy label = [TGT(x2) == m(SRC(x1))] [{D.synergy_src}:{D.synergy_tgt}].")] = None,
    train_pairs: Annotated[Optional[int], typer.Option(help=f"Training pairs [{D.train_pairs}].")] = None,
    probe_pairs: Annotated[Optional[int], typer.Option(help=f"Unbiased pairs of train images for fitting probes "
                                                            f"[{D.probe_pairs}].")] = None,
    test_pairs: Annotated[Optional[int], typer.Option(help=f"Unbiased pairs of test images (clamped to those "
                                                           f"allowed) [{D.test_pairs}].")] = None,
    views: Annotated[Optional[int], typer.Option(help=f"Renders per train combination [{D.views}].")] = None,
    share_prob: Annotated[Optional[float], typer.Option(help=f"Fraction of pairs that must share the shared "
                                                             f"attribute [{D.share_prob}].")] = None,
    synergy_prob: Annotated[Optional[float], typer.Option(help=f"Fraction of biased train pairs that must obey the "
                                                               f"mapping [{D.synergy_prob}].")] = None,
    train_share_prob: Annotated[Optional[float], typer.Option(
        help="--share-prob of the train pairs alone (probe and test pairs keep --share-prob).")] = None,
    seed: Annotated[Optional[int], typer.Option(help=f"Seed of split, mapping, pairs and pixels [{D.seed}].")] = None,
    png: Annotated[bool, typer.Option("--png", help="Also write every image as PNG.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty output folder.")] = False,
) -> None:
    """Render a bimodal Trifeature dataset with controlled redundancy, uniqueness and synergy."""
    from comm_diag import api
    from comm_diag.comm.config import PRESET_DATA
    from comm_diag.outputs import check

    with user_errors():
        given = dict(size=size, shared=shared, unique=unique, train_pairs=train_pairs, probe_pairs=probe_pairs,
                     test_pairs=test_pairs, views=views, share_prob=share_prob, synergy_prob=synergy_prob,
                     train_share_prob=train_share_prob, seed=seed)
        if synergy_attrs is not None:
            given["synergy_src"], given["synergy_tgt"] = parse_synergy_attrs(synergy_attrs)
        given = {k: v for k, v in given.items() if v is not None}
        if preset_name is not None and preset_name not in PRESET_DATA:
            raise UserError(f"unknown preset {preset_name!r}; choose from {', '.join(PRESET_DATA)}")
        spec = tg.DatasetSpec(**{**PRESET_DATA.get(preset_name or "", {}), **given}, synergy=synergy).validate()
        out = out or default_data_dir(spec.size, synergy)
        check(out, "dataset", force=force, reuse=False)  # before the bar is drawn
        api.generate(out, preset=preset_name, synergy=synergy, png=png, force=force, **given,
                     warn=lambda m: err.print(f"[yellow]warning:[/] {m}", highlight=False, soft_wrap=True))
        console.print(f"wrote {out}")


@app.command()
def info(data: Annotated[Path, typer.Argument(help="A dataset folder written by `comm-diag generate`.")]) -> None:
    """Counts, roles, mapping, PID table and synergy positive rates of a dataset."""
    with user_errors():
        from comm_diag import tables

        for table in tables.dataset(tg.load(data).manifest):  # every hash, array and pair index checked
            console.print(table)


# ----------------------------------------------------------------------------- train / probe / report

@app.command()
def train(
    data: Annotated[Path, typer.Option(help="Dataset folder (from `comm-diag generate`).")],
    method: Annotated[Optional[str], typer.Option(help="Method: a built-in or plugin name (`comm-diag methods` lists "
                                                       "them) or path/to/file.py:ClassName [default: comm].")] = None,
    encoder: Annotated[Optional[str], typer.Option(help="Encoder: alexnet, alexnet_bn, resnet18, resnet50.")] = None,
    width: Annotated[Optional[float], typer.Option(help="Encoder channel multiplier (1.0 = torchvision's) [preset].")] = None,
    d: Annotated[Optional[int], typer.Option("--d", help="Width of the tokens and of the representation [preset].")] = None,
    fusion: Annotated[Optional[str], typer.Option(help="CoMM fusion: transformer or linear.")] = None,
    preset_name: Annotated[str, typer.Option("--preset", help="cpu (default), paper or smoke.")] = "cpu",
    epochs: Annotated[Optional[int], typer.Option(help="Epochs [preset].")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Batch size [preset].")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Peak learning rate [preset].")] = None,
    weight_decay: Annotated[Optional[float], typer.Option(help="AdamW weight decay [preset].")] = None,
    temperature: Annotated[Optional[float], typer.Option(help="InfoNCE temperature [preset].")] = None,
    aug1: Annotated[Optional[str], typer.Option(help="Augmentation of modality 1: all, none, crop, color, ...")] = None,
    aug2: Annotated[Optional[str], typer.Option(help="Augmentation of modality 2.")] = None,
    crop_min: Annotated[Optional[float], typer.Option(help="Lower scale of the random crop [method/preset].")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed of weights, batches and augmentations [default: 0].")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto, cpu or cuda [default: auto].")] = None,
    precision: Annotated[Optional[str], typer.Option(
        help="auto (bf16 autocast on CUDA and on CPUs with native bf16, else fp32), bf16 or fp32.")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Run folder [default: runs/METHOD-seedSEED].")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the run's last checkpoint.")] = False,
    nproc: Annotated[int, typer.Option(help="Data-parallel processes on this machine (torchrun; gloo on CPU, "
                                            "NCCL on GPUs); the batch size is per process.")] = 1,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Any other run setting, or one of the method's "
                                                                 "own (`comm-diag methods` lists them), as KEY=VALUE "
                                                                 "(repeatable), e.g. --set proj_dim=128.")] = None,
    compile_: Annotated[bool, typer.Option("--compile", help="torch.compile the model's modules (same weights; "
                                                             "a minute or more of compiling first).")] = False,
) -> None:
    """Train a method on a dataset's train pairs (checkpoint every epoch, resumable)."""
    from comm_diag import api
    from comm_diag.comm.config import TrainConfig
    from comm_diag.comm.methods.plugins import label_of, normalize_target

    with user_errors():
        options = dict(encoder=encoder, width=width, d=d, fusion=fusion, epochs=epochs, batch_size=batch_size, lr=lr,
                       weight_decay=weight_decay, temperature=temperature, aug1=aug1, aug2=aug2, crop_min=crop_min,
                       seed=seed, device=device, precision=precision, method=method)
        given = TrainConfig.merge_given(options, set_ or ())  # an option and --set for one setting: refused
        method = str(given.pop("method", TrainConfig.method))  # --method or --set method=...
        label = label_of(normalize_target(method))
        out = out or Path("runs") / f"{label}-seed{given.get('seed', TrainConfig.seed)}"
        if nproc < 1:
            raise UserError(f"--nproc must be >= 1, got {nproc}")
        try:
            api.train(data, out, method=method, preset=preset_name, resume=resume,
                      compile=compile_, nproc=nproc, **given)
        except KeyboardInterrupt:
            raise UserError(f"interrupted; the last finished epoch is kept: resume with --resume --out {out}")
        console.print(f"trained {label}{f' on {nproc} processes' if nproc > 1 else ''}: {out}")


@app.command()
def probe(
    run: Annotated[Path, typer.Argument(help="A run folder written by `comm-diag train`.")],
    data: Annotated[Optional[Path], typer.Option(help="Dataset to probe on [default: the run's].")] = None,
    probe_kind: Annotated[str, typer.Option("--probe", help="linear, mlp, or linear,mlp.")] = "linear",
    every_epoch: Annotated[bool, typer.Option("--every-epoch", help="Probe every saved epoch too.")] = False,
    every: Annotated[int, typer.Option(help="Probe every K-th saved epoch too (learning curves).")] = 0,
    allow_unfinished: Annotated[bool, typer.Option("--allow-unfinished", help="Probe a run that has not reached "
                                                   "its last epoch (report will still refuse it).")] = False,
    method: Annotated[Optional[str], typer.Option(help="The run's method, when it is your code (path/to/file.py:"
                                                       "ClassName): a run folder's config never makes comm-diag "
                                                       "import code, you name it.")] = None,
    backend: Annotated[str, typer.Option(help="Where the probes are fitted: auto (torch on the run's GPU, "
                                              "scikit-learn on CPU), sklearn or torch.")] = "auto",
) -> None:
    """Probe a trained run (and its random-init control): probes.csv and probes.json."""
    from comm_diag import api, tables

    with user_errors():
        rows = api.probe(run, data=data, probe=probe_kind, every=1 if every_epoch else every,
                         allow_unfinished=allow_unfinished, method=method, backend=backend,
                         on_model=lambda m: err.print(f"probing {m}"))
        console.print(tables.probe_rows(rows))
        console.print(f"wrote {run / 'probes.csv'}")


@app.command()
def report(
    runs: Annotated[list[Path], typer.Argument(help="Run folders (or folders holding runs).")],
    out: Annotated[Path, typer.Option(help="Report folder.")] = Path("report"),
    mix_datasets: Annotated[bool, typer.Option("--mix-datasets", help="Pool runs trained on different datasets "
                                               "of one kind into one mean (refused by default).")] = False,
) -> None:
    """Figure-4 chart, learning curves, verdicts, summary.csv, report.md and report.html over probed runs."""
    from comm_diag import api, tables

    with user_errors():
        console.print(tables.verdicts(api.report(runs, out, mix_datasets=mix_datasets)))
        console.print(f"wrote {out / 'report.md'} and {out / 'report.html'}")


# ----------------------------------------------------------------------------- sweeps: quickstart / ablate / check

SeedsOpt = Annotated[str, typer.Option(help="Seeds, e.g. 0 or 0,1,2 or 0-4.")]
PresetOpt = Annotated[str, typer.Option("--preset", help="smoke (32 px, 1 epoch: a minute, checks that all runs), "
                                                         "cpu (64 px, 6 epochs: the default, minutes per run on 2 "
                                                         "cores) or paper (224 px, AlexNet, 100 epochs: a GPU).")]
EpochsOpt = Annotated[Optional[int], typer.Option(help="Override the preset's epochs.")]
WorkersOpt = Annotated[int, typer.Option(help="Runs in parallel worker processes (local executor); 0: one per "
                                               "core, at most one per run, on CPU, and 1 when a GPU trains.")]
ExecutorOpt = Annotated[str, typer.Option(help="Where runs execute: local or ray (pip install -e '.[ray]').")]
AddressOpt = Annotated[Optional[str], typer.Option(help="Ray cluster address [default: a local Ray instance].")]
DataOpt = Annotated[Optional[list[Path]], typer.Option(
    help="Dataset(s) from `comm-diag generate`: once (every task probed on it) or an unbiased and a synergy one "
         "[default: the preset's pair, generated in the output folder].")]
CpusOpt = Annotated[float, typer.Option(help="Ray: CPUs requested per run.")]
GpusOpt = Annotated[float, typer.Option(help="Ray: GPUs requested per run.")]


def executor_options(executor: str, workers: int, address: Optional[str], cpus: float, gpus: float) -> dict:
    from comm_diag.probes.executors import EXECUTORS

    if executor not in EXECUTORS:
        raise UserError(f"unknown executor {executor!r}; choose from {', '.join(EXECUTORS)}")
    if executor == "local":
        if address is not None:
            raise UserError("--address is for --executor ray")
        return {"executor": executor, "workers": workers}
    return {"executor": executor, "address": address, "cpus_per_run": cpus, "gpus_per_run": gpus}


def _comma_list(text: Optional[str]) -> Optional[list[str]]:
    return [x.strip() for x in text.split(",") if x.strip()] if text else None


def _run_study(out: Path, call: Callable[[], dict], table: Optional[Callable[[dict], object]] = None) -> dict:
    """The body the sweep commands share: ``call()`` (the command's library function, which
    draws its own progress), one line on interruption, then the study's table (or
    ``table(result)``), its expectations, the timing."""
    import time

    from comm_diag import tables

    t0 = time.perf_counter()
    try:
        result = call()
    except KeyboardInterrupt:
        raise UserError("interrupted; finished epochs and runs are kept: run the same command again to resume") from None
    console.print((table or tables.study)(result))
    for text, ok in result["expectations"]:
        mark = {True: "[green]held[/]", False: "[red]did not hold[/]", None: "[yellow]not measured[/]"}[ok]
        console.print(f"{mark}: {text}", highlight=False)
    console.print(f"done in {time.perf_counter() - t0:.0f} s; report: {out / 'report.md'}")
    return result


@app.command()
def quickstart(
    out: Annotated[Path, typer.Option(help="Output folder (data, runs, report).")] = Path("comm-diag-out"),
    preset_name: PresetOpt = "cpu",
    seeds: SeedsOpt = "0",
    epochs: EpochsOpt = None,
    every: Annotated[int, typer.Option(help="Also probe every K epochs: learning curves in the report.")] = 0,
    methods: Annotated[str, typer.Option(help="Comma list of built-in methods (`comm-diag methods` lists them).")]
    = "comm,cross,cross_self",
    workers: WorkersOpt = 0,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
    cpus_per_run: CpusOpt = 1.0,
    gpus_per_run: GpusOpt = 0.0,
) -> None:
    """The paper's two experiments end to end: data, CoMM / Cross / Cross+Self, probes, report.

    Six trainings a seed (each method on the unbiased and on the synergy-biased pairs). With
    the cpu preset one seed took 499 s on 2 cores with bf16 (0.3.0; README, "What the main
    job shows"); smoke runs in about a minute; paper needs a GPU.
    """
    from comm_diag import api

    with user_errors():
        _run_study(out, lambda: api.quickstart(out, preset=preset_name, seeds=seeds, epochs=epochs, every=every,
                                               methods=_comma_list(methods) or [],
                                               **executor_options(executor, workers, address, cpus_per_run,
                                                                  gpus_per_run)))


@app.command()
def ablate(
    study: Annotated[str, typer.Argument(help="Study name (--list-studies shows them all).", show_default=False)] = "",
    out: Annotated[Optional[Path], typer.Option(help="Study folder [default: ablations/STUDY].")] = None,
    data: DataOpt = None,
    preset_name: PresetOpt = "cpu",
    seeds: SeedsOpt = "0",
    epochs: EpochsOpt = None,
    every: Annotated[Optional[int], typer.Option(help="Probe every K epochs [default: the study's].")] = None,
    extra: Annotated[bool, typer.Option("--extra", help="Also run the study's optional variants "
                                                          "(augment: crop only, colour only).")] = False,
    list_runs: Annotated[bool, typer.Option("--list", help="Print the study's runs and exit.")] = False,
    list_studies: Annotated[bool, typer.Option("--list-studies", help="Print the studies and exit.")] = False,
    only: Annotated[Optional[int], typer.Option(help="Run only run number I of --list.")] = None,
    interaction: Annotated[Optional[str], typer.Option(
        help="dose: the interactions whose strength varies, synergy and/or redundancy [default: synergy].")] = None,
    levels: Annotated[Optional[str], typer.Option(
        help="dose: the strengths (probabilities in the training pairs) [default: 0,0.25,0.5,0.75,1].")] = None,
    methods: Annotated[Optional[str], typer.Option(
        help="dose: built-in methods, a comma list [default: comm,cross,cross_self].")] = None,
    workers: WorkersOpt = 0,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
    cpus_per_run: CpusOpt = 1.0,
    gpus_per_run: GpusOpt = 0.0,
) -> None:
    """The paper's ablations (loss, fusion, augment) and the dose-response study: run, resume, report."""
    from comm_diag import api, tables
    from comm_diag.probes.ablation import study_named
    from comm_diag.probes.pipeline import StudySettings, describe_plan
    from comm_diag.probes.studies import STUDIES
    from comm_diag.probes.sweep import parse_seeds

    with user_errors():
        if list_studies:
            console.print(tables.studies(STUDIES))
            return
        if not study:
            raise UserError(f"name a study: {', '.join(STUDIES)}")
        params = {"interaction": _comma_list(interaction), "levels": levels, "methods": _comma_list(methods)}
        spec = study_named(study, interactions=params["interaction"], levels=levels, methods=params["methods"])
        out = out or Path("ablations") / study
        settings = {"seeds": seeds, "data": data or (), "extra": extra, "only": only, "epochs": epochs, "every": every}
        if list_runs:
            plan = describe_plan(spec, out, StudySettings(**{**settings, "seeds": parse_seeds(seeds)},
                                                           preset_name=preset_name))
            console.print(tables.plan(f"study {study}: {spec.description}", plan))
            return
        _run_study(out, lambda: api.ablate(study, out, preset=preset_name, **params, **settings,
                                           **executor_options(executor, workers, address, cpus_per_run,
                                                              gpus_per_run)))


@app.command()
def check(
    target: Annotated[str, typer.Argument(help="Your method: path/to/file.py:ClassName, package.module:ClassName, "
                                               "or a name from `comm-diag methods`.", show_default=False)],
    out: Annotated[Optional[Path], typer.Option(help="Output folder [default: check-out/CLASSNAME].")] = None,
    data: DataOpt = None,
    preset_name: PresetOpt = "cpu",
    seeds: SeedsOpt = "0",
    epochs: EpochsOpt = None,
    controls: Annotated[str, typer.Option(help="Reference methods trained beside yours with the same budget, a comma "
                                               "list of built-ins (`comm-diag methods` lists them) or "
                                               "'none' (the random-init floor is always measured).")]
    = "comm,cross,cross_self",
    no_controls: Annotated[bool, typer.Option("--no-controls", help="Same as --controls none.")] = False,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="One of your method's own settings (its "
                                                                 "Settings), or a run setting for every method, as "
                                                                 "KEY=VALUE (repeatable).")] = None,
    require: Annotated[Optional[str], typer.Option(
        help="Exit with code 3 unless these are captured: redundancy, uniqueness, synergy (comma list).")] = None,
    dose: Annotated[Optional[str], typer.Option(
        help="Instead, the dose-response of these interactions (synergy and/or redundancy): your method's curve "
             "beside the controls' (`comm-diag ablate dose`).")] = None,
    levels: Annotated[Optional[str], typer.Option(
        help="With --dose: the strengths in the training pairs [default: 0,0.25,0.5,0.75,1].")] = None,
    workers: WorkersOpt = 0,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
    cpus_per_run: CpusOpt = 1.0,
    gpus_per_run: GpusOpt = 0.0,
) -> None:
    """Does your SSL method capture redundancy, uniqueness and synergy? Trains it beside the references."""
    from comm_diag import api, tables
    from comm_diag.comm.config import TrainConfig
    from comm_diag.comm.methods.plugins import label_of, normalize_target
    from comm_diag.probes.check import REQUIRE_EXIT, parse_require, unmet
    from comm_diag.probes.tasks import NAMES

    with user_errors():
        required = parse_require(require)
        if required and dose:
            raise UserError("--require reads the check's three verdicts; a dose check has one per level: "
                            "read its curve (dose.csv)")
        if no_controls and controls != "comm,cross,cross_self":
            raise UserError("--no-controls and --controls contradict each other: give one")
        label = label_of(normalize_target(target))
        out = out or Path("check-out") / (label + ("-dose" if dose else ""))
        result = _run_study(out, lambda: api.check(
            target, out, data=data or (), preset=preset_name, seeds=seeds, epochs=epochs,
            controls="none" if no_controls else controls, settings=TrainConfig.parse_settings(set_ or ()),
            dose=_comma_list(dose) or (), levels=levels,
            **executor_options(executor, workers, address, cpus_per_run, gpus_per_run)),
            table=None if dose else lambda r: tables.check(r, label))
        console.print(result["conclusion"], highlight=False)
    missing = unmet(result, required)
    if missing:
        err.print(f"[bold red]required but not captured:[/] {', '.join(NAMES[k] for k in missing)}",
                  highlight=False, soft_wrap=True)
        raise typer.Exit(code=REQUIRE_EXIT)


# ----------------------------------------------------------------------------- calibrate / methods

CALIBRATION_MISMATCH_EXIT = 3


@app.command()
def calibrate(
    out: Annotated[Path, typer.Option(help="Output folder (calibration.csv, calibration.json).")] = Path("calibrate-out"),
    data: Annotated[Optional[Path], typer.Option(help="Dataset [default: the preset's unbiased one, generated "
                                                      "in OUT/data].")] = None,
    preset_name: PresetOpt = "cpu",
    seeds: SeedsOpt = "0,1,2",
    references: Annotated[Optional[str], typer.Option(help="Comma list of references [default: all].")] = None,
) -> None:
    """The instrument's own calibration: known-answer representations through the probes and the
    verdict rule; exit 3 if any verdict differs from the known answer."""
    from comm_diag import api, tables
    from comm_diag.probes.sweep import parse_seeds

    with user_errors():
        n_seeds = len(parse_seeds(seeds))
        try:
            rows = api.calibrate(out, data=data, preset=preset_name, seeds=seeds, references=_comma_list(references))
        except KeyboardInterrupt:
            raise UserError("interrupted: run the same command again") from None
    console.print(tables.calibration(rows, n_seeds))
    bad = [r for r in rows if not r["ok"]]
    console.print(f"{len(rows) - len(bad)} of {len(rows)} verdicts as expected; wrote {out / 'calibration.csv'}")
    if bad:
        err.print("[bold red]calibration mismatch:[/] " + "; ".join(f"{r['reference']} {r['level']}: "
                  f"{r['verdict']}" for r in bad), highlight=False, soft_wrap=True)
        raise typer.Exit(code=CALIBRATION_MISMATCH_EXIT)


@app.command()
def methods() -> None:
    """The methods `train`, `check` and `--method` accept: built-ins and installed plugins."""
    from comm_diag import tables
    from comm_diag.comm.methods import METHODS, load_class
    from comm_diag.comm.methods.plugins import ENTRY_POINT_GROUP, PluginError, installed

    t = tables.Table(title="methods")
    for c in ("name", "source", "what it is"):
        t.add_column(c)
    settings = {}
    for name, cls in METHODS.items():
        t.add_row(name, "built-in", tables.summary(cls))
        settings[name] = tables.own_settings(cls)
    for name, value in installed().items():
        if name in METHODS:  # load_class resolves a name to the built-in first
            t.add_row(name, f"plugin {value}", f"[yellow]never used: the built-in {name!r} has this name; rename "
                                               f"the entry point, or give {value} as the method[/]")
            continue
        try:
            cls = load_class(name)
            t.add_row(name, f"plugin {value}", tables.summary(cls))
            settings[name] = tables.own_settings(cls)
        except PluginError as e:
            t.add_row(name, f"plugin {value}", f"[red]cannot load: {e}[/]")
    console.print(t)
    console.print("Each method's own settings, with their defaults (--set NAME=VALUE changes one):", highlight=False)
    for name, text in settings.items():
        console.print(f"  {name}: {text}", highlight=False, soft_wrap=True)
    console.print(f"Plugins register in the {ENTRY_POINT_GROUP!r} entry-point group; any class can also be given "
                  f"as path/to/file.py:ClassName or package.module:ClassName.", highlight=False)


if __name__ == "__main__":
    app()
