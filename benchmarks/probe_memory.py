"""The linear probe solver's memory model against the measured peak, on CPU.

Run: python benchmarks/probe_memory.py [--json benchmarks/results/probe_memory_<cpu>.json]

For each shape (N samples, D features, Q outputs, K values of C, G problems in one batch)
a fresh Python process builds the problems, records its peak resident memory (the kernel's
``ru_maxrss``, which counts every allocator's pages), solves them with
``logistic_fit.solve_logistic_many``, and records the peak again; the difference is the
solve's peak, set beside ``G * logistic_fit.batch_bytes(N, D, Q, K)``, the number the torch
backend splits its batches by. (glibc keeps freed pages, so the first peak is taken after
the inputs exist and a warm-up solve of a small problem has loaded the kernels.)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

SHAPES = [  # (N, D, Q, K, G): the CPU preset's probes, a batch of them, and Cross's 1,024-d fused representation
    (4000, 128, 10, 3, 1), (10000, 128, 10, 1, 1), (4000, 128, 10, 3, 3), (10000, 128, 1, 3, 4),
    (4000, 1024, 10, 3, 1), (10000, 1024, 10, 1, 1),
]

CHILD = r"""
import json, resource, sys
import torch
from comm_diag.probes.measure import logistic_fit as lf
n, d, q, k, g = map(int, sys.argv[1:6])
torch.set_num_threads(2)
gen = torch.Generator().manual_seed(0)
classes = 2 if q == 1 else q
small = lf.LogisticProblem(torch.randn(200, 8, generator=gen), torch.arange(200) % classes, classes, (1.0,))
lf.solve_logistic_many([small])
problems = []
for i in range(g):
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    w = torch.randn(d, classes, generator=gen, dtype=torch.float64)
    y = (x @ w + 2 * torch.randn(n, classes, generator=gen, dtype=torch.float64)).argmax(1)
    problems.append(lf.LogisticProblem(x, y, classes, tuple(10.0 ** (j - 1) for j in range(k))))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
lf.solve_logistic_many(problems)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print("RESULT " + json.dumps({"measured": after - before, "model": g * lf.batch_bytes(n, d, q, k)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    rows = []
    print(f"{'N':>6} {'D':>5} {'Q':>3} {'K':>2} {'G':>2} {'measured MB':>12} {'model MB':>9} {'model/measured':>15}")
    for shape in SHAPES:
        done = subprocess.run([sys.executable, "-c", CHILD, *map(str, shape)], capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(done.stderr[-2000:])
        r = json.loads(next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))[7:])
        rows.append({"shape": dict(zip("NDQKG", shape)), **r})
        print(f"{shape[0]:6d} {shape[1]:5d} {shape[2]:3d} {shape[3]:2d} {shape[4]:2d} {r['measured'] / 2**20:12.1f} "
              f"{r['model'] / 2**20:9.1f} {r['model'] / max(r['measured'], 1):15.2f}", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
