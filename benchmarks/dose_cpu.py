"""The dose-response curves at the default preset: synergy for CoMM, Cross and Cross+Self, redundancy
for CoMM and Cross, one seed, five levels (``comm-diag ablate dose``, twice).

Prints each study's readings and wall time, and writes the curves of both into one figure and
one JSON file (``--results``, default benchmarks/results/dose_cpu.{png,json}). The study
folders (``--out``) keep every run: rerunning resumes and skips what is done.

    python benchmarks/dose_cpu.py --out /tmp/comm-diag-dose
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import comm_diag.trifeature_gen as tg
from comm_diag.probes.studies.ablation import run_study
from comm_diag.probes.studies.dose import DOSE_LEVELS, dose_figure, readings
from comm_diag.probes.hooks import Hooks

STUDIES = {"synergy": ("comm", "cross", "cross_self"), "redundancy": ("comm", "cross")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("comm-diag-dose"), help="study folders (resumable)")
    ap.add_argument("--results", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--levels", default=",".join(f"{x:g}" for x in DOSE_LEVELS))
    ap.add_argument("--interactions", default="synergy,redundancy")
    ap.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    args = ap.parse_args()
    t_start = time.perf_counter()

    def stage(msg: str) -> None:
        print(f"{time.perf_counter() - t_start:7.0f}s {msg}", flush=True)

    table, times = [], {}
    for name in args.interactions.split(","):
        t0 = time.perf_counter()
        result = run_study("dose", args.out / name, interactions=[name], levels=args.levels,
                           methods=list(STUDIES[name]), preset=args.preset, epochs=args.epochs,
                           hooks=Hooks(on_stage=stage))
        times[name] = time.perf_counter() - t0
        table += result["outputs"]["dose"]
        print(f"\n{name}: {times[name]:.0f} s wall")
        for line in result["outputs"]["readings"]:
            print("  " + line)
        for text, ok in result["expectations"]:
            print(f"  expectation {'held' if ok else 'did NOT hold' if ok is False else 'not measured'}: {text}")
    args.results.mkdir(parents=True, exist_ok=True)
    stem = f"dose_{args.preset}"
    dose_figure(table, args.results / f"{stem}.png")
    (args.results / f"{stem}.json").write_text(json.dumps({
        "package_version": tg.__version__, "preset": args.preset, "epochs": args.epochs, "levels": args.levels,
        "methods": {k: list(v) for k, v in STUDIES.items()}, "cpu_threads": os.cpu_count(),
        "wall_s": times, "rows": table, "readings": readings(table)}, indent=2))
    print(f"\nwrote {args.results / stem}.png and .json; total {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
