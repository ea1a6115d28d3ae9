"""The ``comm-diag`` command: thin Typer wrappers over the library functions."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Callable, Iterator, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich import table as rich_table

import comm_diag.trifeature_gen as tg
from comm_diag.trifeature_gen.factors import FACTOR_NAMES


class Table(rich_table.Table):
    """Rich's table with cells that fold instead of ending in an ellipsis: in a narrow
    terminal (or a notebook's 80 columns) no two rows become the same text."""

    def add_column(self, *args, **kwargs) -> None:
        kwargs.setdefault("overflow", "fold")
        super().add_column(*args, **kwargs)


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


def progress_bar() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                    console=err, transient=False)


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


def generate_dataset(spec: tg.DatasetSpec, out: Path, *, force: bool = False, png: bool = False) -> Path:
    """Generate with a progress bar and printed warnings (library: ``tg.generate``)."""
    from comm_diag.outputs import check

    check(out, "dataset", force=force, reuse=False)  # before the bar is drawn
    with progress_bar() as bar:
        task = bar.add_task("rendering", total=None, info=str(out))

        def step(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return tg.generate(spec, out, force=force, png=png, progress=step,
                           warn=lambda m: err.print(f"[yellow]warning:[/] {m}", highlight=False, soft_wrap=True))


@app.command()
def generate(
    out: Annotated[Optional[Path], typer.Option(help="Output folder [default: data/trifeature-SIZE[-synergy]].")] = None,
    size: Annotated[int, typer.Option(help="Image side in px (>= 32; 224 is the paper's).")] = 64,
    synergy: Annotated[bool, typer.Option("--synergy", help="Bias the train pairs to obey the synergy mapping.")] = False,
    shared: Annotated[str, typer.Option(help="Attribute both images share (redundancy).")] = "shape",
    unique: Annotated[str, typer.Option(help="Attribute drawn independently per image (uniqueness).")] = "texture",
    synergy_attrs: Annotated[str, typer.Option(help="SRC:TGT, synergy label = [TGT(x2) == m(SRC(x1))].")] = "texture:color",
    train_pairs: Annotated[int, typer.Option(help="Training pairs.")] = 10_000,
    probe_pairs: Annotated[int, typer.Option(help="Unbiased pairs of train images for fitting probes.")] = 10_000,
    test_pairs: Annotated[int, typer.Option(help="Unbiased pairs of test images (clamped to those allowed).")] = 4_096,
    views: Annotated[int, typer.Option(help="Renders per train combination.")] = 3,
    share_prob: Annotated[float, typer.Option(help="Fraction of pairs that must share the shared attribute.")] = 1.0,
    synergy_prob: Annotated[float, typer.Option(help="Fraction of biased train pairs that must obey the mapping.")] = 1.0,
    train_share_prob: Annotated[Optional[float], typer.Option(
        help="--share-prob of the train pairs alone (probe and test pairs keep --share-prob).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of split, mapping, pairs and pixels.")] = 0,
    png: Annotated[bool, typer.Option("--png", help="Also write every image as PNG.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty output folder.")] = False,
) -> None:
    """Render a bimodal Trifeature dataset with controlled redundancy, uniqueness and synergy."""
    with user_errors():
        src, tgt = parse_synergy_attrs(synergy_attrs)
        spec = tg.DatasetSpec(size=size, seed=seed, synergy=synergy, shared=shared, unique=unique,
                              synergy_src=src, synergy_tgt=tgt, train_pairs=train_pairs,
                              probe_pairs=probe_pairs, test_pairs=test_pairs, views=views,
                              share_prob=share_prob, synergy_prob=synergy_prob,
                              train_share_prob=train_share_prob).validate()
        out = out or default_data_dir(size, synergy)
        generate_dataset(spec, out, force=force, png=png)
        console.print(f"wrote {out}")


def info_tables(manifest: dict) -> list[Table]:
    spec = manifest["spec"]
    t = Table(title="dataset", show_header=False)
    t.add_row("size", f"{spec['size']} px (texture period {manifest['texture_period_px']:.2f} px)")
    t.add_row("seed", str(spec["seed"]))
    t.add_row("train set", "synergy-biased" if spec["synergy"] else "unbiased")
    t.add_row("roles", f"shared={spec['shared']}  unique={spec['unique']}  "
                       f"synergy={spec['synergy_src']}(x1)->{spec['synergy_tgt']}(x2)")
    t.add_row("share-prob / synergy-prob", f"{spec['share_prob']} / {spec['synergy_prob']}"
              + (f" (train pairs: share-prob {spec['train_share_prob']})" if spec.get("train_share_prob") is not None
                 else ""))
    t.add_row("mapping", ", ".join(f"{a}->{b}" for a, b in manifest["mapping"]))
    c = manifest["counts"]
    t.add_row("images", ", ".join(f"{k} {v}" for k, v in c["images"].items()))
    t.add_row("pairs", ", ".join(f"{k} {v}" for k, v in c["pairs"].items()))
    t.add_row("synergy positive rate", ", ".join(f"{k} {v:.3f}" for k, v in c["synergy_positive_rate"].items()))
    pid = Table(title="partial information decomposition, bits (H: H(T), I: I(T; X1, X2))")
    for col in ("set", "task", "H", "I", "R", "U1", "U2", "S"):
        pid.add_column(col, justify="right" if col not in ("set", "task") else "left")
    for split, tasks in manifest["pid"].items():
        for task, v in tasks.items():
            pid.add_row(split, task, *(f"{v[k]:.3f}" for k in ("entropy", "mutual_information", "redundant",
                                                               "unique1", "unique2", "synergistic")))
    return [t, pid]


@app.command()
def info(data: Annotated[Path, typer.Argument(help="A dataset folder written by `comm-diag generate`.")]) -> None:
    """Counts, roles, mapping, PID table and synergy positive rates of a dataset."""
    with user_errors():
        manifest = tg.load(data).manifest  # every hash, array and pair index checked
        for table in info_tables(manifest):
            console.print(table)


# ----------------------------------------------------------------------------- train / probe / report

def _train_bar(bar: Progress, label: str):
    """An on_step callback that drives one bar per run (loss and pairs/s in the line);
    call ``reset()`` to start a new bar for the next run."""
    state: dict = {}

    def on_step(info) -> None:
        if "task" not in state:
            state["task"] = bar.add_task(label, total=info.steps_per_epoch * info.epochs, info="")
        bar.update(state["task"], completed=info.global_step,
                   info=f"epoch {info.epoch}/{info.epochs} loss {info.loss:.3f} {info.pairs_per_s:.0f} pairs/s")
    on_step.reset = state.clear  # type: ignore[attr-defined]
    return on_step


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
    from comm_diag.comm.config import TrainConfig, preset
    from comm_diag.comm.methods import resolve
    from comm_diag.comm.methods.plugins import label_of, normalize_target
    from comm_diag.comm.parallel import train_parallel
    from comm_diag.comm.train import train as train_run

    with user_errors():
        options = dict(method=method, encoder=encoder, width=width, d=d, fusion=fusion, epochs=epochs,
                       batch_size=batch_size, lr=lr, weight_decay=weight_decay, temperature=temperature,
                       aug1=aug1, aug2=aug2, crop_min=crop_min, seed=seed, device=device, precision=precision)
        given = TrainConfig.merge_given(options, set_ or ())  # an option and --set for one setting: refused
        given["method"] = method = normalize_target(str(given.get("method", TrainConfig.method)))
        cfg = resolve(preset(preset_name).replace(**given))
        out = out or Path("runs") / f"{label_of(method)}-seed{cfg.seed}"
        ds = tg.load(data)
        if nproc < 1:
            raise UserError(f"--nproc must be >= 1, got {nproc}")
        if nproc > 1:
            train_parallel(cfg, ds, out, nproc, resume=resume)
            console.print(f"trained {label_of(method)} on {nproc} processes: {out}")
            return
        with progress_bar() as bar:
            try:
                train_run(cfg, ds, out, resume=resume, on_step=_train_bar(bar, f"train {label_of(method)}"),
                          compile="inductor" if compile_ else None)
            except KeyboardInterrupt:
                raise UserError(f"interrupted; the last finished epoch is kept: resume with --resume --out {out}")
        console.print(f"trained {label_of(method)}: {out}")


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
    from comm_diag.probes.suite import probe_run

    with user_errors():
        rows = probe_run(run, data=data, probes=[p.strip() for p in probe_kind.split(",")],
                         every=1 if every_epoch else every, on_model=lambda m: err.print(f"probing {m}"),
                         allow_unfinished=allow_unfinished, method=method, backend=backend)
        console.print(_rows_table(rows))
        console.print(f"wrote {run / 'probes.csv'}")


def _rows_table(rows: list[dict]) -> Table:
    t = Table(title="balanced accuracy (%), fused representation")
    t.add_column("method")
    tasks = list(dict.fromkeys(r["task"] for r in rows))  # every task probed, in the run's order
    for task in tasks:
        t.add_column(task, justify="right")
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for m in methods:
        for pr in sorted({r["probe"] for r in rows}):
            cells = {r["task"]: r["balanced_accuracy"] for r in rows
                     if r["method"] == m and r["representation"] == "fused" and r["probe"] == pr}
            t.add_row(f"{m} ({pr})", *(f"{cells[k]:.1f}" if k in cells else "-" for k in tasks))
    return t


def _verdict_table(result: dict) -> Table:
    t = Table(title="fused representation, balanced accuracy % \\[max(chance, random init)]: R, U and S fused "
                    "(linear probe); S recoverable (MLP probe)")
    t.add_column("method")
    for k in ("R", "U", "S fused", "S recoverable"):
        t.add_column(k, justify="right")
    for m, vs in result["verdicts"].items():
        both = {**vs, **({"S+": result["recoverable"][m]} if m in result.get("recoverable", {}) else {})}
        t.add_row(m, *(f"{both[k].mean:.1f} [{both[k].control:.1f}] {both[k].verdict}" if k in both else "-"
                       for k in ("R", "U", "S", "S+")))
    return t


@app.command()
def report(
    runs: Annotated[list[Path], typer.Argument(help="Run folders (or folders holding runs).")],
    out: Annotated[Path, typer.Option(help="Report folder.")] = Path("report"),
    mix_datasets: Annotated[bool, typer.Option("--mix-datasets", help="Pool runs trained on different datasets "
                                               "of one kind into one mean (refused by default).")] = False,
) -> None:
    """Figure-4 chart, learning curves, verdicts and summary.csv over probed runs."""
    from comm_diag.probes.report import report as write_report_folder

    with user_errors():
        result = write_report_folder(runs, out, mix_datasets=mix_datasets)
        console.print(_verdict_table(result))
        console.print(f"wrote {out / 'report.md'}")


# ----------------------------------------------------------------------------- sweeps: quickstart / ablate

SeedsOpt = Annotated[str, typer.Option(help="Seeds, e.g. 0 or 0,1,2 or 0-4.")]
PresetOpt = Annotated[str, typer.Option("--preset", help="cpu (default), paper or smoke.")]
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


@contextlib.contextmanager
def sweep_progress(resume_hint: str) -> Iterator:
    """Hooks that print each stage with the elapsed time and draw the rendering and
    training bars; an interruption becomes one line saying how to resume."""
    import time

    from comm_diag.probes.sweep import Hooks

    t0 = time.perf_counter()
    with progress_bar() as bar:
        gen_task: dict = {}

        def on_generate(done: int, total: int) -> None:
            if "t" not in gen_task:
                gen_task["t"] = bar.add_task("rendering", total=total, info="")
            bar.update(gen_task["t"], completed=done)

        on_step = _train_bar(bar, "train")
        job_bars: dict = {}  # run name -> its bar, when runs train in parallel worker processes

        def on_job_step(name: str, info) -> None:
            if name not in job_bars:
                job_bars[name] = _train_bar(bar, name)
            job_bars[name](info)

        def on_stage(msg: str) -> None:
            bar.console.print(f"[dim]{time.perf_counter() - t0:6.0f}s[/] {msg}", highlight=False)
            gen_task.clear()
            on_step.reset()

        try:
            yield Hooks(on_stage, on_generate, on_step, on_job_step=on_job_step)
        except KeyboardInterrupt:
            raise UserError(f"interrupted; finished epochs and runs are kept: {resume_hint}") from None


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
    """The paper's two experiments end to end: data, CoMM / Cross / Cross+Self, probes, report."""
    from comm_diag.probes.experiment import quickstart as run_quickstart
    from comm_diag.probes.sweep import parse_seeds

    with user_errors():
        settings = {"preset_name": preset_name, "seeds": parse_seeds(seeds), "epochs": epochs, "every": every}
        _run_study(out, lambda hooks: run_quickstart(
            out, methods=[m.strip() for m in methods.split(",") if m.strip()], hooks=hooks, **settings,
            **executor_options(executor, workers, address, cpus_per_run, gpus_per_run)))


def _run_study(out: Path, call: Callable, table: Optional[Callable[[dict], Table]] = None) -> dict:
    """The body the sweep commands share: ``call(hooks)`` (the command's library function)
    under progress bars, one line on interruption, then the verdict table (the dose table
    for a dose study, or ``table(result)``), the study's expectations, the timing."""
    import time

    t0 = time.perf_counter()
    with sweep_progress("run the same command again to resume") as hooks:
        result = call(hooks)
    console.print((table or (_dose_table if result["outputs"].get("dose") else _verdict_table))(result))
    for text, ok in result["expectations"]:
        mark = {True: "[green]held[/]", False: "[red]did not hold[/]", None: "[yellow]not measured[/]"}[ok]
        console.print(f"{mark}: {text}", highlight=False)
    console.print(f"done in {time.perf_counter() - t0:.0f} s; report: {out / 'report.md'}")
    return result


def _dose_table(result: dict) -> Table:
    from comm_diag.probes.verdict import with_interval

    t = Table(title="dose-response: linear probe, fused representation, unbiased test pairs")
    for c in ("method", "interaction", "level", "dose bits", "balanced acc. %", "bits", "ceiling", "floor (init)",
              "verdict"):
        t.add_column(c, justify="left" if c in ("method", "interaction", "verdict") else "right")
    for r in result["outputs"]["dose"]:
        t.add_row(r["method"], r["interaction"], f"{r['level']:g}", f"{r['dose_bits']:.2f}",
                  with_interval(r["balanced_accuracy"], r["ci95"], r["seeds"]), f"{r['bits']:.2f}", f"{r['ceiling_bits']:.2f}",
                  "-" if r["init_balanced_accuracy"] is None else f"{r['init_balanced_accuracy']:.1f}", r["verdict"])
    return t


def _study_names() -> str:
    from comm_diag.probes.studies import STUDIES

    return ", ".join(STUDIES)


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
    from comm_diag.probes.ablation import run_study, study_named
    from comm_diag.probes.pipeline import StudySettings, describe_plan
    from comm_diag.probes.studies import STUDIES
    from comm_diag.probes.sweep import parse_seeds

    with user_errors():
        if list_studies:
            t = Table(title="studies")
            t.add_column("name")
            t.add_column("runs per seed and dataset", justify="right")
            t.add_column("what it compares")
            for s in STUDIES.values():
                t.add_row(s.name, f"{len(s.variants)} (+{len(s.extra)} with --extra)", s.description)
            console.print(t)
            return
        if not study:
            raise UserError(f"name a study: {_study_names()}")
        params = {"interactions": _comma_list(interaction), "levels": levels, "methods": _comma_list(methods)}
        spec = study_named(study, **params)
        out = out or Path("ablations") / study
        settings = {"preset_name": preset_name, "seeds": parse_seeds(seeds), "data": data or (), "extra": extra,
                    "only": only, "epochs": epochs, "every": every}
        if list_runs:
            t = Table(title=f"study {study}: {spec.description}")
            for c in ("#", "run", "variant", "seed", "data", "changes from the preset"):
                t.add_column(c)
            for row in describe_plan(spec, out, StudySettings(**settings)):
                t.add_row(*(str(row[k]) for k in ("index", "run", "variant", "seed", "data", "changes")))
            console.print(t)
            return
        _run_study(out, lambda hooks: run_study(study, out, **params, hooks=hooks, **settings,
                                                **executor_options(executor, workers, address, cpus_per_run,
                                                                   gpus_per_run)))


def _comma_list(text: Optional[str]) -> Optional[list[str]]:
    return [x.strip() for x in text.split(",") if x.strip()] if text else None


# ----------------------------------------------------------------------------- calibrate

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
    from comm_diag.probes.calibrate import run_calibration
    from comm_diag.probes.sweep import parse_seeds
    from comm_diag.probes.verdict import over_seeds, with_interval

    with user_errors():
        seed_list = parse_seeds(seeds)
        names = [r.strip() for r in references.split(",")] if references else None
        with sweep_progress("run the same command again") as hooks:
            rows = run_calibration(out, data=data, preset_name=preset_name, seeds=seed_list, references=names,
                                   hooks=hooks)
    t = Table(title=f"calibration: balanced accuracy % ({'mean ± 95% CI ' if len(seed_list) > 1 else ''}"
                    f"{over_seeds(len(seed_list))}) [line], bits [fraction of the exact PID bits]")
    for c in ("reference", "level", "measured", "bits", "verdict", "expected", ""):
        t.add_column(c)
    for r in rows:
        expected = {True: "captured", False: "not captured", None: "(not asserted)"}[r["expected"]]
        frac = f" [{100 * r['bits_fraction']:.0f}%]" if r["bits_fraction"] is not None else ""
        t.add_row(r["reference"], r["level"], f"{with_interval(r['balanced_accuracy'], r['ci95'], r['seeds'])} "
                  f"[{r['line']:.0f}]", f"{r['bits']:.2f}{frac}", r["verdict"], expected,
                  "ok" if r["ok"] else "MISMATCH")
    console.print(t)
    bad = [r for r in rows if not r["ok"]]
    console.print(f"{len(rows) - len(bad)} of {len(rows)} verdicts as expected; wrote {out / 'calibration.csv'}")
    if bad:
        err.print("[bold red]calibration mismatch:[/] " + "; ".join(f"{r['reference']} {r['level']}: "
                  f"{r['verdict']}" for r in bad), highlight=False, soft_wrap=True)
        raise typer.Exit(code=CALIBRATION_MISMATCH_EXIT)


# ----------------------------------------------------------------------------- check / methods

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
    from comm_diag.comm.methods.plugins import label_of, normalize_target
    from comm_diag.probes.check import REQUIRE_EXIT, check as run_check, parse_require, unmet
    from comm_diag.probes.sweep import parse_seeds
    from comm_diag.probes.tasks import NAMES

    with user_errors():
        required = parse_require(require)
        if required and dose:
            raise UserError("--require reads the check's three verdicts; a dose check has one per level: "
                            "read its curve (dose.csv)")
        settings = {"preset_name": preset_name, "seeds": parse_seeds(seeds), "data": data or (), "epochs": epochs}
        control_list = [] if no_controls or controls.strip() == "none" else _comma_list(controls) or []
        options = executor_options(executor, workers, address, cpus_per_run, gpus_per_run)
        label = label_of(normalize_target(target))
        out = out or Path("check-out") / (label + ("-dose" if dose else ""))
        result = _run_study(out, lambda hooks: run_check(
            target, out, controls=control_list, dose=_comma_list(dose) or (), levels=levels, hooks=hooks,
            **settings, **options), table=None if dose else lambda r: _check_table(r, label))
        console.print(result["conclusion"], highlight=False)
    missing = unmet(result, required)
    if missing:
        err.print(f"[bold red]required but not captured:[/] {', '.join(NAMES[k] for k in missing)}",
                  highlight=False, soft_wrap=True)
        raise typer.Exit(code=REQUIRE_EXIT)


def _check_table(result: dict, label: str) -> Table:
    from comm_diag.probes.tasks import INTERACTIONS, NAMES, chance
    from comm_diag.probes.verdict import with_interval

    ver = result["verdicts"]
    others = [m for m in ver if m != label]
    t = Table(title="linear probe, fused representation, balanced accuracy %")
    for c in ("", f"{label} (95% CI)", "random init", "chance", *others, "verdict"):
        t.add_column(c, justify="right" if c else "left")
    for k, task in INTERACTIONS.items():
        v = ver.get(label, {}).get(k)
        if v is None:
            continue
        t.add_row(NAMES[k], with_interval(v.mean, v.ci95, v.n_seeds), "-" if v.init is None else f"{v.init:.1f}", f"{chance(task):.0f}",
                  *(f"{ver[m][k].mean:.1f}" if k in ver[m] else "-" for m in others), v.verdict)
    return t


@app.command()
def methods() -> None:
    """The methods `train`, `check` and `--method` accept: built-ins and installed plugins."""
    import dataclasses

    from comm_diag.comm.methods import METHODS
    from comm_diag.comm.methods import load_class
    from comm_diag.comm.methods.plugins import ENTRY_POINT_GROUP, PluginError, installed

    def summary(cls: type) -> str:
        return " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())

    def own(cls: type) -> str:
        return ", ".join(f"{f.name}={f.default}" for f in dataclasses.fields(cls.Settings)) or "none of its own"

    t = Table(title="methods")
    for c in ("name", "source", "what it is"):
        t.add_column(c)
    settings = {}
    for name, cls in METHODS.items():
        t.add_row(name, "built-in", summary(cls))
        settings[name] = own(cls)
    for name, value in installed().items():
        if name in METHODS:  # load_class resolves a name to the built-in first
            t.add_row(name, f"plugin {value}", f"[yellow]never used: the built-in {name!r} has this name; rename "
                                               f"the entry point, or give {value} as the method[/]")
            continue
        try:
            cls = load_class(name)
            t.add_row(name, f"plugin {value}", summary(cls))
            settings[name] = own(cls)
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
