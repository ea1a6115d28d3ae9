"""The parts version 3 of the device check adds (benchmarks/device_check.py runs them; each
also runs at the smoke preset on CPU in ``--tiny``, so none can rot before a GPU is at hand):

- ``profile``: one CoMM step split by phase (``torch.profiler`` over the step's named ranges:
  augment, forward, backward, optimizer), in the preset's precision and on the fast path;
- ``roofline``: the preset's encoder alone, trained on random images (forward, backward,
  AdamW) at the image count of a CoMM step: the rate this machine's convolutions allow, and
  CoMM's encoder work as a share of it (4 encoder images a pair: two views, two modalities);
- ``determinism``: 10 deterministic steps twice from one seed, weights compared bitwise;
- ``scheduler``: the real scheduler (``comm.together.train_together``, what a study uses)
  training K CoMM runs for one epoch on the preset's data, pairs/s from synchronised wall
  time, and the peak device memory;
- ``probes_by_phase``: one trained model's probes as a study runs them (every task and
  representation; the MLP on synergy), feature extraction and the fits timed apart.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from bench_train import Trainer, _sync

from comm_diag.comm.config import preset
from comm_diag.comm.encoders import build_encoder
from comm_diag.comm.runtime import Runtime

PHASES = ("comm_diag.augment", "comm_diag.forward", "comm_diag.backward", "comm_diag.optimizer")
ENCODER_IMAGES_PER_PAIR = 4  # CoMM: two views of each of two modalities through the encoders


def profile(runtime: Runtime, preset_name: str, steps: int = 3) -> dict:
    """Milliseconds a step spends in each phase (host and device), for the preset's precision
    and the fast path. The forward includes the augmentation (it runs inside the method)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    out = {}
    variants = {"preset": runtime, "fast": Runtime(runtime.device, "bf16", runtime.deterministic, fast=True)}
    for name, rt in variants.items():
        t = Trainer(preset_name, "comm", rt, graph=False)
        for i in range(3):  # warm-up (the fast path compiles here)
            t.step(i)
        _sync(rt)
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if rt.on_gpu else [])
        with torch_profile(activities=activities) as prof:
            for i in range(3, 3 + steps):
                t.step(i)
            _sync(rt)
        events = {e.key: e for e in prof.key_averages()}
        phases = {}
        for key in PHASES:
            e = events.get(key)
            if e is not None:
                device_us = getattr(e, "device_time_total", None) or getattr(e, "cuda_time_total", 0.0)
                phases[key.split(".")[1]] = {"host_ms": round(e.cpu_time_total / 1000 / steps, 2),
                                             "device_ms": round(device_us / 1000 / steps, 2)}
        kernels = sum(e.count for e in prof.key_averages()
                      if str(getattr(e, "device_type", "")).endswith("CUDA")) / steps
        out[name] = {"precision": rt.precision, "phases": phases, "kernels_per_step": round(kernels)}
    return out


def roofline(runtime: Runtime, preset_name: str, steps: int) -> dict:
    """Images/s of the preset's encoder trained alone at a CoMM step's image count."""
    cfg = preset(preset_name)
    encoder = build_encoder(cfg.encoder, cfg.image_size, cfg.width).to(runtime.device)
    opt = runtime.optimizer([{"params": list(encoder.parameters())}], cfg.lr, cfg.weight_decay)
    n = ENCODER_IMAGES_PER_PAIR * cfg.batch_size
    x = torch.rand(n, 3, cfg.image_size, cfg.image_size, device=runtime.device)

    def step() -> None:
        with runtime.autocast():
            loss = encoder(x).float().square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    for _ in range(3):
        step()
    _sync(runtime)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(runtime)
    rate = steps * n / (time.perf_counter() - t0)
    return {"encoder": cfg.encoder, "width": cfg.width, "image_size": cfg.image_size, "images_per_step": n,
            "precision": runtime.precision, "images_per_s": round(rate, 1)}


def determinism(runtime: Runtime, preset_name: str, steps: int = 10) -> dict:
    """The same 10 deterministic steps twice: are the weights equal to the bit?"""
    rt = Runtime(runtime.device, runtime.precision, deterministic=True).activate()
    weights = []
    for _ in range(2):
        t = Trainer(preset_name, "comm", rt, graph=rt.on_gpu, seed=0)
        for i in range(steps):
            t.step(i)
        _sync(rt)
        weights.append([p.detach().clone() for p in t.model.parameters()])
    same = all(torch.equal(a, b) for a, b in zip(*weights))
    worst = max(float((a - b).abs().max()) for a, b in zip(*weights))
    runtime.activate()  # the check's own settings back
    return {"steps": steps, "bitwise_equal": same, "max_abs_difference": worst, "graph": rt.on_gpu}


def scheduler(preset_name: str, data: Path, work: Path, ks: list[int], runtime: Runtime) -> dict:
    """K CoMM runs trained together by the study's scheduler for one epoch each."""
    import comm_diag.trifeature_gen as tg
    from comm_diag.comm.together import TrainJob, train_together

    ds = tg.load(data)
    out = []
    for k in ks:
        cfg = preset(preset_name).replace(method="comm", epochs=1)
        jobs = [TrainJob(cfg.replace(seed=s), ds, work / f"scheduler-k{k}" / f"run{s}") for s in range(k)]
        if runtime.on_gpu:
            torch.cuda.reset_peak_memory_stats(runtime.device)
        _sync(runtime)
        t0 = time.perf_counter()
        train_together(jobs)
        _sync(runtime)
        wall = time.perf_counter() - t0
        pairs = k * (ds.n_samples("train") // cfg.batch_size) * cfg.batch_size
        out.append({"k": k, "wall_s": round(wall, 1), "pairs_per_s": round(pairs / wall, 1),
                    "peak_memory_gib": round(torch.cuda.max_memory_allocated(runtime.device) / 2**30, 2)
                    if runtime.on_gpu else None,
                    "note": "one epoch each, setup (model build, first-step recording) included"})
    return {"runs": out}


def probes_by_phase(run: Path, data: Path) -> dict:
    """One trained run's probes as a study probes a synergy run, timed by phase."""
    import comm_diag.trifeature_gen as tg
    from comm_diag.comm.run_folder import load_run, read_config
    from comm_diag.comm.runtime import runtime_for
    from comm_diag.probes.measure.features import extract
    from comm_diag.probes.measure.suite import probe_model
    from comm_diag.probes.measure.tasks import tasks_after

    device = str(runtime_for(read_config(run)["train"]).device)
    model, _ = load_run(run, device=device)
    ds = tg.load(data)
    _sync(runtime_for({"device": device}))
    t0 = time.perf_counter()
    for pair_set in ("probe_train", "test"):
        extract(model, ds, pair_set)
    t_features = time.perf_counter() - t0
    timings = {}
    for name, probes, also in (("linear", ("linear",), ()), ("mlp", (), (("mlp", "synergy", "fused"),))):
        t0 = time.perf_counter()
        rows = probe_model(model, ds, probes=probes, tasks=tasks_after("synergy") if probes else None,
                           also=also) if probes else probe_model(model, ds, probes=(), also=also)
        timings[name] = {"seconds_with_features": round(time.perf_counter() - t0, 2), "rows": len(rows)}
    return {"run": run.name, "device": device, "features_s": round(t_features, 2), **timings,
            "fits_s": round(sum(v["seconds_with_features"] for v in timings.values()) - 2 * t_features, 2)}
