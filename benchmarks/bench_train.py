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
import json
import multiprocessing as mp
import time

import numpy as np
import torch

from comm_diag.comm.config import preset
from comm_diag.comm.methods import build_method
from comm_diag.comm.runtime import autocast, resolve_device, resolve_precision, set_threads, usable_cores
from comm_diag.comm.train import augmenters, compile_modules


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench(preset_name: str, method: str, steps: int, device: torch.device, precision: str,
          compile: bool = False, stages: bool = True) -> dict:
    """``stages``: time the input pipeline's share (a device synchronisation around each stage)."""
    cfg = preset(preset_name).replace(method=method)
    torch.manual_seed(0)
    model = build_method(cfg).to(device)
    if compile:
        compile_modules(model)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    n, s, b = 2400, cfg.image_size, cfg.batch_size
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(0, 256, (n, 3, s, s), dtype=np.uint8)).to(device)
    i1, i2 = (torch.from_numpy(rng.integers(0, n, 10_000)).to(device) for _ in range(2))
    augs = augmenters(model, cfg)
    gen = torch.Generator(device=device).manual_seed(0)
    t_batch = t_aug = 0.0

    def timed_aug(a):
        if not stages:
            return lambda x: a(x, gen)

        def f(x):
            nonlocal t_aug
            _sync(device)
            t = time.perf_counter()
            y = a(x, gen)
            _sync(device)
            t_aug += time.perf_counter() - t
            return y
        return f

    fns = [timed_aug(a) for a in augs]
    total = 0.0
    for step in range(steps + 2):  # 2 warm-up steps
        if step == 2:
            t_batch = t_aug = total = 0.0
        _sync(device)
        t0 = time.perf_counter()
        idx = torch.randint(0, 10_000, (b,), device=device)
        xs = [images[i1[idx]].float() / 255.0, images[i2[idx]].float() / 255.0]
        if stages:
            _sync(device)
        t_batch += time.perf_counter() - t0
        with autocast(precision, device):
            loss = model.step(xs, fns)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _sync(device)
        total += time.perf_counter() - t0
    return {"pairs_per_s": steps * b / total, "step_ms": 1000 * total / steps,
            "batch_share": t_batch / total, "aug_share": t_aug / total}


def _one_of_many(args: tuple) -> float:
    preset_name, method, steps, device, precision, compile, threads = args
    torch.set_num_threads(threads)
    return bench(preset_name, method, steps, torch.device(device), precision, compile, stages=False)["pairs_per_s"]


def concurrent(k: int, preset_name: str, method: str, steps: int, device: torch.device, precision: str,
               compile: bool = False) -> dict:
    """K processes training at once on ``device``: their summed and slowest pairs/s."""
    threads = max(1, usable_cores() // k) if device.type == "cpu" else 1
    with mp.get_context("spawn").Pool(k) as pool:
        rates = pool.map(_one_of_many, [(preset_name, method, steps, str(device), precision, compile, threads)] * k)
    return {"runs": k, "pairs_per_s": sum(rates), "slowest_run": min(rates)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--presets", default="cpu,paper")
    ap.add_argument("--methods", default="comm,cross,cross_self")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto", help="auto, bf16 or fp32 (as TrainConfig.precision)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model's modules (as train --compile)")
    ap.add_argument("--concurrent", default="", help="comma list of K: also time K runs at once on the device")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args()
    figures: dict = {"device": None, "single": [], "concurrent": []}
    device = resolve_device(args.device)
    print(f"precision: {resolve_precision(args.precision, device)}")
    if device.type == "cpu":
        print(f"cpu threads: {set_threads()}")
    else:
        print(f"device: {torch.cuda.get_device_name(device)}")
    figures["device"] = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu x{usable_cores()}"
    print(f"{'preset':8} {'method':11} {'pairs/s':>9} {'step ms':>9} {'batching':>9} {'augment':>9} {'input total':>12}")
    for p in args.presets.split(","):
        for m in args.methods.split(","):
            r = bench(p, m, args.steps, device, args.precision, args.compile)
            figures["single"].append({"preset": p, "method": m, **r})
            print(f"{p:8} {m:11} {r['pairs_per_s']:9.1f} {r['step_ms']:9.1f} {100 * r['batch_share']:8.1f}% "
                  f"{100 * r['aug_share']:8.1f}% {100 * (r['batch_share'] + r['aug_share']):11.1f}%")
    for k in [int(k) for k in args.concurrent.split(",") if k]:
        for p in args.presets.split(","):
            for m in args.methods.split(","):
                r = concurrent(k, p, m, args.steps, device, args.precision, args.compile)
                figures["concurrent"].append({"preset": p, "method": m, **r})
                print(f"{p:8} {m:11} {k} runs at once: {r['pairs_per_s']:9.1f} pairs/s in all, "
                      f"slowest run {r['slowest_run']:.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({**figures, "steps": args.steps, "precision": resolve_precision(args.precision, device),
                       "compile": args.compile}, f, indent=2)


if __name__ == "__main__":
    main()
