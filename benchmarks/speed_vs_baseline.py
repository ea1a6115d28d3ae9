"""Training speed of this checkout against an earlier version, side by side on one machine,
and whether the two train the same weights.

Run: python benchmarks/speed_vs_baseline.py [--baseline 20473a3] [--methods comm,cross,cross_self]
                                            [--pairs 1920] [--epochs 2] [--rounds 3] [--threads 1]
                                            [--json benchmarks/results/speed_vs_040_<cpu>.json]

The baseline (a git worktree of ``--baseline``; by default 0.4.0's last commit, the version
the GPU issue measured) renders one small CPU-preset dataset, and both versions train on
that same folder, each in its own Python process, imported through a folder that maps
``comm_diag`` to its tree, with its own ``comm.train.train``: the real loop (batching,
augmentation, step, optimiser, per-epoch checkpoints), not a model in isolation. A newer
version reads an older one's dataset, so the weights compare the training alone (until
0.8 each version rendered its own data, and 0.7 changed the rain texture). pairs/s is the
last epoch's as the run's log.csv records it (the first epoch pays for warm-up); the
versions alternate round by round (baseline, new, baseline, new, ...) so that a drift of
the machine falls on both, and the medians over rounds are compared. ``weights`` is the
SHA-256 of the epoch-1 weights: equal digests mean bit-identical training.

``--threads 1`` is what each run of a quickstart gets (two one-thread worker processes on
two cores); ``--threads 2`` is one run alone on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "20473a3"  # the last commit of 0.4.0 (4 Dec 2026), before the GPU work (0.3.0's: 569ebed)

# the baseline renders the dataset both versions train on
RENDER = r"""
import sys
import comm_diag.trifeature_gen as tg
tg.generate(tg.DatasetSpec(size=64, train_pairs=int(sys.argv[2]), probe_pairs=64, test_pairs=64), sys.argv[1])
"""

# run inside each version's process: its own preset and training loop
CHILD = r"""
import csv, hashlib, json, sys
import torch
import comm_diag
from comm_diag.comm.config import preset
from comm_diag.comm.train import train

work, data, methods, epochs = sys.argv[1], sys.argv[2], sys.argv[3].split(","), int(sys.argv[4])
out = {"version": comm_diag.__version__}
for m in methods:
    run = train(preset("cpu").replace(method=m, epochs=epochs), data, f"{work}/{m}")
    rows = list(csv.DictReader(open(f"{run}/log.csv")))
    state = torch.load(f"{run}/checkpoints/epoch_001.pt", map_location="cpu", weights_only=True)["model"]
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode()); h.update(state[k].contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    out[m] = {"pairs_per_s": float(rows[-1]["pairs_per_s"]), "weights": h.hexdigest()[:16]}
print("RESULT " + json.dumps(out))
"""


def worktree(rev: str, where: Path) -> Path:
    """A detached worktree of ``rev`` (made once) and a folder that imports it as comm_diag."""
    tree = where / f"tree-{rev}"
    if not tree.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(tree), rev], check=True)
    return shim(tree, where / f"shim-{rev}")


def shim(tree: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "comm_diag"
    if not link.exists():
        link.symlink_to(tree, target_is_directory=True)
    return folder


def child(path: Path, threads: int, code: str, *args: str, cwd: str) -> str:
    """Run ``code`` in a fresh Python that imports ``comm_diag`` from ``path``; its stdout."""
    env = {**os.environ, "PYTHONPATH": str(path), "COMM_DIAG_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"a child failed under {path}:\n{done.stderr[-2000:]}")
    return done.stdout


def measure(path: Path, data: Path, methods: list[str], epochs: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="speed-") as work:
        out = child(path, threads, CHILD, work, str(data), ",".join(methods), str(epochs), cwd=work)
        line = next(x for x in out.splitlines() if x.startswith("RESULT "))
        return json.loads(line[len("RESULT "):])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline", default=BASELINE)
    ap.add_argument("--methods", default="comm,cross,cross_self")
    ap.add_argument("--pairs", type=int, default=1920, help="training pairs (30 steps of 64 an epoch)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    methods = args.methods.split(",")
    with tempfile.TemporaryDirectory(prefix="speed-trees-") as tmp:
        where = Path(tmp)
        versions = {"baseline": worktree(args.baseline, where), "new": shim(ROOT, where / "shim-new")}
        runs: dict[str, list[dict]] = {v: [] for v in versions}
        data = where / "data"
        try:
            child(versions["baseline"], args.threads, RENDER, str(data), str(args.pairs), cwd=tmp)
            for r in range(args.rounds):
                for name, path in versions.items():
                    runs[name].append(measure(path, data, methods, args.epochs, args.threads))
                    print(f"round {r + 1} {name}: " + ", ".join(f"{m} {runs[name][-1][m]['pairs_per_s']:.0f}"
                                                                for m in methods), flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(where / f"tree-{args.baseline}")], check=False)
    table = {}
    old_v, new_v = runs["baseline"][0]["version"], runs["new"][0]["version"]
    print(f"\n{'method':12} {old_v + ' pairs/s':>14} {new_v + ' pairs/s':>14} {'ratio':>6}  same weights")
    for m in methods:
        old = statistics.median(x[m]["pairs_per_s"] for x in runs["baseline"])
        new = statistics.median(x[m]["pairs_per_s"] for x in runs["new"])
        same = runs["baseline"][0][m]["weights"] == runs["new"][0][m]["weights"]
        table[m] = {"baseline_pairs_per_s": old, "new_pairs_per_s": new, "ratio": new / old,
                    "bit_identical_epoch1": same,
                    "rounds": {v: [x[m]["pairs_per_s"] for x in runs[v]] for v in runs}}
        print(f"{m:12} {old:14.0f} {new:14.0f} {new / old:6.2f}  {'yes' if same else 'no'}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"baseline": args.baseline, "versions": [old_v, new_v],
                                         "shared_data": True, "threads": args.threads, "pairs": args.pairs,
                                         "epochs": args.epochs, "rounds": args.rounds, "methods": table},
                                        indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
