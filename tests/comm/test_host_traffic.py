"""A training step must not make the host wait for the device. On a GPU every read-back
(``.item()``, ``.tolist()``, ``.cpu()``) and every copy of host data to the device
(``torch.tensor(...)``, ``.to(device)`` of a constant) inside the step stalls the launch
queue; 0.4.0 did it about 20 times per CoMM step (colour constants in the augmentation,
modality masks in the fusion). Without a GPU the same calls are visible on the CPU: this
test runs each built-in method's step, augmentation and backward pass under a recorder of
such calls and requires none. (On a GPU, benchmarks/device_check.py runs a step under
``torch.cuda.set_sync_debug_mode("error")``.)"""

from __future__ import annotations

import pytest
import torch
from torch.overrides import TorchFunctionMode

from comm_diag.comm.augment import Augment
from comm_diag.comm.config import TrainConfig
from comm_diag.comm.methods import METHODS, build_method

SMALL = dict(image_size=32, d=32, heads=8, proj_hidden=32, proj_dim=16)
READ_BACK = {torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.cpu, torch.Tensor.numpy, torch.Tensor.__bool__,
             torch.Tensor.__float__, torch.Tensor.__int__}
FROM_HOST = {torch.tensor, torch.as_tensor, torch.from_numpy, torch.Tensor.cuda}


class HostTraffic(TorchFunctionMode):
    """Records read-backs, host-data creations and ``.to(<device>)`` moves, as the step makes them."""

    def __init__(self):
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in READ_BACK or func in FROM_HOST:
            self.calls.append(getattr(func, "__name__", str(func)))
        elif func in (torch.Tensor.to, torch.Tensor.copy_):
            moved = [a for a in (*args[1:], *kwargs.values()) if isinstance(a, (torch.device, str))
                     or (func is torch.Tensor.copy_ and isinstance(a, torch.Tensor) and a.device != args[0].device)]
            if moved:
                self.calls.append(f"{func.__name__}({moved[0]})")
        return func(*args, **kwargs)


def _batch(seed: int):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(8, 3, 32, 32, generator=g) for _ in range(2)]


@pytest.mark.parametrize("method", list(METHODS))
def test_a_training_step_neither_reads_back_nor_copies_host_data(method):
    torch.manual_seed(0)
    model = build_method(TrainConfig().replace(method=method, **SMALL))
    gen = torch.Generator().manual_seed(1)
    model.generator = gen  # as the training loop sets it
    augs = [lambda x: Augment("all")(x, gen)] * 2
    model.step(_batch(0), augs)["loss"].backward()  # first call: per-device constants and masks are made once
    model.zero_grad()
    xs = _batch(1)
    with HostTraffic() as seen:
        terms = model.step(xs, augs)
        torch.stack([v.detach().float() for v in terms.values()])  # what the loop keeps on the device
        terms["loss"].backward()
        with torch.no_grad():
            model.after_step()
    assert seen.calls == [], f"{method}: {seen.calls}"


def test_the_recorder_sees_what_0_4_made_a_step_wait_for():
    """The recorder is not blind: 0.4.0's colour constant copy and a loss read-back are seen."""
    luma = torch.tensor([0.299, 0.587, 0.114])
    with HostTraffic() as seen:
        x = torch.rand(2, 3, 4, 4)
        (x * luma.to(x.device).view(1, 3, 1, 1)).sum().item()
    assert seen.calls == ["to(cpu)", "item"]


@pytest.mark.parametrize("in_progress", [False, True], ids=["fresh-optimiser", "optimiser-with-state"])
def test_recording_warm_up_leaves_the_run_as_it_was(in_progress):
    """comm.cuda_graph warms the step up before recording it; ``preserved`` puts weights,
    BatchNorm statistics and AdamW's state back, so the next step is the one an eager run
    takes (same loss terms, same weights after it). The CUDA-only recording itself is run by
    benchmarks/device_check.py."""
    from comm_diag.comm.cuda_graph import preserved
    from comm_diag.comm.runtime import Runtime
    from comm_diag.comm.step import TrainStep
    from comm_diag.comm.optim import param_groups
    from comm_diag.comm.train import augmenters

    runtime = Runtime.create("cpu", "fp32")
    results = []
    for warm_up in (False, True):
        torch.manual_seed(0)
        cfg = TrainConfig().replace(method="comm", **SMALL)
        model = build_method(cfg)
        opt = runtime.optimizer(param_groups(model, cfg), 1e-3, 1e-4)
        step = TrainStep(model, opt, runtime, augmenters(model, cfg), "comm")
        if in_progress:  # a resumed run: the optimiser has state
            step(_batch(0), runtime.generator(5), 1e-3)
        if warm_up:
            with preserved(model, opt):
                for i in range(3):
                    step(_batch(10 + i), runtime.generator(i), 5e-3)
        _, terms = step(_batch(1), runtime.generator(6), 1e-3)
        results.append((terms, [p.detach().clone() for p in model.state_dict().values()]))
    (t0, w0), (t1, w1) = results
    assert torch.equal(t0, t1)
    assert all(torch.equal(a, b) for a, b in zip(w0, w1))
