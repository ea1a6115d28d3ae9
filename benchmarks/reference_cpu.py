"""The documented CPU results, regenerated: the default quickstart (CPU preset) for the given
seeds, timed, and the tables docs/results-cpu.md quotes, written with what produced them.

Run: python benchmarks/reference_cpu.py [--seeds 0] [--out DIR] [--every 0]
                                       [--write benchmarks/results/reference_cpu]

Writes WRITE.md (the verdict table: every readout's score with its 95% interval and
[control], each verdict; S recoverable; synergy from each modality alone; the wall time)
and WRITE.json (the same numbers, the package and torch versions, the CPU's model and its
vector flags, the precision the runs trained in, the command), so a figure in the docs can
be traced to a run of this script. The quickstart's own folder (OUT, a temporary one by
default) keeps the report, the runs and summary.csv.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

import comm_diag
from comm_diag import api
from comm_diag.comm.methods.registry import display_name
from comm_diag.comm.runtime import runtime_for

from comm_diag.probes.measure.verdict import RULE, with_interval

FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def cpu() -> dict:
    """The CPU's model name and which of FLAGS it has (Linux's /proc/cpuinfo)."""
    info = {"model": platform.processor() or platform.machine(), "flags": []}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        if line.startswith("model name") and info["model"] in ("", platform.machine(), platform.processor()):
            info["model"] = line.split(":", 1)[1].strip()
        if line.startswith("flags"):
            have = set(line.split(":", 1)[1].split())
            info["flags"] = [f for f in FLAGS if f in have]
            break
    return info


def tables(result: dict) -> tuple[list[str], dict]:
    """The markdown verdict table and its numbers, from a quickstart's result."""
    columns = result.columns()
    lines = ["| method | " + " | ".join(c.label for c in columns) + " | synergy from modality 1 / 2 alone |",
             "|---|" + "---|" * (len(columns) + 1)]
    numbers = {}
    for m in result["verdicts"]:
        levels, alone = result.levels(m), result.alone(m)
        cells = [f"{with_interval(levels[c.key].mean, levels[c.key].ci95)} [{levels[c.key].control:.1f}] "
                 f"{levels[c.key].verdict}" if c.key in levels else "–" for c in columns]
        single = " / ".join(f"{with_interval(alone[r].mean, alone[r].ci95)} {alone[r].verdict}" if r in alone else "–"
                            for r in ("modality1", "modality2"))
        lines.append(f"| {display_name(m)} | " + " | ".join(cells) + f" | {single} |")
        numbers[m] = {k: {"mean": v.mean, "ci95": v.ci95, "control": v.control, "line": v.threshold,
                          "verdict": v.verdict, "seeds": v.n_seeds} for k, v in levels.items()}
        numbers[m]["alone"] = {r: {"mean": v.mean, "ci95": v.ci95, "verdict": v.verdict} for r, v in alone.items()}
    return lines, numbers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--every", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="the quickstart's folder (default: a temporary one)")
    ap.add_argument("--write", type=Path, default=Path(__file__).resolve().parent / "results" / "reference_cpu")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="reference-") as tmp:
        out = args.out or Path(tmp) / "out"
        start = time.perf_counter()
        result = api.quickstart(out, seeds=args.seeds, every=args.every, progress="lines")
        wall = time.perf_counter() - start
        # as each run resolved it on this machine ("auto" is bf16 where the CPU has it natively)
        precision = sorted({runtime_for(json.loads(p.read_text())["train"]).precision
                            for p in Path(out, "runs").glob("*/config.json")})
    lines, numbers = tables(result)
    command = f"comm-diag quickstart --seeds {args.seeds}" + (f" --every {args.every}" if args.every else "")
    machine = cpu()
    record = {"package_version": comm_diag.__version__, "torch": torch.__version__, "cpu": machine,
              "cores": torch.get_num_threads(), "precision": precision, "command": command,
              "wall_s": round(wall, 1), "verdicts": numbers, "rule": RULE}
    head = [f"# `{command}` at comm-diag {comm_diag.__version__}", "",
            f"torch {torch.__version__}; {machine['model']} ({', '.join(machine['flags']) or 'no AVX2'}), "
            f"{torch.get_num_threads()} threads; trained in {', '.join(precision)}; {wall:.0f} s wall, data "
            f"generation and probes included. Linear probe on the fused representation (S recoverable: the MLP "
            f"probe), balanced accuracy % on the unbiased test pairs, ± the verdict's 95% interval, "
            f"[max(chance, random initialisation)], verdict. Written by benchmarks/reference_cpu.py.", ""]
    args.write.parent.mkdir(parents=True, exist_ok=True)
    args.write.with_suffix(".md").write_text("\n".join(head + lines) + "\n")
    args.write.with_suffix(".json").write_text(json.dumps(record, indent=2))
    print("\n".join(head + lines))
    print(f"wrote {args.write.with_suffix('.md')} and .json")


if __name__ == "__main__":
    main()
