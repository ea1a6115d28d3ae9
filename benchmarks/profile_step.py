"""Where a training step's time goes, per method at a preset: batching, augmentation,
the encoders' forward, the rest of the forward (fusion, heads, loss), backward, optimiser.

Run: python benchmarks/profile_step.py [--preset cpu] [--methods comm,cross,cross_self]
                                       [--threads 1] [--steps 20] [--precision auto] [--ops 0] [--layers]

Times are wall clock around each part of the same step ``comm.train`` runs (perf_counter;
on a GPU the parts would need a synchronisation each, so this is a CPU tool).
``--ops N`` also prints the N ops of torch.profiler with the most self time (its per-op
overhead inflates small elementwise ops: read their share from the parts above).
``--threads 1`` is what each run of a quickstart gets on two cores.
``--layers`` also prints every convolution of the preset's encoder (one batch, as one of a
step's encoder passes): its multiply-adds, forward and backward milliseconds and the
GFLOP/s they reach, to read against the core's peak (how far a faster kernel could go).
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import numpy as np
import torch

from comm_diag.comm.config import preset
from comm_diag.comm.encoders import build_encoder
from comm_diag.comm.methods import build_method
from comm_diag.comm.runtime import autocast
from comm_diag.comm.train import augmenters

PARTS = ("batching", "augmentation", "encoders forward", "rest of forward", "backward", "optimiser")


def profile(preset_name: str, method: str, steps: int, precision: str, ops: int = 0) -> dict[str, float]:
    """Mean milliseconds per step of each of PARTS (and "step", their sum)."""
    cfg = preset(preset_name).replace(method=method)
    torch.manual_seed(0)
    model = build_method(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    cpu = torch.device("cpu")
    n, s, b = 2400, cfg.image_size, cfg.batch_size
    images = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (n, 3, s, s), dtype=np.uint8))
    gen = torch.Generator().manual_seed(0)
    spent: dict[str, float] = defaultdict(float)
    started: list[float] = []

    def timed(aug):
        def run(x):
            t = time.perf_counter()
            y = aug(x, gen)
            spent["augmentation"] += time.perf_counter() - t
            return y
        return run

    fns = [timed(a) for a in augmenters(model, cfg)]
    for enc in model.encoders:  # every built-in method keeps its encoders in .encoders
        enc.register_forward_pre_hook(lambda *_: started.append(time.perf_counter()))
        enc.register_forward_hook(lambda *_: spent.__setitem__(
            "encoders forward", spent["encoders forward"] + time.perf_counter() - started.pop()))

    def step():
        t0 = time.perf_counter()
        idx = torch.randint(0, n, (b,))
        xs = [images[idx].float() / 255.0, images[idx.flip(0)].float() / 255.0]  # as comm.train batches
        t1 = time.perf_counter()
        with autocast(precision, cpu):
            loss = model.step(xs, fns)["loss"]
        t2 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t3 = time.perf_counter()
        opt.step()
        t4 = time.perf_counter()
        spent["batching"] += t1 - t0
        spent["forward"] += t2 - t1
        spent["backward"] += t3 - t2
        spent["optimiser"] += t4 - t3

    for _ in range(3):  # warm-up: oneDNN picks its kernels, the allocator fills
        step()
    spent.clear()
    for _ in range(steps):
        step()
    ms = {k: v / steps * 1000 for k, v in spent.items()}
    ms["rest of forward"] = ms.pop("forward") - ms["augmentation"] - ms["encoders forward"]
    ms["step"] = sum(ms[p] for p in PARTS)
    if ops:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            for _ in range(5):
                step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=ops))
    return ms


def conv_layers(preset_name: str, precision: str, reps: int = 7) -> list[dict]:
    """Per convolution of the preset's encoder on one batch: shapes, multiply-adds, and the
    median forward / backward ms over ``reps`` calls. Every input but the image needs its
    gradient (as in training), so a backward computes grad-input and grad-weight."""
    cfg = preset(preset_name)
    torch.manual_seed(0)
    body = build_encoder(cfg.encoder, cfg.image_size, cfg.width).body
    cpu = torch.device("cpu")
    h = torch.rand(cfg.batch_size, 3, cfg.image_size, cfg.image_size).contiguous(memory_format=torch.channels_last)
    rows = []
    for i, layer in enumerate(body):
        x = h if i == 0 else h.detach().requires_grad_(True)
        if isinstance(layer, torch.nn.Conv2d):
            fwd, bwd = [], []
            for _ in range(reps):
                t0 = time.perf_counter()
                with autocast(precision, cpu):
                    y = layer(x)
                t1 = time.perf_counter()
                y.backward(torch.ones_like(y))
                fwd.append(t1 - t0)
                bwd.append(time.perf_counter() - t1)
            kh, kw = layer.kernel_size
            macs = y.numel() * layer.in_channels // layer.groups * kh * kw
            grads = 1 if i == 0 else 2  # grad-weight only for the image's convolution
            f, b = float(np.median(fwd)), float(np.median(bwd))
            rows.append({"layer": i, "in": tuple(x.shape), "out": tuple(y.shape), "mmacs": macs / 1e6,
                         "fwd_ms": 1000 * f, "bwd_ms": 1000 * b,
                         "fwd_gflops": 2 * macs / f / 1e9, "bwd_gflops": 2 * grads * macs / b / 1e9})
        with torch.no_grad():
            h = layer(x.detach())
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--methods", default="comm,cross,cross_self")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--ops", type=int, default=0)
    ap.add_argument("--layers", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"preset {args.preset}, {args.threads} thread(s), ms per step of {preset(args.preset).batch_size} pairs")
    print(f"{'method':12} {'step':>7} " + " ".join(f"{p:>17}" for p in PARTS))
    for m in args.methods.split(","):
        ms = profile(args.preset, m, args.steps, args.precision, args.ops)
        print(f"{m:12} {ms['step']:7.1f} " + " ".join(f"{ms[p]:8.1f} ({ms[p] / ms['step']:4.0%})" for p in PARTS))
    if args.layers:
        cfg = preset(args.preset)
        print(f"\n{cfg.encoder} width {cfg.width} at {cfg.image_size} px, batch {cfg.batch_size}, "
              f"precision {args.precision}: one encoder pass, per convolution")
        print(f"{'layer':>5} {'input':>18} {'output':>18} {'MMAC':>7} {'fwd ms':>7} {'bwd ms':>7} "
              f"{'fwd GFLOP/s':>12} {'bwd GFLOP/s':>12}")
        rows = conv_layers(args.preset, args.precision)
        for r in rows:
            print(f"{r['layer']:5d} {str(r['in']):>18} {str(r['out']):>18} {r['mmacs']:7.0f} {r['fwd_ms']:7.1f} "
                  f"{r['bwd_ms']:7.1f} {r['fwd_gflops']:12.1f} {r['bwd_gflops']:12.1f}")
        f, b = sum(r["fwd_ms"] for r in rows), sum(r["bwd_ms"] for r in rows)
        print(f"{'all':>5} {'':>18} {'':>18} {sum(r['mmacs'] for r in rows):7.0f} {f:7.1f} {b:7.1f}")


if __name__ == "__main__":
    main()
