"""The prepared device check, version 3: what only a GPU can measure, in one run of <= 9 minutes.

Run: python benchmarks/device_check.py --out DIR [--tiny] [--budget-s 480] [--study fidelity]
(or benchmarks/device_check.sh, which installs first and writes under $OUT)

Writes DIR/device_check.json, rewritten as each part ends (a check cut by its time limit
keeps what it measured), DIR/device_check.log, and DIR/figure4/ (report.md, summary.csv,
figure4.png, learning_curves.png): at most 8 files, one folder deep. Each part is guarded:
a part that fails records its error and the next one runs.

  0. gpu_paths, first, in seconds: the GPU-only paths once each. The torch probe backend on
     the device (0.4.0 crashed there), one training step under
     ``torch.cuda.set_sync_debug_mode("error")`` (a host wait inside the step is an error),
     and the CUDA-graph step against the eager step from the same weights (loss terms and
     weights after three steps);
  1. throughput: pairs/s of CoMM, Cross and Cross+Self at the paper preset (batch 64),
     eager, replayed as a CUDA graph, and on the fast path (bf16, graph, compiled augmentation);
  1b. profile, roofline, determinism (``benchmarks/device_parts.py``): one step by phase, the
     encoder's own training rate (CoMM's encoder work as a share of it), 10 deterministic
     steps twice compared bitwise;
  2. data: the paper preset's unbiased and synergy-biased datasets, timed;
  3. probes: seconds to probe one model as a synergy run is probed (every task and
     representation, the MLP on the fused one), torch backend on the device, and the
     balanced accuracies of scikit-learn on the host beside them when the budget allows;
  4. figure4: ``comm-diag quickstart --preset paper --methods comm --together 2`` on those
     datasets with the epochs that fit the remaining budget, probed every 5 epochs (learning curves);
     the epochs used are recorded (fewer than 100 is not the paper's budget);
  5. probes_by_phase: a trained synergy run of part 4 probed as a study does, by phase;
  6. scheduler: the study's scheduler (``train_together``) training K = 2 and 6 CoMM runs for
     one epoch, pairs/s from synchronised wall time, peak memory.
``--tiny``: the same steps at the smoke preset on CPU in about a minute (the test suite
runs it, so that the check cannot rot before a GPU is at hand).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_train import Trainer, bench  # noqa: E402
from device_fidelity import fidelity_data, fidelity_epochs, fidelity_study  # noqa: E402
from device_parts import ENCODER_IMAGES_PER_PAIR, determinism, probes_by_phase, profile, roofline, scheduler  # noqa

from comm_diag.comm.config import preset, preset_data  # noqa: E402
from comm_diag.trifeature_gen import DatasetSpec  # noqa: E402
from comm_diag.comm.methods import build_method  # noqa: E402
from comm_diag.comm.config import DEFAULT_METHODS  # noqa: E402
from comm_diag.comm.runtime import Runtime, usable_cores  # noqa: E402
from comm_diag.probes.studies import quickstart as quickstart_study  # noqa: E402
from comm_diag.probes.measure import logistic_fit  # noqa: E402
from comm_diag.probes.measure.backends import SklearnBackend, TorchBackend  # noqa: E402
from comm_diag.probes.measure.suite import probe_model  # noqa: E402
from comm_diag.probes.hooks import Hooks
from comm_diag.probes.studies.sweep import preset_datasets  # noqa: E402
from comm_diag.probes.measure.tasks import task_names  # noqa: E402

PAPER_EPOCHS = preset("paper").epochs
PROBE_S_GUESS = 30.0  # seconds to probe one model, before it is measured (0.5: 25 s on an H200)
FIGURE_FILES = ("report.md", "summary.csv", "figure4.png", "learning_curves.png")


class Record:
    """device_check.json, rewritten (whole, by a rename) after every part and at the deadline;
    every line printed also goes to the log."""

    def __init__(self, out: Path, **head):
        self.path, self.data = out / "device_check.json", {**head, "parts": {}}
        self.log = open(out / "device_check.log", "a")
        self.lock = threading.RLock()
        self.current: Optional[str] = None  # the part in progress
        self.save()

    def say(self, text: str) -> None:
        print(text, flush=True)
        with self.lock:
            self.log.write(text + "\n")
            self.log.flush()

    def part(self, name: str, fn, *args) -> dict:
        t = time.perf_counter()
        self.current = name
        self.say(f"--- {name}")
        try:
            value = fn(*args)
        except Exception as e:  # a broken part is a finding, not the end of the check
            value = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-3000:]}
        value = {**value, "part_s": round(time.perf_counter() - t, 1)}
        self.data["parts"][name] = value
        self.save()
        self.say(json.dumps({k: v for k, v in value.items() if k != "traceback"}, indent=1)[:4000])
        return value

    def save(self) -> None:
        with self.lock:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.data, indent=2))
            tmp.replace(self.path)  # never half a file, even when the deadline cuts a part

    def deadline(self, seconds: float, t0: float, on_deadline: list) -> threading.Thread:
        """A watchdog: ``seconds`` after ``t0`` it records which part the deadline cut, runs
        ``on_deadline``'s callables (copies of what the study has so far), saves the record
        and ends the process with status 3, whatever the main thread is doing."""
        def watch() -> None:
            time.sleep(max(0.0, seconds - (time.perf_counter() - t0)))
            with self.lock:
                self.data["deadline"] = {"after_s": round(time.perf_counter() - t0, 1), "cut_part": self.current,
                                         "deadline_s": seconds}
                for fn in on_deadline:
                    try:
                        fn()
                    except Exception as e:  # what could be copied was; the record says what could not
                        self.data["deadline"]["copy_error"] = f"{type(e).__name__}: {e}"
                self.save()
                self.say(f"deadline: {seconds:g} s reached during {self.current}; the record keeps what was measured")
            os._exit(3)
        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        return thread


def gpu_paths(runtime: Runtime, preset_name: str) -> dict:
    out = {}
    # the torch probe backend where the run is (0.4.0: a CPU-built MLP drawn with a CUDA generator)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 32)).astype(np.float32)
    y = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).astype(int) + 2 * (x[:, 2] > 0)
    be = TorchBackend(runtime.device)
    t = time.perf_counter()
    mlp = be.mlp(x, y, 64, seed=0)
    out["mlp_fit_s"] = round(time.perf_counter() - t, 2)
    out["mlp_train_accuracy"] = round(float((mlp.predict(x) == y).mean()), 3)
    xt, yt = torch.tensor(x, device=runtime.device), torch.tensor(y, device=runtime.device)
    t = time.perf_counter()
    w, b = logistic_fit.fit_logistic(xt, yt, 4, [0.1, 1.0, 10.0])
    out["logistic_fit_s"] = round(time.perf_counter() - t, 2)
    w, b = w.requires_grad_(), b.requires_grad_()
    logistic_fit.logistic_objective(w, b, xt.double(), yt, logistic_fit.class_weights(yt, 4),
                                 torch.tensor([0.1, 1.0, 10.0], dtype=torch.float64, device=runtime.device)).backward()
    out["logistic_max_gradient"] = float(max(w.grad.abs().max(), b.grad.abs().max()))
    if not runtime.on_gpu:
        return out
    # a host wait inside an eager training step is an error here
    t = Trainer(preset_name, "comm", runtime, graph=False)
    t.step(0)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        t.step(1)
        out["eager_step_host_syncs"] = "none"
    except RuntimeError as e:
        out["eager_step_host_syncs"] = str(e).splitlines()[0][:300]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    # the recorded step computes what the eager step computes
    for method in ("comm", "cross_self"):
        runs = {}
        for graph in (False, True):
            tr = Trainer(preset_name, method, runtime, graph=graph, seed=0)
            terms = [tr.step(i) for i in range(3)]
            runs[graph] = (torch.stack(terms), [p.detach().clone() for p in tr.model.parameters()])
        (te, we), (tg_, wg) = runs[False], runs[True]
        out[f"graph_vs_eager_{method}"] = {
            "graph_used": tr.graph is not None, "eager_because": tr.why_eager,
            "max_abs_loss_difference": float((te - tg_).abs().max()),
            "max_rel_weight_difference": max(float((a - c).norm() / a.norm().clamp(min=1e-12)) for a, c in zip(we, wg))}
    return out


def throughput(runtime: Runtime, preset_name: str, steps: int) -> dict:
    single = []
    for method in DEFAULT_METHODS:  # the methods of Figure 4
        for graph in ((False, True) if runtime.on_gpu else (False,)):
            single.append({"method": method, **bench(preset_name, method, steps, runtime, graph=graph,
                                                     stages=not graph)})
    if runtime.on_gpu:  # the fast path beside the preset's precision: bf16, graph, compiled augmentation
        fast = Runtime(runtime.device, "bf16", fast=True)
        for method in DEFAULT_METHODS:
            single.append({"method": method, "fast": True, **bench(preset_name, method, steps, fast, graph=True,
                                                                   stages=False)})
    # the fidelity study's torchvision variant trains image by image on the host: its own rate, 5 steps
    single.append({"method": "comm", "aug": "torchvision",
                   **bench(preset_name, "comm", min(steps, 5), runtime, stages=False, aug1="torchvision",
                           aug2="torchvision")})
    return {"preset": preset_name, "precision": runtime.precision, "steps": steps, "single": single}


def data(preset_name: str, root: Path) -> dict:
    t = time.perf_counter()
    ds = preset_datasets(root / "datasets", preset_name, Hooks())
    return {"seconds": round(time.perf_counter() - t, 1), "folders": {k: str(d.root) for k, d in ds.items()},
            "probe_pairs": ds["synergy"].n_samples("probe_train"), "test_pairs": ds["synergy"].n_samples("test")}


def probe_time(runtime: Runtime, preset_name: str, synergy: Path, with_sklearn: bool) -> dict:
    """One synergy run's probes on its initialisation (their cost does not depend on training):
    the torch backend on the device (its logistic fits batched), and scikit-learn on the
    host with its fits over every host core (worker processes, their start included)."""
    import comm_diag.trifeature_gen as tg
    from comm_diag.probes.measure.fit_workers import workers_released

    ds = tg.load(synergy)
    torch.manual_seed(0)
    model = build_method(preset(preset_name).replace(method="comm")).to(runtime.device)
    out = {}
    for backend in ("torch", "sklearn") if with_sklearn else ("torch",):
        t = time.perf_counter()
        with workers_released():
            rows = probe_model(model, ds, tasks=task_names(), also=(("mlp", "synergy", "fused"),), backend=backend,
                               jobs=None if backend == "sklearn" else 1)
        out[backend] = {"seconds": round(time.perf_counter() - t, 1), "probes": len(rows),
                        **({"host_cores": usable_cores()} if backend == "sklearn" else {}),
                        "balanced_accuracy": {f"{r['probe']}/{r['task']}/{r['representation']}":
                                              round(r["balanced_accuracy"], 2) for r in rows}}
    if with_sklearn:
        gaps = {k: abs(out["torch"]["balanced_accuracy"][k] - v) for k, v in out["sklearn"]["balanced_accuracy"].items()}
        out["largest_gap_points"] = round(max(gaps.values()), 2)
        out["largest_gap_linear"] = round(max(v for k, v in gaps.items() if k.startswith("linear/")), 2)
        default = SklearnBackend()
        out["sklearn_is"] = (f"scikit-learn's newton-cg to the stated optimum (tol {default.tol:g} on max |gradient|, "
                             f"at most {default.max_iter} iterations) over the host's cores: the same optimum as the "
                             "torch backend's, so a gap above 0.5 points is a disagreement (0.9)")
    return out


def figure4(preset_name: str, root: Path, out: Path, seconds_left: float, epoch_s: float, probe_s: float,
            tiny: bool) -> dict:
    """CoMM unbiased and biased, trained together in this process (``comm.together``: their
    steps interleaved on two CUDA streams on a GPU, in turn on CPU), with the epochs that fit
    in ``seconds_left`` (each probed point costs ``probe_s`` per run)."""
    every = 1 if tiny else 5
    per_epoch = epoch_s + probe_s / every
    epochs = 1 if tiny else int(max(1, min(PAPER_EPOCHS, (0.85 * seconds_left - 2 * probe_s) // max(per_epoch, 1e-9))))
    folder = root / "figure4"
    t = time.perf_counter()
    data = [root / "datasets" / "data" / kind for kind in ("unbiased", "synergy")]  # made by the data part
    result = quickstart_study.quickstart(folder, methods=["comm"], preset=preset_name, seeds=[0], epochs=epochs,
                                   every=every, data=data, workers=1, together=2, progress="lines")
    wall = time.perf_counter() - t
    summary = list(csv.DictReader(open(folder / "summary.csv"))) if (folder / "summary.csv").is_file() else []
    dest = out / "figure4"
    dest.mkdir(exist_ok=True)
    for name in FIGURE_FILES:
        if (folder / name).is_file():
            shutil.copyfile(folder / name, dest / name)
    curves = folder / "runs"
    by_epoch = [r for p in sorted(curves.rglob("probes_by_epoch.csv")) for r in csv.DictReader(open(p))
                if r["probe"] == "linear" and r["representation"] == "fused"]
    rates = {}  # each run's pairs/s over its last epoch, as its log records it (the two runs share the device)
    for log in sorted(curves.glob("*/log.csv")):
        rows = list(csv.DictReader(open(log)))
        last = [float(r["pairs_per_s"]) for r in rows if rows and r["epoch"] == rows[-1]["epoch"]]
        rates[log.parent.name] = round(last[-1], 1) if last else None
    return {"epochs": epochs, "every": every, "paper_epochs": PAPER_EPOCHS, "wall_s": round(wall, 1),
            "train_pairs_per_s": rates, "train_pairs_per_s_together": round(sum(v or 0 for v in rates.values()), 1),
            "verdicts": {m: {k: str(v) for k, v in vs.items()} for m, vs in result.get("verdicts", {}).items()},
            "summary": summary, "curve": by_epoch}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path, help="where the figures go (created)")
    ap.add_argument("--tiny", action="store_true", help="smoke preset on CPU, about a minute")
    ap.add_argument("--budget-s", type=float, default=480.0, help="wall seconds for the whole check")
    ap.add_argument("--work", type=Path, help="scratch folder for datasets and runs [default: a new temporary one]")
    ap.add_argument("--deadline-s", type=float, help="hard limit: the record is written and the check ends "
                    "(status 3) at this many seconds [default: the budget + 60]")
    ap.add_argument("--study", choices=("figure4", "fidelity"), default="figure4",
                    help="what the training part runs: Figure 4 (CoMM) or the fidelity study (docs/fidelity.md)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="comm-diag-device-check-"))
    work.mkdir(parents=True, exist_ok=True)
    name = "smoke" if args.tiny else "paper"
    runtime = Runtime.create("cpu" if args.tiny else "auto", preset(name).precision).activate()
    record = Record(args.out, mode="tiny" if args.tiny else "full", preset=name, runtime=runtime.describe(),
                    torch=torch.__version__, python=platform.python_version(), host_cores=usable_cores(),
                    budget_s=args.budget_s)
    if not runtime.on_gpu and not args.tiny:
        record.say("warning: no GPU here; the check measures this CPU at the paper preset")
    left = lambda: args.budget_s - (time.perf_counter() - t0)  # noqa: E731
    on_deadline: list[Callable] = []
    record.deadline(args.deadline_s or args.budget_s + 60, t0, on_deadline)
    record.part("gpu_paths", gpu_paths, runtime, name)
    steps = 2 if args.tiny else 30
    tp = record.part("throughput", throughput, runtime, name, steps)
    single = tp.get("single", [])
    comm = [r for r in single if r["method"] == "comm" and "fast" not in r and "aug" not in r]
    record.part("profile", profile, runtime, name, 2 if args.tiny else 3)
    roof = record.part("roofline", roofline, runtime, name, steps)
    if "images_per_s" in roof and comm:  # CoMM's encoder work as a share of what the encoder alone reaches
        best = max(r["pairs_per_s"] for r in comm)
        record.data["encoder_share_of_roofline"] = round(best * ENCODER_IMAGES_PER_PAIR / roof["images_per_s"], 3)
        record.save()
    record.part("determinism", determinism, runtime, name, 3 if args.tiny else 10)
    # two runs trained together go at least as fast, in all, as the fastest single run
    rate = max((r["pairs_per_s"] for r in comm), default=100.0)
    every = 1 if args.tiny else 5
    if args.study == "fidelity":
        # priced before the data (the study's folder records its epochs) with a probe time
        # guessed from 0.5's (25 s a model on an H200); the measured one is recorded beside it
        rates = {"preset": rate, "authors_renderer": rate,
                 "fast": next((r["pairs_per_s"] for r in single if r.get("fast") and r["method"] == "comm"), rate),
                 "torchvision_aug": next((r["pairs_per_s"] for r in single if r.get("aug")), rate)}
        pairs = DatasetSpec(**preset_data(name)).train_pairs
        epochs = 1 if args.tiny else fidelity_epochs(rates, pairs, PROBE_S_GUESS, every, 0.8 * left() - 60)
        record.data["fidelity_plan"] = {"rates_pairs_per_s": rates, "epochs": epochs, "every": every,
                                        "probe_s_guess": PROBE_S_GUESS}
        made = record.part("data", fidelity_data, name, work, epochs, every)
        synergy = work / "fidelity" / "data" / "synergy"
    else:
        made = record.part("data", data, name, work)
        synergy = work / "datasets" / "data" / "synergy"
    if "error" in made:
        return
    pt = record.part("probes", probe_time, runtime, name, synergy, args.tiny or left() > 300)
    probe_s = pt.get("torch", {}).get("seconds", 30.0)
    if args.study == "fidelity":
        record.part("fidelity", fidelity_study, name, work, args.out, epochs, every, on_deadline)
    else:
        epoch_s = made["probe_pairs"] / (rate / 2)  # train pairs = probe pairs in the presets
        record.part("figure4", figure4, name, work, args.out, left() - (0 if args.tiny else 30), epoch_s, probe_s,
                    args.tiny)
    trained = sorted((work / "figure4" / "runs").glob("*synergy*")) if args.study == "figure4" else []
    if trained:
        record.part("probes_by_phase", probes_by_phase, trained[0], synergy)
    record.part("scheduler", scheduler, name, work / "datasets" / "data" / "unbiased" if args.study == "figure4"
                else work / "fidelity" / "data" / "unbiased", work, [2] if args.tiny else [2, 6], runtime)
    record.data["wall_s"] = round(time.perf_counter() - t0, 1)
    record.save()
    record.say(f"done in {record.data['wall_s']} s")


if __name__ == "__main__":
    main()
