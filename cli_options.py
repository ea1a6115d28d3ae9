"""How the ``comm-diag`` commands declare and parse their options: options built from the
config dataclasses' fields, the options the sweep commands share, and their parsers.
``cli.py`` holds the commands themselves."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from comm_diag.errors import InputError
from comm_diag.trifeature_gen.factors import FACTOR_NAMES


class UserError(InputError):
    """Bad input on the command line: reported as one line, exit code 1."""


def parse_synergy_attrs(text: str) -> tuple[str, str]:
    parts = text.split(":")
    if len(parts) != 2 or not all(parts):
        raise UserError(f"--synergy-attrs must look like SRC:TGT (e.g. texture:color), got {text!r}")
    for p in parts:
        if p not in FACTOR_NAMES:
            raise UserError(f"unknown attribute {p!r} in --synergy-attrs; choose from {', '.join(FACTOR_NAMES)}")
    return parts[0], parts[1]


def settings_options(cls: type, skip: tuple[str, ...] = (), shown: Callable[[Any], object] = lambda f: f.default):
    """A command taking ``**settings`` gets one ``--option`` per field of the config dataclass
    ``cls`` (but ``skip``; a bool as ``--name/--no-name``), typed and documented by the field itself (its type, its
    help, ``[shown(field)]``); the command receives the options given, never a None."""
    hints = typing.get_type_hints(cls)

    def decorate(command: Callable) -> Callable:
        sig = inspect.signature(command, eval_str=True)
        own = [p for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD]
        extra = []
        for f in dataclasses.fields(cls):
            kind = next((t for t in typing.get_args(hints[f.name]) if t is not type(None)), hints[f.name])
            if f.name in skip or f.name in sig.parameters or "help" not in f.metadata:  # a command's own option wins
                continue
            default = shown(f)
            flags = (f"--{f.name.replace('_', '-')}/--no-{f.name.replace('_', '-')}",) if kind is bool else ()
            option = typer.Option(*flags, help=f"{f.metadata['help']}{'' if default is None else f' [{default}]'}.",
                                  show_default=False)
            extra.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                           annotation=Annotated[Optional[kind], option]))

        @functools.wraps(command)
        def with_settings(**options: Any) -> Any:
            given = {k: v for k, v in options.items() if k not in sig.parameters and v is not None}
            return command(**{k: v for k, v in options.items() if k in sig.parameters}, **given)

        with_settings.__signature__ = sig.replace(parameters=own + extra)  # what Typer reads
        with_settings.__annotations__ = {p.name: p.annotation for p in own + extra}
        return with_settings
    return decorate


def cpu_preset_value(f: Any) -> object:
    """The help's [bracket] for a run setting: its value in the default preset."""
    from comm_diag.comm.config import preset

    return f"cpu preset: {getattr(preset('cpu'), f.name)}"


# the options of the sweep commands (quickstart, ablate, check)

SeedsOpt = Annotated[str, typer.Option(help="Seeds, e.g. 0 or 0,1,2 or 0-4.")]
PresetOpt = Annotated[str, typer.Option("--preset", help="smoke (32 px, 1 epoch: a minute, checks that all runs), "
                                                         "cpu (64 px, 6 epochs: the default, minutes per run on 2 "
                                                         "cores) or paper (224 px, AlexNet, 100 epochs: a GPU).")]
EpochsOpt = Annotated[Optional[int], typer.Option(help="Override the preset's epochs.")]
WorkersOpt = Annotated[int, typer.Option(help="Runs in parallel worker processes (local executor); 0: one per "
                                               "core, at most one per run, on CPU, and 1 when a GPU trains.")]
TogetherOpt = Annotated[int, typer.Option(help="Runs one process trains at once (local executor, one worker), "
                                                 "interleaved on CUDA streams on a GPU; 0: every run of the study "
                                                 "(at most 6) on a GPU, one at a time on CPU.")]
TensorBoardOpt = Annotated[bool, typer.Option("--tensorboard", help=(
    "Also write each run's loss terms, lr, throughput and probe curves as TensorBoard events (RUN/tensorboard/; "
    "pip install -e '.[tensorboard]')."))]
FastOpt = Annotated[bool, typer.Option("--fast", help=(
    "Every run on the fast path: bf16 autocast, the captured step and, on a GPU, the augmentation compiled "
    "(a preset's fp32 yields to it; the fidelity study's 'fast' variant measures its curve)."))]
ExecutorOpt = Annotated[str, typer.Option(help="Where runs execute: local or ray (pip install -e '.[ray]').")]
AddressOpt = Annotated[Optional[str], typer.Option(help="Ray cluster address [default: a local Ray instance].")]
DataOpt = Annotated[Optional[list[Path]], typer.Option(
    help="Dataset(s) from `comm-diag generate`: once (every task probed on it) or an unbiased and a synergy one "
         "[default: the preset's pair, generated in the output folder].")]
CpusOpt = Annotated[float, typer.Option(help="Ray: CPUs requested per run.")]
GpusOpt = Annotated[float, typer.Option(help="Ray: GPUs requested per run.")]


def executor_options(executor: str, workers: int, address: Optional[str], cpus: float, gpus: float,
                     together: int = 0) -> dict:
    """The executor options as given; ``api`` checks them (``executors.settle_options``, the one place)."""
    return {"executor": executor, "workers": workers, "together": together, "address": address,
            "cpus_per_run": cpus, "gpus_per_run": gpus}


def comma_list(text: Optional[str]) -> Optional[list[str]]:
    """'a,b' -> ['a', 'b']; None (not given) -> None; '' (given empty) -> [] (refused where a
    name is needed, never taken as "not given")."""
    return None if text is None else [x.strip() for x in text.split(",") if x.strip()]


def examples(*lines: str) -> str:
    """A command's --help epilog: example command lines, kept as written (click's \\b)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)
