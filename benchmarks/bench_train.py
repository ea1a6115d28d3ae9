"""Training throughput: pairs/s per method, and the share of step time spent in the input
pipeline (batching: gather + uint8->float; augmentation), for the CPU preset and for
224 px AlexNet (the paper preset).

Run: python benchmarks/bench_train.py [--steps 10] [--presets cpu,paper] [--device auto] [--precision auto]
                                      [--compile] [--concurrent 1,3,6] [--json FILE]
Target: input pipeline <= 10% of step time on 2 cores.

``--concurrent K``: K runs training at once in K processes on the same device (a study's
runs sharing one GPU, batch 64 each): their summed pairs/s (timed without the per-stage
synchronisation that measuring the input pipeline's share needs).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import time

import numpy as np
import torch

from comm_diag.comm.config import preset
from comm_diag.comm.cuda_graph import GraphedStep, unsafe_reason
from comm_diag.comm.methods import build_method
from comm_diag.comm.runtime import Runtime, usable_cores
from comm_diag.comm.step import TrainStep, step_seed
from comm_diag.comm.optim import lr_at, param_groups
from comm_diag.comm.train import augmenters, compile_modules


def _sync(runtime: Runtime) -> None:
    if runtime.on_gpu:
        torch.cuda.synchronize(runtime.device)


class Trainer:
    """One run as ``train`` builds it (model, param groups, fused AdamW on a GPU, augmenters,
    ``TrainStep``; a CUDA graph when ``graph`` and the method allows it), on random uint8
    images: ``step(i)`` trains step i with train's seed derivation and learning rate."""

    def __init__(self, preset_name: str, method: str, runtime: Runtime, graph: bool = False, compile: bool = False,
                 seed: int = 0, channels_last: bool = False, **overrides):
        self.cfg = cfg = preset(preset_name).replace(method=method, seed=seed, **overrides)
        self.runtime = runtime
        torch.manual_seed(seed)
        self.model = model = build_method(cfg).to(runtime.device)
        self.layout = torch.channels_last if channels_last else torch.contiguous_format
        model.to(memory_format=self.layout)
        if compile:
            compile_modules(model)
        self.graph_asked = graph
        opt = runtime.optimizer(param_groups(model, cfg), cfg.lr, cfg.weight_decay,
                                capturable=graph and runtime.on_gpu)
        self.step_fn = TrainStep(model, opt, runtime, augmenters(model, cfg), method)
        n, s = 2400, cfg.image_size
        rng = np.random.default_rng(seed)
        self.images = torch.from_numpy(rng.integers(0, 256, (n, 3, s, s), dtype=np.uint8)).to(runtime.device)
        self.index = [torch.from_numpy(rng.integers(0, n, 10_000)).to(runtime.device) for _ in range(2)]
        self.graph = None
        self.why_eager = unsafe_reason(model, runtime, 1, self.step_fn.augs) if graph else "not asked"

    def batch(self, i: int) -> list[torch.Tensor]:
        b = self.cfg.batch_size
        idx = torch.arange(i * b, (i + 1) * b, device=self.runtime.device) % 10_000
        return [(self.images[ix[idx]].float() / 255.0).contiguous(memory_format=self.layout)
                for ix in self.index]  # n x Bx3xHxW

    def step(self, i: int) -> torch.Tensor:
        xs, seed, lr = self.batch(i), step_seed(self.cfg.seed, i), lr_at(self.cfg, i, 157)
        if self.graph_asked and self.why_eager is None and self.graph is None:
            self.graph = GraphedStep(self.step_fn, xs)
        if self.graph is not None:
            return self.graph(xs, seed, lr)[1]
        return self.step_fn(xs, self.runtime.generator(seed), lr)[1]


def bench(preset_name: str, method: str, steps: int, runtime: Runtime, graph: bool = False, compile: bool = False,
          stages: bool = True, channels_last: bool = False, **overrides) -> dict:
    """pairs/s of ``steps`` training steps (after 3 warm-up steps), timed around the whole
    loop (one synchronisation at each end); ``overrides``: run settings changed from the preset's. ``stages``: the input pipeline's share, timed
    apart (batching alone, augmentation alone, over as many batches), so the step itself
    is timed exactly as it trains."""
    t = Trainer(preset_name, method, runtime, graph, compile, channels_last=channels_last, **overrides)
    for i in range(3):
        t.step(i)
    _sync(runtime)
    t0 = time.perf_counter()
    for i in range(3, 3 + steps):
        terms = t.step(i)
    _sync(runtime)
    total = time.perf_counter() - t0
    out = {"pairs_per_s": steps * t.cfg.batch_size / total, "step_ms": 1000 * total / steps,
           "graph": t.graph is not None, "eager_because": None if t.graph is not None else t.why_eager,
           "loss_finite": bool(torch.isfinite(terms).all())}
    if stages:
        gen = runtime.generator(0)
        _sync(runtime)
        t0 = time.perf_counter()
        xs = [t.batch(i) for i in range(steps)]
        _sync(runtime)
        t_batch = time.perf_counter() - t0
        t0 = time.perf_counter()
        for x in xs:
            for a, xi in zip(t.step_fn.augs, x):
                a(xi, gen)
        _sync(runtime)
        out.update(batch_share=t_batch / total, aug_share=(time.perf_counter() - t0) / total)
    return out


def in_one_process(k: int, preset_name: str, method: str, steps: int, runtime: Runtime, graph: bool = True,
                   channels_last: bool = False) -> dict:
    """K runs (seeds 0..K-1) trained in this process, their steps interleaved, each on a CUDA
    stream of its own on a GPU: the summed pairs/s."""
    trainers = [Trainer(preset_name, method, runtime, graph, seed=s, channels_last=channels_last) for s in range(k)]
    streams = [torch.cuda.Stream(device=runtime.device) if runtime.on_gpu else None for _ in trainers]

    def round_(i: int) -> None:
        for t, st in zip(trainers, streams):
            with torch.cuda.stream(st) if st is not None else contextlib.nullcontext():
                t.step(i)

    for i in range(3):
        round_(i)
    _sync(runtime)
    t0 = time.perf_counter()
    for i in range(3, 3 + steps):
        round_(i)
    _sync(runtime)
    total = time.perf_counter() - t0
    return {"runs": k, "pairs_per_s": k * steps * trainers[0].cfg.batch_size / total,
            "graph": all(t.graph is not None for t in trainers)}


def _one_of_many(args: tuple) -> float:
    preset_name, method, steps, device, precision, graph, threads = args
    torch.set_num_threads(threads)
    runtime = Runtime.create(device, precision).activate()
    return bench(preset_name, method, steps, runtime, graph, stages=False)["pairs_per_s"]


def concurrent(k: int, preset_name: str, method: str, steps: int, runtime: Runtime, graph: bool = False) -> dict:
    """K processes training at once on the runtime's device: their summed and slowest pairs/s."""
    threads = max(1, usable_cores() // k) if not runtime.on_gpu else 1
    args = (preset_name, method, steps, str(runtime.device), runtime.precision, graph, threads)
    with mp.get_context("spawn").Pool(k) as pool:
        rates = pool.map(_one_of_many, [args] * k)
    return {"runs": k, "pairs_per_s": sum(rates), "slowest_run": min(rates)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--presets", default="cpu,paper")
    ap.add_argument("--methods", default="comm,cross,cross_self")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto", help="auto, bf16 or fp32 (as TrainConfig.precision)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model's modules (as train --compile)")
    ap.add_argument("--graph", action="store_true", help="replay the step as a CUDA graph (as train on a GPU)")
    ap.add_argument("--channels-last", action="store_true", help="channels-last memory for the model and batches")
    ap.add_argument("--concurrent", default="", help="comma list of K: also time K runs at once on the device")
    ap.add_argument("--in-process", default="", help="comma list of K: also time K runs in this process, "
                                                     "their steps interleaved on K CUDA streams")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args()
    runtime = Runtime.create(args.device, args.precision).activate()
    figures: dict = {"runtime": runtime.describe(), "single": [], "concurrent": []}
    print(f"runtime: {runtime.describe()}")
    print(f"{'preset':8} {'method':11} {'pairs/s':>9} {'step ms':>9} {'batching':>9} {'augment':>9} {'graph':>6}")
    for p in args.presets.split(","):
        for m in args.methods.split(","):
            r = bench(p, m, args.steps, runtime, args.graph, args.compile, channels_last=args.channels_last)
            figures["single"].append({"preset": p, "method": m, **r})
            print(f"{p:8} {m:11} {r['pairs_per_s']:9.1f} {r['step_ms']:9.1f} {100 * r['batch_share']:8.1f}% "
                  f"{100 * r['aug_share']:8.1f}% {str(r['graph']):>6}")
    for k in [int(k) for k in args.concurrent.split(",") if k]:
        for p in args.presets.split(","):
            for m in args.methods.split(","):
                r = concurrent(k, p, m, args.steps, runtime, args.graph)
                figures["concurrent"].append({"preset": p, "method": m, **r})
                print(f"{p:8} {m:11} {k} runs at once: {r['pairs_per_s']:9.1f} pairs/s in all, "
                      f"slowest run {r['slowest_run']:.1f}")
    for k in [int(k) for k in args.in_process.split(",") if k]:
        for p in args.presets.split(","):
            for m in args.methods.split(","):
                r = in_one_process(k, p, m, args.steps, runtime, args.graph, args.channels_last)
                figures["concurrent"].append({"preset": p, "method": m, "in_one_process": True, **r})
                print(f"{p:8} {m:11} {k} runs in this process: {r['pairs_per_s']:9.1f} pairs/s in all")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**figures, "steps": args.steps, "compile": args.compile, "graph": args.graph}, f, indent=2)


if __name__ == "__main__":
    main()
