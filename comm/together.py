"""Several trainings in one process: ``train_together`` runs K runs (a study's six Figure-4
trainings), each with its own model, optimiser, generators, checkpoints and run folder.

On a GPU their steps are interleaved, each run on a CUDA stream of its own: one CoMM run
recorded as a CUDA graph leaves the GPU idle between its launches, and the other runs' steps
fill those gaps (0.5 on an H200: six runs in one process 3,757 pairs/s in all, one run
2,944; docs/gpu.md). On CPU the same scheduler runs them in turn, one to its end after the
other, as ``train`` would: interleaving buys nothing where every core is busy with one step.

A run's weights do not depend on what runs beside it: every draw of a step comes from the
run's generators, seeded by (seed, epoch, step), and the process-wide generator (a method's
module-level randomness, InfMasking's masks) is set to the run's own state around each of its
steps. ``interleave=True`` on CPU runs the GPU's schedule there, which is how the tests show
each run's weights equal those of the run trained alone.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import torch

from comm_diag.errors import InputError
import comm_diag.trifeature_gen as tg

from comm_diag.outputs import claim
from comm_diag.comm import distributed as dist
from comm_diag.comm.config import TrainConfig
from comm_diag.comm.runtime import Runtime, is_gpu
from comm_diag.comm.train import StepInfo, checked, training_steps


@dataclass
class TrainJob:
    """One of the runs ``train_together`` trains: what ``train`` takes."""

    config: TrainConfig
    data: tg.Dataset | Path | str
    out: Path | str
    resume: bool = False
    on_step: Optional[Callable[[StepInfo], None]] = None


class _ProcessRandomness:
    """A run's own state of the process-wide generators (CPU, and the run's GPU), put in place
    around each of its steps and taken back after it."""

    def __init__(self, device: torch.device):
        self.device = device if is_gpu(device) else None
        self.cpu: Optional[torch.Tensor] = None
        self.gpu: Optional[torch.Tensor] = None

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        if self.cpu is not None:
            torch.set_rng_state(self.cpu)
            if self.device is not None:
                torch.cuda.set_rng_state(self.gpu, self.device)
        try:
            yield
        finally:
            self.cpu = torch.get_rng_state()
            if self.device is not None:
                self.gpu = torch.cuda.get_rng_state(self.device)


@dataclass
class _Running:
    name: str
    steps: Iterator[None]
    stream: Optional["torch.cuda.Stream"]
    randomness: _ProcessRandomness

    def step(self) -> bool:
        """One step of this run on its stream; False when the run has ended."""
        with torch.cuda.stream(self.stream) if self.stream is not None else contextlib.nullcontext():
            with self.randomness.active():
                return next(self.steps, StopIteration) is not StopIteration


def _one_runtime(cfgs: Sequence[TrainConfig]) -> Runtime:
    """The process-wide settings the runs share: one device and one determinism setting
    (``Runtime.activate`` sets them for the whole process); precision may differ per run."""
    runtimes = [Runtime.of(c) for c in cfgs]
    devices = sorted({str(r.device) for r in runtimes})
    if len(devices) > 1:
        raise InputError(f"runs trained together share one device; these ask for {', '.join(devices)}")
    if len({r.deterministic for r in runtimes}) > 1:
        raise InputError("runs trained together share one determinism setting; some ask for --deterministic, "
                         "some do not")
    return runtimes[0]


def train_together(jobs: Sequence[TrainJob], *, interleave: Optional[bool] = None, log_every: int = 1,
                   sync_every: Optional[int] = None) -> list[Path]:
    """Train every job in this process; returns their run folders.

    ``interleave``: one step of each run in turn (on a GPU each run on its own CUDA stream),
    or each run to its end before the next; None: interleaved on a GPU, in turn on CPU. The
    weights, checkpoints and logs of a run are those ``train`` gives it alone. Every config
    is checked and every run folder claimed before the first step; when one run fails, the
    others stop too (each keeps its finished epochs: resume to continue) and its error is
    raised. Not under torchrun: a data-parallel training is one run of its own."""
    if dist.launched():
        raise InputError("train_together trains in one process; under torchrun train one run per launch")
    if not jobs:
        return []
    prepared = [(checked(j.config, j.data), j) for j in jobs]
    outs = [Path(j.out).resolve() for j in jobs]
    if len(set(outs)) < len(outs):
        raise InputError("two of the runs trained together write the same run folder")
    shared = _one_runtime([cfg for (cfg, _), _ in prepared]).activate()
    interleave = shared.on_gpu if interleave is None else interleave
    with contextlib.ExitStack() as held:
        running = []
        for ((cfg, ds), job), out in zip(prepared, outs):
            out = held.enter_context(claim(out, "run"))
            runtime = Runtime.of(cfg, shared.device)
            every = runtime.sync_every if sync_every is None else sync_every
            if every < 1:
                raise InputError(f"sync_every must be >= 1 step, got {every}")
            steps = training_steps(cfg, ds, out, job.resume, job.on_step, log_every, runtime, every)
            held.callback(steps.close)  # a run stopped by another's failure closes its log
            stream = torch.cuda.Stream(device=runtime.device) if runtime.on_gpu and interleave else None
            running.append(_Running(str(out), steps, stream, _ProcessRandomness(runtime.device)))
        if interleave:
            active = list(running)
            while active:
                active = [r for r in active if r.step()]
        else:
            for r in running:
                while r.step():
                    pass
        if shared.on_gpu:
            torch.cuda.synchronize(shared.device)
    return [Path(j.out) for j in jobs]
