"""One optimisation step of a method: augment, forward, backward, AdamW, the EMA hook. The
training loop and ``benchmarks/bench_train.py`` run this same object, and
``comm.cuda_graph`` records it once and replays it.

    step = TrainStep(model, opt, runtime, augs, method_name)
    names, terms = step(xs, gen, lr)   # terms: (T,) loss terms, left on the device
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
from torch import Tensor
from torch.profiler import record_function

from comm_diag.comm.augment import Augment
from comm_diag.comm.run_folder import TrainingError
from comm_diag.comm.runtime import Runtime


def step_seed(run_seed: int, global_step: int, rank: int = 0) -> int:
    """The seed of every random draw of one training step (augmentations, a method's own
    views): a function of (run seed, step, process) alone, so a resumed run draws the same."""
    return run_seed * 7_919_993 + global_step + rank * 1_000_000_007


def method_terms(forward: Callable, xs, fns, method: str, where: str = "") -> dict[str, Tensor]:
    """The method's training step, its failures (an exception, a SystemExit, a result that
    is not a dict of scalar tensors with 'loss') as one TrainingError naming the method."""
    try:
        terms = forward(xs, fns)
    except KeyboardInterrupt:
        raise
    except (Exception, SystemExit) as e:  # a plugin's sys.exit() must not end the run as a success
        raise TrainingError(f"method {method}: step() raised {type(e).__name__}: {e} {where}".rstrip()) from None
    if not isinstance(terms, dict) or not isinstance(terms.get("loss"), Tensor):
        got = type(terms).__name__ if not isinstance(terms, dict) else f"a dict with keys {sorted(terms)}"
        raise TrainingError(f"method {method}: step() must return a dict of scalar tensors with 'loss', got {got} "
                            f"{where}".rstrip())
    bad = [k for k, v in terms.items() if not isinstance(v, Tensor) or v.numel() != 1]
    if bad:
        raise TrainingError(f"method {method}: step()[{bad[0]!r}] is not a scalar tensor {where}".rstrip())
    return terms


def _augment(aug: Augment, x: Tensor, gen: torch.Generator, apply) -> Tensor:
    with record_function("comm_diag.augment"):
        return aug(x, gen, apply)


class TrainStep:
    """``step(xs, gen, lr)``: one optimisation step of ``model`` on the batches ``xs`` (n x
    Bx3xHxW in [0, 1]) with every random draw from ``gen``; returns the names of the loss
    terms and their values stacked, (T,), on the device (nothing is read back).

    ``forward``: what computes the terms (``model.step``, or a DistributedDataParallel
    wrapper of the model); ``where`` in a failure names the epoch and step."""

    def __init__(self, model, opt: torch.optim.Optimizer, runtime: Runtime, augs: Sequence[Augment],
                 method: str, forward: Optional[Callable] = None):
        self.model, self.opt, self.runtime, self.augs, self.method = model, opt, runtime, list(augs), method
        self.forward = forward or model.step
        # each augmentation's pixel work, and the method's tail after its encoders (fusion, head),
        # compiled on the fast path on a GPU (Runtime.fuse; eager elsewhere)
        self.applies = [None if a.host_random else runtime.fuse(a.apply) for a in self.augs]
        tail = getattr(model, "loss_tail", None)
        fused_tail = runtime.fuse(tail) if tail is not None else None
        if fused_tail is not tail:
            model.compiled_tail = fused_tail
        self.names: Optional[list[str]] = None

    def set_lr(self, lr: float) -> None:
        for group in self.opt.param_groups:
            if isinstance(group["lr"], Tensor):
                group["lr"].fill_(lr)  # a capturable optimiser reads its rate from the device
            else:
                group["lr"] = lr

    def __call__(self, xs: Sequence[Tensor], gen: torch.Generator, lr: float, where: str = "") -> tuple[list[str], Tensor]:
        self.set_lr(lr)
        return self.run(xs, gen, where)

    def run(self, xs: Sequence[Tensor], gen: torch.Generator, where: str = "") -> tuple[list[str], Tensor]:
        """The step at the rate already set (what a CUDA graph records)."""
        fns = [lambda x, a=a, f=f: _augment(a, x, gen, f) for a, f in zip(self.augs, self.applies)]
        self.model.generator = gen  # a method's own extra views draw from it too (Method.generator)
        # named ranges: a profiler (benchmarks/device_parts.py) splits the step by phase
        with self.runtime.autocast(), record_function("comm_diag.forward"):
            out = method_terms(self.forward, xs, fns, self.method, where)
        terms = torch.stack([v.detach().float() for v in out.values()])  # (T,), stays on the device
        self.opt.zero_grad(set_to_none=True)
        with record_function("comm_diag.backward"):
            out["loss"].backward()
        with record_function("comm_diag.optimizer"):
            self.opt.step()
            with torch.no_grad():
                self.model.after_step()  # a momentum teacher's EMA step (Method.after_step)
        self.names = list(out)
        return self.names, terms
