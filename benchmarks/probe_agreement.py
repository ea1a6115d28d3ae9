"""How closely the torch probe backend agrees with scikit-learn's on a trained run.

Run: python benchmarks/probe_agreement.py [--method comm] [--epochs 2] [--train-pairs 1920]
                                          [--probe-pairs 4000] [--seeds 30] [--json FILE]

A run is trained at the CPU preset (64 px, on a synergy dataset rendered into a temporary
folder), its features extracted in float64, then:
- the linear probe on every task x representation, with scikit-learn run to the stated
  optimum (0.9: newton-cg to max |gradient| <= 1e-8; 0.8: lbfgs, tol 1e-8, 5,000
  iterations) and with the torch backend (0.9: float64 Newton-CG to the same rule; 0.8:
  damped Newton to 1e-9): balanced accuracy, bits and the chosen C of each, and the gap;
- the MLP probe on synergy x fused over ``--seeds`` probe seeds with each backend (the
  MLP's fit is random: initialisation, shuffles, the 10% early-stopping split; its linear
  candidate is fitted by the converged reference too): the mean, the standard deviation
  across seeds, how often the MLP was chosen over the linear candidate, the gap of the
  means and its standard error.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

import comm_diag
import comm_diag.trifeature_gen as tg
from comm_diag.comm.config import preset
from comm_diag.comm.run_folder import load_run
from comm_diag.comm.train import train
from comm_diag.probes.measure.backends import TorchBackend
from comm_diag.probes.measure.classifiers import PROBES
from comm_diag.probes.measure.features import extract
from comm_diag.probes.measure.host_fit import CONVERGED as REFERENCE
from comm_diag.probes.measure.tasks import task_labels


def features(method: str, epochs: int, train_pairs: int, probe_pairs: int, tmp: str):
    spec = tg.DatasetSpec(size=64, train_pairs=train_pairs, probe_pairs=probe_pairs, synergy=True)
    ds = tg.load(tg.generate(spec, f"{tmp}/data"))
    model, _ = load_run(train(preset("cpu").replace(method=method, epochs=epochs), ds.root, f"{tmp}/run"))
    as64 = lambda f: {k: v.astype(np.float64) for k, v in f.items()}  # noqa: E731
    return (as64(extract(model, ds, "probe_train")), as64(extract(model, ds, "test")),
            task_labels(ds, "probe_train"), task_labels(ds, "test"))


def linear_gaps(tr, te, ytr, yte) -> list[dict]:
    rows = []
    for task in ytr:
        for rep in tr:
            row = {"task": task, "representation": rep}
            for name, backend in (("sklearn", REFERENCE), ("torch", TorchBackend())):
                t = time.perf_counter()
                s = PROBES["linear"]((tr[rep], te[rep]), (ytr[task], yte[task]), np.random.default_rng([0, 1]),
                                     backend=backend)
                row[name] = {"balanced_accuracy": s["balanced_accuracy"], "bits": s["bits"], "C": s["C"],
                             "seconds": time.perf_counter() - t}
            row["gap_points"] = abs(row["sklearn"]["balanced_accuracy"] - row["torch"]["balanced_accuracy"])
            print(f"linear {task:12s} {rep:10s} scikit-learn {row['sklearn']['balanced_accuracy']:6.2f} "
                  f"(C {row['sklearn']['C']:g})  torch {row['torch']['balanced_accuracy']:6.2f} "
                  f"(C {row['torch']['C']:g})  gap {row['gap_points']:.3f}", flush=True)
            rows.append(row)
    return rows


def mlp_gap(tr, te, ytr, yte, seeds: int) -> dict:
    out = {}
    # the MLP probe also fits its linear candidate: scikit-learn's is the converged reference too
    for name, backend in (("sklearn", REFERENCE), ("torch", TorchBackend())):
        t = time.perf_counter()
        rows = [PROBES["mlp"]((tr["fused"], te["fused"]), (ytr["synergy"], yte["synergy"]), np.random.default_rng(s),
                              backend=backend) for s in range(seeds)]
        scores = np.array([r["balanced_accuracy"] for r in rows])
        out[name] = {"mean": scores.mean(), "sd": scores.std(ddof=1), "scores": scores.tolist(),
                     "chose_mlp": sum(r["chosen"] == "mlp" for r in rows), "seconds": time.perf_counter() - t}
    out["gap_of_means"] = abs(out["sklearn"]["mean"] - out["torch"]["mean"])
    out["standard_error_of_gap"] = float(np.hypot(out["sklearn"]["sd"], out["torch"]["sd"]) / np.sqrt(seeds))
    print(f"mlp synergy fused over {seeds} seeds: scikit-learn {out['sklearn']['mean']:.2f} "
          f"(s.d. {out['sklearn']['sd']:.2f}, the MLP chosen {out['sklearn']['chose_mlp']} times)  "
          f"torch {out['torch']['mean']:.2f} (s.d. {out['torch']['sd']:.2f}, {out['torch']['chose_mlp']} times)  "
          f"gap {out['gap_of_means']:.2f} +- {out['standard_error_of_gap']:.2f} (standard error)", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="comm")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--train-pairs", type=int, default=1920)
    ap.add_argument("--probe-pairs", type=int, default=4000)
    ap.add_argument("--seeds", type=int, default=30, help="probe seeds of each backend's MLP probe")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="agreement-") as tmp:
        tr, te, ytr, yte = features(args.method, args.epochs, args.train_pairs, args.probe_pairs, tmp)
    linear = linear_gaps(tr, te, ytr, yte)
    print(f"largest linear gap: {max(r['gap_points'] for r in linear):.3f} points over {len(linear)} "
          f"task x representation pairs", flush=True)
    mlp = mlp_gap(tr, te, ytr, yte, args.seeds)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"version": comm_diag.__version__, "config": vars(args) | {"json": None},
                                         "linear": linear, "mlp": mlp}, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
