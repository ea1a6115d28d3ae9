"""The training step recorded once as a CUDA graph and replayed: one launch for the ~1,600
kernels of a CoMM step, so the host no longer sets the pace (0.4.0 measured ~30 us of
Python and dispatch per kernel, the same for methods whose GPU work differs threefold).

Everything CUDA-only of comm-diag is in this module, and small:

- the batch is copied into static input buffers, the rate into the optimiser's rate tensor
  (a capturable fused AdamW), and the step's generator reseeded, then the graph replays;
- the generator is registered with the graph, so a replay after ``manual_seed(s)`` draws
  what an eager step with a generator seeded ``s`` draws;
- recording needs warm-up steps (cuDNN's autotuner, the optimiser's state); they run on
  copies' behalf: ``preserved`` puts every weight, buffer and optimiser state back, so
  the run's weights are those of an eager run (the part tested on CPU).

A method opts in with ``graph_safe = True`` (its step reads no Python state that changes
between steps and never waits for the device); anything else, or a failed recording,
trains eagerly and says why in one line.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Optional, Sequence

import torch
from torch import Tensor

from comm_diag.comm.step import TrainStep

WARMUP_STEPS = 3


@contextlib.contextmanager
def preserved(model: torch.nn.Module, opt: torch.optim.Optimizer) -> Iterator[None]:
    """Whatever the block does to the model's parameters and buffers and to the optimiser's
    state, they hold their entry values again after it (copied in place: tensors keep
    their storage, which a recorded graph points at). State the optimiser creates inside
    the block (its first step) is reset to that of a fresh optimiser (zeros)."""
    tensors = list(model.parameters()) + list(model.buffers())
    saved = [t.detach().clone() for t in tensors]
    before = {id(v): v.detach().clone() for s in opt.state.values() for v in s.values() if isinstance(v, Tensor)}
    try:
        yield
    finally:
        with torch.no_grad():
            for t, s in zip(tensors, saved):
                t.copy_(s)
            for state in opt.state.values():
                for v in state.values():
                    if isinstance(v, Tensor):
                        v.copy_(before[id(v)]) if id(v) in before else v.zero_()


def unsafe_reason(model: torch.nn.Module, runtime, world: int, augs: Sequence = ()) -> Optional[str]:
    """Why the training step of ``model`` with the augmentations ``augs`` cannot be recorded
    on this runtime, or None (asked before the optimiser is made: a recorded step needs a
    capturable one)."""
    if not runtime.on_gpu:
        return "not on a GPU"
    if any(getattr(a, "host_random", False) for a in augs):
        return "its augmentation draws its parameters on the host (torchvision)"
    if world > 1:
        return "data-parallel training"
    if not getattr(model, "graph_safe", False):
        return f"the method {type(model).__name__} does not declare graph_safe = True"
    if not hasattr(torch.cuda.CUDAGraph, "register_generator_state"):
        return f"torch {torch.__version__} cannot register a generator with a CUDA graph"
    return None


class GraphedStep:
    """``GraphedStep(step, xs)(xs, seed, lr)``: ``step`` recorded on batches shaped like
    ``xs``, replayed with every draw from a generator seeded ``seed``; returns the names
    and a copy of the (T,) loss terms (the recorded output is overwritten by each replay)."""

    def __init__(self, step: TrainStep, xs: Sequence[Tensor]):
        self.step = step
        dev = step.runtime.device
        self.inputs = [x.clone() for x in xs]
        self.gen = torch.Generator(device=dev)
        self.graph = torch.cuda.CUDAGraph()
        self.graph.register_generator_state(self.gen)
        # a capture stream of its own: cuBLAS keeps a workspace per stream, and graphs recorded
        # on one shared stream would share it when replayed side by side on several streams
        self.stream = torch.cuda.Stream(device=dev)
        with preserved(step.model, step.opt):
            side = torch.cuda.Stream(device=dev)
            side.wait_stream(torch.cuda.current_stream(dev))
            with torch.cuda.stream(side):
                for i in range(WARMUP_STEPS):
                    self.gen.manual_seed(i)
                    step.run(self.inputs, self.gen)
            torch.cuda.current_stream(dev).wait_stream(side)
            step.opt.zero_grad(set_to_none=True)
            self.gen.manual_seed(0)
            with torch.cuda.graph(self.graph, stream=self.stream):
                self.names, self.terms = step.run(self.inputs, self.gen)

    def __call__(self, xs: Sequence[Tensor], seed: int, lr: float) -> tuple[list[str], Tensor]:
        for buf, x in zip(self.inputs, xs):
            buf.copy_(x)
        self.step.set_lr(lr)
        self.gen.manual_seed(seed)
        self.graph.replay()
        return self.names, self.terms.clone()
