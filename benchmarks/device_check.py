"""The prepared device check: what only a GPU can measure, in one run of a few minutes.

Run: python benchmarks/device_check.py --out DIR [--tiny] [--budget-s 480]
(or benchmarks/device_check.sh, which installs first and writes under $OUT)

Writes DIR/device_check.json, filled in as each part ends (an interrupted check keeps
what it measured):
  1. throughput: pairs/s of CoMM, Cross and Cross+Self at the paper preset (one run,
     batch 64, with the input pipeline's share), and of K CoMM runs sharing the device;
  2. probes: seconds to probe one run the way a study probes a synergy run (every task,
     every representation, the MLP probe on the fused one), torch backend on the device
     and scikit-learn on the host, with their balanced accuracies side by side;
  3. Figure 4: `comm-diag quickstart --preset paper --methods comm` (unbiased and
     synergy-biased runs at once), with as many epochs as the remaining budget allows
     (the epochs used are recorded: fewer than the preset's 100 is not the paper's budget);
     its report is in DIR/figure4.
``--tiny``: the same steps at the smoke preset on CPU in about a minute (the test suite
runs it, so that the check cannot rot before a GPU is at hand).
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_train import bench, concurrent  # noqa: E402

import comm_diag.trifeature_gen as tg  # noqa: E402
from comm_diag.comm.config import preset, preset_data  # noqa: E402
from comm_diag.comm.methods import build_method  # noqa: E402
from comm_diag.comm.runtime import resolve_device, usable_cores  # noqa: E402
from comm_diag.probes.suite import probe_model  # noqa: E402
from comm_diag.probes.tasks import TASKS  # noqa: E402

PAPER_EPOCHS = preset("paper").epochs


class Record:
    """device_check.json, rewritten after every part."""

    def __init__(self, path: Path, **head):
        self.path, self.data = path, {**head, "parts": {}}
        self.save()

    def part(self, name: str, value) -> None:
        self.data["parts"][name] = value
        self.save()

    def save(self) -> None:
        self.path.write_text(json.dumps(self.data, indent=2))


def throughput(preset_name: str, device: torch.device, steps: int, ks: list[int]) -> dict:
    single = [{"method": m, **bench(preset_name, m, steps, device, "auto")} for m in ("comm", "cross", "cross_self")]
    shared = [concurrent(k, preset_name, "comm", steps, device, "auto") for k in ks]
    return {"preset": preset_name, "steps": steps, "single": single, "comm_sharing_the_device": shared}


def probe_time(preset_name: str, device: torch.device, root: Path) -> dict:
    """One synergy run's probes on its initialisation (the probes' cost does not depend on training)."""
    spec = tg.DatasetSpec(**{**preset_data(preset_name), "synergy": True})
    t = time.perf_counter()
    ds = tg.load(tg.generate(spec, root / "probe-data"))
    generated = time.perf_counter() - t
    torch.manual_seed(0)
    model = build_method(preset(preset_name).replace(method="comm")).to(device)
    out = {"data_generation_s": round(generated, 1), "probe_pairs": ds.n_samples("probe_train"),
           "test_pairs": ds.n_samples("test")}
    for backend in ("torch", "sklearn"):
        t = time.perf_counter()
        rows = probe_model(model, ds, tasks=TASKS, also=(("mlp", "synergy", "fused"),), backend=backend)
        out[backend] = {"seconds": round(time.perf_counter() - t, 1), "probes": len(rows),
                        "balanced_accuracy": {f"{r['probe']}/{r['task']}/{r['representation']}":
                                              round(r["balanced_accuracy"], 2) for r in rows}}
    gaps = [abs(out["torch"]["balanced_accuracy"][k] - v) for k, v in out["sklearn"]["balanced_accuracy"].items()]
    out["largest_gap_points"] = round(max(gaps), 2)
    return out


def figure4(preset_name: str, root: Path, out: Path, seconds_left: float, epoch_s: float, tiny: bool) -> dict:
    """CoMM unbiased and biased at once, with the epochs that fit in ``seconds_left`` (its
    data generation and probes already taken out)."""
    epochs = 1 if tiny else int(max(1, min(PAPER_EPOCHS, 0.85 * seconds_left // max(epoch_s, 1e-9))))
    cmd = ["comm-diag", "quickstart", "--preset", preset_name, "--methods", "comm", "--seeds", "0",
           "--epochs", str(epochs), "--workers", "2", "--out", str(root / "figure4")]
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    (out / "figure4.log").write_text(done.stdout + done.stderr)
    result = {"command": " ".join(cmd), "epochs": epochs, "paper_epochs": PAPER_EPOCHS, "wall_s": round(wall, 1),
              "exit_code": done.returncode}
    report = root / "figure4" / "quickstart.json"
    if report.is_file():
        result["quickstart"] = json.loads(report.read_text())
        summary = root / "figure4" / "summary.csv"
        if summary.is_file():  # Figure 4's numbers, in the record itself
            result["summary"] = list(csv.DictReader(summary.open()))
        dest = out / "figure4"
        dest.mkdir(exist_ok=True)
        for name in ("report.md", "summary.csv", "figure4.png", "quickstart.json"):
            if (root / "figure4" / name).is_file():
                (dest / name).write_bytes((root / "figure4" / name).read_bytes())
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path, help="where the figures go (created)")
    ap.add_argument("--tiny", action="store_true", help="smoke preset on CPU, about a minute")
    ap.add_argument("--budget-s", type=float, default=480.0, help="wall seconds for the whole check")
    ap.add_argument("--work", type=Path, help="scratch folder for datasets and runs [default: a new temporary one]")
    args = ap.parse_args()
    t0 = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="comm-diag-device-check-"))
    work.mkdir(parents=True, exist_ok=True)
    device = torch.device("cpu") if args.tiny else resolve_device("auto")
    name = "smoke" if args.tiny else "paper"
    record = Record(args.out / "device_check.json", mode="tiny" if args.tiny else "full", preset=name,
                    device=torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu x{usable_cores()}",
                    torch=torch.__version__, python=platform.python_version(), budget_s=args.budget_s)
    if device.type != "cuda" and not args.tiny:
        print("warning: no GPU here; the check measures this CPU at the paper preset", file=sys.stderr)
    steps = 2 if args.tiny else 30
    tp = throughput(name, device, steps, [2] if args.tiny else [2, 4, 6])
    record.part("throughput", tp)
    print(json.dumps(tp, indent=1))
    pt = probe_time(name, device, work)
    record.part("probes", pt)
    print(json.dumps({k: v for k, v in pt.items() if k not in ("torch", "sklearn")}, indent=1),
          {b: pt[b]["seconds"] for b in ("torch", "sklearn")})
    two = next(r for r in tp["comm_sharing_the_device"] if r["runs"] == 2)
    n_train = tg.DatasetSpec(**preset_data(name)).train_pairs
    # the quickstart generates two datasets and probes two runs (twice each: init and last) besides training
    fixed = 2 * pt["data_generation_s"] + 2 * pt["torch"]["seconds"]
    left = args.budget_s - (time.perf_counter() - t0) - fixed
    fig = figure4(name, work, args.out, left, n_train / two["slowest_run"], args.tiny)
    record.part("figure4", fig)
    print(json.dumps(fig, indent=1))
    record.data["wall_s"] = round(time.perf_counter() - t0, 1)
    record.save()


if __name__ == "__main__":
    main()
