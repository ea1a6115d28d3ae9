"""The ``comm-diag`` command: thin Typer wrappers over the library functions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
from rich.console import Console

import comm_diag.trifeature_gen as tg
from comm_diag.cli_options import (AddressOpt, CpusOpt, DataOpt, EpochsOpt, ExecutorOpt, FastOpt, GpusOpt, PresetOpt,
                                   SeedsOpt, TensorBoardOpt, TogetherOpt, UserError, WorkersOpt, comma_list,
                                   cpu_preset_value, examples, executor_options, parse_synergy_attrs, settings_options)
from comm_diag.cli_errors import err, run_to_the_end, styled, terminate_as_interrupt, user_errors
from comm_diag.comm.config import DEFAULT_METHODS, TrainConfig


app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Which multimodal interactions does a self-supervised method learn? "
                       "Controlled bimodal Trifeature experiments (CoMM, ICLR 2025).")
console = Console(markup=False, emoji=False)  # plain text: see cli_errors.err


def run() -> None:
    """The ``comm-diag`` entry point (``cli_errors.run_to_the_end``)."""
    run_to_the_end(app, "comm-diag")


def _version(value: bool) -> None:
    if value:
        console.print(f"comm-diag {tg.__version__}")
        raise typer.Exit()


@app.callback()
def main(ctx: typer.Context, version: Annotated[Optional[bool], typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = None) -> None:
    ctx.call_on_close(terminate_as_interrupt())  # the handlers hold while the command runs, then go


# ----------------------------------------------------------------------------- generate / info

@app.command(epilog=examples("comm-diag generate --preset smoke --out data/smoke",
                             "comm-diag generate --synergy --size 64 --out data/synergy-64",
                             "comm-diag generate --synergy --synergy-attrs shape:color --png"))
@settings_options(tg.DatasetSpec, skip=("synergy_src", "synergy_tgt"))
def generate(
    out: Annotated[Optional[Path], typer.Option(help="Output folder [default: data/trifeature-SIZE[-synergy]].")] = None,
    preset_name: Annotated[Optional[str], typer.Option("--preset", help="Start from a training preset's data: "
                                                       "smoke (32 px, 512 pairs), cpu (64 px), paper (224 px).")] = None,
    synergy: Annotated[bool, typer.Option("--synergy", help="Bias the train pairs to obey the synergy mapping.")] = False,
    synergy_attrs: Annotated[Optional[str], typer.Option(
        help="SRC:TGT, synergy label = [TGT(x2) == m(SRC(x1))] [texture:color].")] = None,
    png: Annotated[bool, typer.Option("--png", help="Also write every image as PNG.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty output folder.")] = False,
    **settings: Any,
) -> None:
    """Render a bimodal Trifeature dataset with controlled redundancy, uniqueness and synergy."""
    from comm_diag import api

    with user_errors():
        if synergy_attrs is not None:
            settings["synergy_src"], settings["synergy_tgt"] = parse_synergy_attrs(synergy_attrs)
        written = api.generate(out, preset=preset_name, synergy=synergy, png=png, force=force, **settings,
                               warn=lambda m: err.print(styled("warning:", "yellow", m), soft_wrap=True))
        console.print(f"wrote {out or written}", highlight=False, soft_wrap=True)  # as the user named it


@app.command()
def info(data: Annotated[Path, typer.Argument(help="A dataset folder written by `comm-diag generate`.")]) -> None:
    """Counts, roles, mapping, PID table and synergy positive rates of a dataset."""
    with user_errors(writes=False):
        from comm_diag import tables

        for table in tables.dataset(tg.load(data).manifest):  # every hash, array and pair index checked
            console.print(table)


# ----------------------------------------------------------------------------- train / probe / report

@app.command()
@settings_options(TrainConfig, skip=("image_size", "preset"), shown=cpu_preset_value)
def train(
    data: Annotated[Path, typer.Option(help="Dataset folder (from `comm-diag generate`).")],
    preset_name: Annotated[str, typer.Option("--preset", help="cpu (default), paper or smoke: every setting "
                                                              "not given (the brackets show the cpu preset's).")] = "cpu",
    fusion: Annotated[Optional[str], typer.Option(help="CoMM fusion: transformer or linear.")] = None,
    temperature: Annotated[Optional[float], typer.Option(help="InfoNCE temperature [preset].")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Run folder [default: runs/METHOD-seedSEED].")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the run's last checkpoint.")] = False,
    nproc: Annotated[int, typer.Option(help="Data-parallel processes on this machine (torchrun; gloo on CPU, "
                                            "NCCL on GPUs); the batch size is per process.")] = 1,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Any other run setting, or one of the method's "
                                                                 "own (`comm-diag methods` lists them), as KEY=VALUE "
                                                                 "(repeatable), e.g. --set proj_dim=128.")] = None,
    compile_: Annotated[bool, typer.Option("--compile", help="torch.compile the model's modules (a minute or more "
                                                             "of compiling first; fused kernels round differently, "
                                                             "so weights differ from an eager run's).")] = False,
    tensorboard: TensorBoardOpt = False,
    **settings: Any,
) -> None:
    """Train a method on a dataset's train pairs (checkpoint every epoch, resumable)."""
    from comm_diag import api

    with user_errors():
        given = TrainConfig.merge_given({**settings, "fusion": fusion, "temperature": temperature}, set_ or ())
        method = str(given.pop("method", TrainConfig.method))  # --method or --set method=...
        out = out or api.train_out(method, given.get("seed", TrainConfig.seed))
        if nproc < 1:
            raise UserError(f"--nproc must be >= 1, got {nproc}")
        try:
            api.train(data, out, method=method, preset=preset_name, resume=resume,
                      compile=compile_, nproc=nproc, tensorboard=tensorboard, **given)
        except KeyboardInterrupt:
            from comm_diag.comm.run_folder import checkpoint_path

            if not checkpoint_path(out, 0).is_file():  # stopped before the run folder held anything to resume
                raise UserError(f"interrupted before training began; nothing to resume in {out}")
            raise UserError(f"interrupted; the last finished epoch is kept: resume with --resume --out {out}")
        console.print(f"trained {api.label(method)}{f' on {nproc} processes' if nproc > 1 else ''}: {out}",
                      soft_wrap=True)


@app.command()
def probe(
    run: Annotated[Path, typer.Argument(help="A run folder written by `comm-diag train`.")],
    data: Annotated[Optional[Path], typer.Option(help="Dataset to probe on [default: the run's].")] = None,
    probe_kind: Annotated[str, typer.Option("--probe", help="Comma list of probes: linear, mlp, linear_unweighted, "
                                                      "authors (the authors' protocol: cropped probe images, "
                                                      "unweighted, their C search).")] = "linear",
    every_epoch: Annotated[bool, typer.Option("--every-epoch", help="Probe every saved epoch too.")] = False,
    every: Annotated[int, typer.Option(help="Probe every K-th saved epoch too (learning curves).")] = 0,
    allow_unfinished: Annotated[bool, typer.Option("--allow-unfinished", help="Probe a run that has not reached "
                                                   "its last epoch (report will still refuse it).")] = False,
    method: Annotated[Optional[str], typer.Option(help="The run's method, when it is your code (path/to/file.py:"
                                                       "ClassName): a run folder's config never makes comm-diag "
                                                       "import code, you name it.")] = None,
    backend: Annotated[str, typer.Option(help="Where the probes are fitted: auto (torch, on the run's device), "
                                              "torch, or sklearn (the same optimum, slower).")] = "auto",
) -> None:
    """Probe a trained run (and its random-init control): probes.csv and probes.json."""
    from comm_diag import api, tables

    with user_errors():
        rows = api.probe(run, data=data, probe=probe_kind, every=1 if every_epoch else every,
                         allow_unfinished=allow_unfinished, method=method, backend=backend,
                         on_model=lambda m: err.print(f"probing {m}"), progress="off")
        console.print(tables.probe_rows(rows))
        console.print(f"wrote {run / 'probes.csv'}", soft_wrap=True)


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
        console.print(tables.verdicts(api.report(runs, out, mix_datasets=mix_datasets, progress="off")))
        console.print(f"wrote {out / 'report.md'} and {out / 'report.html'}", soft_wrap=True)


# ----------------------------------------------------------------------------- sweeps: quickstart / ablate / check

def _run_study(out: Path, call: Callable[[], dict], table: Optional[Callable[[dict], object]] = None) -> dict:
    """The body the sweep commands share: ``call()`` (the command's library function, which
    draws its own progress), one line on interruption, then the study's table (or
    ``table(result)``), its expectations, its lead in words (quickstart's conclusion), the timing."""
    import time

    from comm_diag import tables

    t0 = time.perf_counter()
    try:
        result = call()
    except KeyboardInterrupt:
        raise UserError("interrupted; finished epochs and runs are kept: run the same command again to resume") from None
    said = tables.lead(result) if table is None else []  # check prints its own conclusion
    for part in [(table or tables.study)(result), *tables.expectations(result), *said]:
        console.print(part, highlight=False)
    console.print(f"done in {time.perf_counter() - t0:.0f} s; report: {out / 'report.md'}", soft_wrap=True)
    return result


@app.command(epilog=examples("comm-diag quickstart --preset smoke           # the plumbing, under a minute",
                             "comm-diag quickstart                          # the cpu preset: a real answer",
                             "comm-diag quickstart --seeds 0,1,2 --every 5  # intervals and learning curves",
                             "comm-diag quickstart --preset smoke --methods comm,examples/clip_concat.py:ClipConcat"))
def quickstart(
    out: Annotated[Path, typer.Option(help="Output folder (data, runs, report).")] = Path("comm-diag-out"),
    preset_name: PresetOpt = "cpu",
    seeds: SeedsOpt = "0",
    epochs: EpochsOpt = None,
    every: Annotated[int, typer.Option(help="Also probe every K epochs: learning curves in the report.")] = 0,
    methods: Annotated[str, typer.Option(help="Comma list of methods: built-ins (`comm-diag methods` lists them) "
                                              "or your own (path/to/file.py:ClassName, package.module:ClassName).")]
    = ",".join(DEFAULT_METHODS),
    tensorboard: TensorBoardOpt = False,
    fast: FastOpt = False,
    workers: WorkersOpt = 0,
    together: TogetherOpt = 0,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
    cpus_per_run: CpusOpt = 1.0,
    gpus_per_run: GpusOpt = 0.0,
) -> None:
    """The paper's two experiments end to end: data, CoMM / Cross / Cross+Self, probes, report.

    Six trainings a seed (each method on the unbiased and on the synergy-biased pairs). The
    README's "Start here" gives the measured times (the one place they are kept); paper
    needs a GPU.
    """
    from comm_diag import api

    with user_errors():
        _run_study(out, lambda: api.quickstart(out, preset=preset_name, seeds=seeds, epochs=epochs, every=every,
                                               methods=comma_list(methods) or [], tensorboard=tensorboard, fast=fast,
                                               **executor_options(executor, workers, address, cpus_per_run,
                                                                  gpus_per_run, together)))


@app.command(epilog=examples("comm-diag ablate --list-studies",
                             "comm-diag ablate loss --preset smoke --list   # the runs it would train",
                             "comm-diag ablate fusion --seeds 0,1,2",
                             "comm-diag ablate dose --interaction synergy --levels 0,0.5,1 --methods comm,cross"))
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
    tensorboard: TensorBoardOpt = False,
    fast: FastOpt = False,
    workers: WorkersOpt = 0,
    together: TogetherOpt = 0,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
    cpus_per_run: CpusOpt = 1.0,
    gpus_per_run: GpusOpt = 0.0,
) -> None:
    """The paper's ablations (loss, fusion, augment), the fidelity study and the dose-response study (dose):
    run, resume, report."""
    from comm_diag import api, tables

    with user_errors():
        if list_studies:
            console.print(tables.studies(api.studies()))
            return
        if not study:
            raise UserError(f"name a study: {', '.join(api.studies())}")
        params = {"interaction": comma_list(interaction), "levels": levels, "methods": comma_list(methods)}
        out = out or api.ablate_out(study)
        settings = {"seeds": seeds, "data": data or (), "extra": extra, "only": only, "epochs": epochs, "every": every}
        if list_runs:
            description, plan = api.ablate_plan(study, out, preset=preset_name, **params, **settings)
            console.print(tables.plan(f"study {study}: {description}", plan))
            return
        _run_study(out, lambda: api.ablate(study, out, preset=preset_name, **params, **settings,
                                           tensorboard=tensorboard, fast=fast,
                                           **executor_options(executor, workers, address, cpus_per_run,
                                                              gpus_per_run, together)))


@app.command(epilog=examples("comm-diag check examples/clip_concat.py:ClipConcat --preset smoke",
                             "comm-diag check my_ssl.py:MyMethod --set temperature=0.2 --seeds 0,1,2",
                             "comm-diag check my_ssl.py:MyMethod --controls comm --require synergy",
                             "comm-diag check my_ssl.py:MyMethod --dose synergy"))
def check(
    target: Annotated[str, typer.Argument(help="Your method: path/to/file.py:ClassName, package.module:ClassName, "
                                               "or a name from `comm-diag methods`.", show_default=False)],
    out: Annotated[Optional[Path], typer.Option(help="Output folder [default: check-out/CLASSNAME].")] = None,
    data: DataOpt = None,
    preset_name: PresetOpt = "cpu",
    seeds: SeedsOpt = "0",
    epochs: EpochsOpt = None,
    controls: Annotated[str, typer.Option(help="Built-in methods trained beside yours with the same budget (comma "
                                               "list), or 'none' (the random-init floor is always measured).")]
    = ",".join(DEFAULT_METHODS),
    no_controls: Annotated[bool, typer.Option("--no-controls", help="Same as --controls none.")] = False,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="KEY=VALUE (repeatable): one of your method's "
                                                                 "Settings, or a run setting of every method.")] = None,
    require: Annotated[Optional[str], typer.Option(
        help="Exit with code 3 unless these are captured: redundancy, uniqueness, synergy (comma list).")] = None,
    dose: Annotated[Optional[str], typer.Option(
        help="Instead, the dose-response of these interactions (synergy and/or redundancy): your method's curve "
             "beside the controls' (`comm-diag ablate dose`).")] = None,
    levels: Annotated[Optional[str], typer.Option(
        help="With --dose: the strengths in the training pairs [default: 0,0.25,0.5,0.75,1].")] = None,
    tensorboard: TensorBoardOpt = False,
    fast: FastOpt = False,
    workers: WorkersOpt = 0,
    together: TogetherOpt = 0,
    executor: ExecutorOpt = "local",
    address: AddressOpt = None,
    cpus_per_run: CpusOpt = 1.0,
    gpus_per_run: GpusOpt = 0.0,
) -> None:
    """Does your SSL method capture redundancy, uniqueness and synergy? Trains it beside the references."""
    from comm_diag import api, tables

    with user_errors():
        if api.required(require) and dose:  # a misspelt --require: refused before any work
            raise UserError("--require reads the check's three verdicts; a dose check has one per level: "
                            "read its curve (dose.csv)")
        if no_controls and controls != ",".join(DEFAULT_METHODS):
            raise UserError("--no-controls and --controls contradict each other: give one")
        out = out or api.check_out(target, bool(dose))
        result = _run_study(out, lambda: api.check(
            target, out, data=data or (), preset=preset_name, seeds=seeds, epochs=epochs,
            controls="none" if no_controls else controls, settings=TrainConfig.parse_settings(set_ or ()),
            dose=comma_list(dose) or (), levels=levels, tensorboard=tensorboard, fast=fast,
            **executor_options(executor, workers, address, cpus_per_run, gpus_per_run, together)),
            table=None if dose else lambda r: tables.check(r, r.label))
        console.print(result.conclusion, highlight=False)
        missing = api.unmet(result, require)
    if missing:
        err.print(styled("required but not captured:", "bold red", ", ".join(missing)), soft_wrap=True)
        raise typer.Exit(code=api.REQUIRE_EXIT)


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
    from comm_diag.outputs import read_json

    with user_errors():
        n_seeds = len(api.seed_list(seeds))
        try:
            rows = api.calibrate(out, data=data, preset=preset_name, seeds=seeds, references=comma_list(references))
        except KeyboardInterrupt:
            raise UserError("interrupted: run the same command again") from None
    console.print(tables.calibration(rows, n_seeds))
    warning = read_json(out / "calibration.json").get("warning")
    if warning:
        err.print(styled("warning:", "bold yellow", warning), soft_wrap=True)
    bad = [r for r in rows if not r["ok"]]
    console.print(f"{len(rows) - len(bad)} of {len(rows)} verdicts as expected; wrote {out / 'calibration.csv'}",
                  soft_wrap=True)
    if bad:
        err.print(styled("calibration mismatch:", "bold red", "; ".join(f"{r['reference']} {r['level']}: "
                  f"{r['verdict']}" for r in bad)), soft_wrap=True)
        raise typer.Exit(code=CALIBRATION_MISMATCH_EXIT)


@app.command()
def methods() -> None:
    """The methods `train`, `check` and `--method` accept: built-ins and installed plugins."""
    from comm_diag import tables

    for part in tables.methods():
        console.print(part, highlight=False, soft_wrap=True)


if __name__ == "__main__":
    run()
