"""Progress of long calls, for the command line and for notebooks alike.

``progress(mode)`` yields the ``Hooks`` a long call (a study, a calibration, a training)
reports to, drawn one of three ways:

- ``bar``: rich bars on stderr, one per run (a terminal);
- ``lines``: plain lines on stdout, a stage or a finished epoch each, flushed (a notebook,
  a log file, a pipe: no terminal control frames, no widgets);
- ``off``: nothing.

``auto`` (the default everywhere) is ``bar`` when stderr is a terminal outside Jupyter and
``lines`` otherwise. Every event also reaches the caller's own hooks (``also``).
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Callable, Iterator, Optional

from comm_diag.errors import InputError
from comm_diag.probes.hooks import Hooks

MODES = ("auto", "bar", "lines", "off")


def in_notebook() -> bool:
    """Running inside a Jupyter kernel (IPython's ZMQ shell)."""
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return type(shell).__name__ == "ZMQInteractiveShell"


def resolve_mode(mode: str) -> str:
    if mode not in MODES:
        raise InputError(f"unknown progress {mode!r}; choose from {', '.join(MODES)}")
    if mode != "auto":
        return mode
    return "bar" if sys.stderr.isatty() and not in_notebook() else "lines"


def _chain(*fns: Optional[Callable]) -> Optional[Callable]:
    fns = tuple(f for f in fns if f is not None)
    if not fns:
        return None

    def call(*args) -> None:
        for f in fns:
            f(*args)
    return call


def bars(console=None):
    """Rich's progress display with the columns of every comm-diag bar."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    # run names and stages are the user's labels: plain text, never markup or emoji codes
    return Progress(TextColumn("{task.description}", style="bold", markup=False), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}", markup=False),
                    console=console or Console(stderr=True, emoji=False), transient=False)


def _step_text(info) -> str:
    return f"epoch {info.epoch}/{info.epochs} loss {info.loss:.3f} {info.pairs_per_s:.0f} pairs/s"


@contextlib.contextmanager
def _bar_hooks(t0: float, label: str) -> Iterator[Hooks]:
    with bars() as bar:
        tasks: dict = {}  # bar key -> rich task id

        def on_generate(done: int, total: int) -> None:
            if "render" not in tasks:
                tasks["render"] = bar.add_task("rendering", total=total, info="")
            bar.update(tasks["render"], completed=done)

        def on_job_step(name: str, info) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=info.steps_per_epoch * info.epochs, info="")
            bar.update(tasks[name], completed=info.global_step, info=_step_text(info))

        def on_stage(msg: str) -> None:
            from rich.text import Text

            bar.console.print(Text.assemble((f"{time.perf_counter() - t0:6.0f}s", "dim"), f" {msg}"),
                              highlight=False)
            tasks.pop("render", None)
            tasks.pop(label, None)  # the next run in this process gets a bar of its own

        yield Hooks(on_stage, on_generate, lambda info: on_job_step(label, info), on_job_step=on_job_step)


def _line_hooks(t0: float, label: str, write: Callable[[str], None]) -> Hooks:
    last: dict = {}  # what was last reported per run / for rendering (one line per epoch, per quarter)

    def say(msg: str) -> None:
        write(f"{time.perf_counter() - t0:6.0f}s {msg}")

    def on_generate(done: int, total: int) -> None:
        quarter = 4 * done // max(total, 1)
        if quarter > last.get("render", 0):
            last["render"] = quarter
            say(f"rendering: {done}/{total} images")

    def on_job_step(name: str, info) -> None:
        if info.step == info.steps_per_epoch and last.get(name) != info.epoch:  # an epoch just finished
            last[name] = info.epoch
            say(f"{name}: {_step_text(info)}")

    def on_stage(msg: str) -> None:
        last.pop("render", None)
        last.pop(label, None)
        say(msg)

    return Hooks(on_stage, on_generate, lambda info: on_job_step(label, info), on_job_step=on_job_step)


def _print_line(text: str) -> None:
    print(text, flush=True)


@contextlib.contextmanager
def progress(mode: str = "auto", also: Optional[Hooks] = None, label: str = "train",
             write: Callable[[str], None] = _print_line) -> Iterator[Hooks]:
    """Hooks drawing progress as ``mode`` says (``MODES``), forwarding every event to
    ``also``; ``label`` names the run of an in-process training in its bar and lines;
    ``write`` prints a line (lines mode)."""
    if also is not None and not isinstance(also, Hooks):  # an object() failed at its first event
        raise InputError(f"hooks must be a comm_diag.probes.hooks.Hooks, got {type(also).__name__}")
    mode = resolve_mode(mode)
    t0 = time.perf_counter()
    if mode == "bar":
        ctx = _bar_hooks(t0, label)
    elif mode == "lines":
        ctx = contextlib.nullcontext(_line_hooks(t0, label, write))
    else:
        ctx = contextlib.nullcontext(Hooks())
    with ctx as drawn:
        if also is None:
            yield drawn
            return
        yield Hooks(_chain(drawn.on_stage, also.on_stage), _chain(drawn.on_generate, also.on_generate),
                    _chain(drawn.on_step, also.on_step), _chain(drawn.on_done, also.on_done),
                    _chain(drawn.on_job_step, also.on_job_step))
