"""Probe time and probe numbers of this checkout against an earlier version, side by side on
the same trained runs, probed as a study probes them (CPU preset).

Run: python benchmarks/probe_vs_baseline.py [--baseline c1c7227] [--runs UNBIASED_RUN SYNERGY_RUN]
                                            [--rounds 2] [--json benchmarks/results/probe_vs_080_<cpu>.json]

Without --runs, this checkout renders the CPU preset's two datasets (64 px, 10,000 probe
pairs) and trains CoMM one epoch on each (about two minutes on 2 cores). Each version then
probes copies of the same two runs in its own Python process (imported through a folder
that maps ``comm_diag`` to its tree, ``speed_vs_baseline.worktree``), with its own defaults
and the study's probe set: after unbiased training R, U1, U2 on the fused representation;
after synergy-biased training the synergy label on every representation and the MLP probe on
the fused one; each at the last epoch and at initialisation. The versions alternate round by
round and the medians are compared. The rows are compared too: how far each number moved.
By default the baseline is 0.8.0's last commit, whose CPU default was scikit-learn's lbfgs
stopped at 100 iterations.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from pathlib import Path

from speed_vs_baseline import ROOT, child, shim, worktree

BASELINE = "c1c7227"  # 0.8.0's last commit

PREPARE = r"""
import sys
import comm_diag.trifeature_gen as tg
from comm_diag.comm.config import preset
from comm_diag.comm.train import train
where = sys.argv[1]
for kind in ("unbiased", "synergy"):
    spec = tg.DatasetSpec(size=64, synergy=kind == "synergy")
    tg.generate(spec, f"{where}/data-{kind}")
    train(preset("cpu").replace(epochs=1), f"{where}/data-{kind}", f"{where}/run-{kind}")
"""

CHILD = r"""
import json, shutil, sys, time
import comm_diag
from comm_diag.probes.measure.suite import probe_run
from comm_diag.probes.measure.tasks import tasks_after
from comm_diag.probes.studies.sweep import ALSO_OF, REPRESENTATIONS_OF
work, runs = sys.argv[1], json.loads(sys.argv[2])
out = {"version": comm_diag.__version__, "seconds": {}, "rows": []}
for kind, run in runs.items():
    copy = shutil.copytree(run, f"{work}/{kind}")
    t = time.perf_counter()
    rows = probe_run(copy, tasks=tasks_after(kind), representations=REPRESENTATIONS_OF[kind], also=ALSO_OF[kind])
    out["seconds"][kind] = time.perf_counter() - t
    out["rows"] += [{"kind": kind, **{k: r[k] for k in ("method", "task", "probe", "representation",
                                                         "balanced_accuracy", "bits")}} for r in rows]
print("RESULT " + json.dumps(out))
"""


def measure(path: Path, runs: dict[str, str], threads: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="probe-") as work:
        out = child(path, threads, CHILD, work, json.dumps(runs), cwd=work)
        line = next(x for x in out.splitlines() if x.startswith("RESULT "))
        return json.loads(line[len("RESULT "):])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline", default=BASELINE)
    ap.add_argument("--runs", nargs=2, metavar=("UNBIASED_RUN", "SYNERGY_RUN"), default=None)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="the process's threads (a probe command's: every core)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="probe-trees-") as tmp:
        where = Path(tmp)
        versions = {"baseline": worktree(args.baseline, where), "new": shim(ROOT, where / "shim-new")}
        if args.runs is None:
            child(versions["new"], args.threads, PREPARE, str(where), cwd=tmp)
            runs = {"unbiased": str(where / "run-unbiased"), "synergy": str(where / "run-synergy")}
        else:
            runs = {"unbiased": str(Path(args.runs[0]).resolve()), "synergy": str(Path(args.runs[1]).resolve())}
        results: dict[str, list[dict]] = {v: [] for v in versions}
        try:
            for r in range(args.rounds):
                for name, path in versions.items():
                    results[name].append(measure(path, runs, args.threads))
                    s = results[name][-1]["seconds"]
                    print(f"round {r + 1} {name}: " + ", ".join(f"{k} {v:.1f} s" for k, v in s.items())
                          + f", total {sum(s.values()):.1f} s", flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(where / f"tree-{args.baseline}")], check=False)
    old_v, new_v = results["baseline"][0]["version"], results["new"][0]["version"]
    total = {v: statistics.median(sum(x["seconds"].values()) for x in results[v]) for v in results}
    key = lambda r: (r["kind"], r["method"], r["task"], r["probe"], r["representation"])  # noqa: E731
    old_rows = {key(r): r for r in results["baseline"][0]["rows"]}
    moved = []
    for r in results["new"][0]["rows"]:
        o = old_rows.get(key(r))
        if o is not None:
            moved.append({**{k: r[k] for k in ("kind", "method", "task", "probe", "representation")},
                          "baseline": o["balanced_accuracy"], "new": r["balanced_accuracy"],
                          "moved": r["balanced_accuracy"] - o["balanced_accuracy"],
                          "bits_baseline": o["bits"], "bits_new": r["bits"]})
    print(f"\nprobe time (median of {args.rounds} rounds, both runs): {old_v} {total['baseline']:.1f} s, "
          f"{new_v} {total['new']:.1f} s, ratio {total['new'] / total['baseline']:.2f}")
    print(f"\n{'row':58} {old_v:>7} {new_v:>7} {'moved':>6}  bits {old_v} -> {new_v}")
    for m in moved:
        name = f"{m['kind']} {m['method']} {m['task']} {m['probe']} {m['representation']}"
        print(f"{name:58} {m['baseline']:7.2f} {m['new']:7.2f} {m['moved']:+6.2f}  "
              f"{m['bits_baseline']:.3f} -> {m['bits_new']:.3f}")
    largest = max((abs(m["moved"]) for m in moved), default=0.0)
    print(f"largest move: {largest:.2f} points over {len(moved)} rows")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"baseline": args.baseline, "versions": [old_v, new_v],
                                         "threads": args.threads, "rounds": args.rounds,
                                         "seconds": {v: [x["seconds"] for x in results[v]] for v in results},
                                         "median_total_s": total, "ratio": total["new"] / total["baseline"],
                                         "rows": moved, "largest_move": largest}, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
