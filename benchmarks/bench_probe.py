"""Probe cost: seconds per linear (and MLP) probe on the CPU preset's probe sets
(10,000 probe_train pairs, 4,096 test pairs, 128-d fused features of a CoMM at
initialisation), with one BLAS/OpenMP thread (what the probes use) and with all cores; with
--model, one model's whole probe set (every task x representation, the MLP on synergy) fitted
in this process and spread over worker processes, one per core (``probe_model(jobs=)``); with
--torch, one model's probe set on the torch backend (on the GPU when there is one): its
logistic fits batched (what ``probe_model`` does) against the same fits one problem at a time.

Run: python benchmarks/bench_probe.py [--data DIR] [--probe-pairs N] [--mlp] [--model] [--torch]
(without --data a 64 px dataset is rendered into a temporary folder, ~10 s)
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

import comm_diag.trifeature_gen as tg
from comm_diag.comm.config import preset
from comm_diag.comm.methods import build_method
from comm_diag.probes.measure.features import extract
from comm_diag.probes.measure.backends import TorchBackend
from comm_diag.probes.measure.classifiers import PROTOCOLS, probe_row, run_protocol
from comm_diag.probes.measure.tasks import task_labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="a 64 px dataset (default: render one)")
    ap.add_argument("--mlp", action="store_true", help="also time the MLP probe")
    ap.add_argument("--model", action="store_true", help="time one model's whole probe set, 1 process vs all cores")
    ap.add_argument("--torch", action="store_true", help="time one model's probe set on the torch backend, "
                                                         "batched vs one problem at a time")
    ap.add_argument("--probe-pairs", type=int, default=10_000, help="probe_train pairs of the rendered dataset")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ds = tg.load(args.data) if args.data else tg.load(tg.generate(
            tg.DatasetSpec(size=64, probe_pairs=args.probe_pairs), f"{tmp}/d"))
        torch.manual_seed(0)
        model = build_method(preset("cpu"))
        t = time.perf_counter()
        train_f, test_f = extract(model, ds, "probe_train"), extract(model, ds, "test")
        print(f"feature extraction (probe_train + test, every representation): {time.perf_counter() - t:.1f} s")
        ytr, yte = task_labels(ds, "probe_train"), task_labels(ds, "test")
        for name in ["linear"] + ["mlp"] * args.mlp:
            for task in ("redundancy", "uniqueness1", "synergy"):
                times = {}
                for threads in (1, None):  # the probes' one thread, and every core to compare
                    t = time.perf_counter()
                    s = run_protocol(PROTOCOLS[name]((train_f["fused"], test_f["fused"]), (ytr[task], yte[task]),
                                                     np.random.default_rng(0)), threads=threads)
                    times[threads] = time.perf_counter() - t
                print(f"{name:6s} {task:12s} one thread {times[1]:5.2f} s | all cores {times[None]:5.2f} s "
                      f"| balanced accuracy {s['balanced_accuracy']:.1f}")
        if args.model:
            from comm_diag.comm.runtime import core_share
            from comm_diag.probes.measure.suite import probe_model
            from comm_diag.probes.measure.tasks import task_names

            rows, took, n = {}, {}, core_share()
            for key, jobs in (("one process", 1), ("workers, cold", n), ("workers, warm", n)):
                t = time.perf_counter()  # cold: the worker processes start; warm: a study's next model
                rows[key] = probe_model(model, ds, tasks=task_names(), also=(("mlp", "synergy", "fused"),),
                                        backend="sklearn", jobs=jobs)
                took[key] = time.perf_counter() - t
            print(f"one model's {len(rows['one process'])} probes over {n} worker processes: "
                  + ", ".join(f"{k} {v:.1f} s" for k, v in took.items())
                  + f"; same rows: {all(r == rows['one process'] for r in rows.values())}")

        if args.torch:
            torch_batched_vs_alone(model, ds)


def torch_batched_vs_alone(model, ds) -> None:
    """One model's probes (every task x representation, the MLP on synergy) on the torch
    backend where the model is: batched (``probe_model``) and one problem at a time."""
    from comm_diag.probes.measure import suite
    from comm_diag.probes.measure.tasks import task_names

    model = model.to("cuda" if torch.cuda.is_available() else "cpu")
    also = (("mlp", "synergy", "fused"),)
    t = time.perf_counter()
    batched = suite.probe_model(model, ds, tasks=task_names(), also=also, backend="torch")
    took_batched = time.perf_counter() - t
    t = time.perf_counter()
    feats = {s: extract(model, ds, s) for s in ("probe_train", "test")}
    labels = {s: task_labels(ds, s) for s in ("probe_train", "test")}
    fitter = TorchBackend(model.device)
    alone = [probe_row(r["probe"], r["task"], r["representation"], 0,
                       (feats["probe_train"][r["representation"]], feats["test"][r["representation"]]),
                       (labels["probe_train"][r["task"]], labels["test"][r["task"]]), None, fitter) for r in batched]
    took_alone = time.perf_counter() - t
    gap = max(abs(a["balanced_accuracy"] - b["balanced_accuracy"]) for a, b in zip(batched, alone))
    print(f"torch backend on {model.device}, one model's {len(batched)} probes: batched {took_batched:.1f} s, "
          f"one problem at a time {took_alone:.1f} s; largest gap {gap:.2g} points")


if __name__ == "__main__":
    main()
