"""How long ``comm-diag --help`` (and a command's ``--help``) takes, in a fresh process each
time: wall seconds (median of 5) and the peak resident memory. Target (#52): under 2 s.

Run: python benchmarks/bench_help.py
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import time

CODE = "from comm_diag.cli import app\ntry:\n    app({argv!r})\nexcept SystemExit:\n    pass\n"


def once(argv: list[str]) -> tuple[float, float]:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", CODE.format(argv=argv)], capture_output=True, check=True)
    wall = time.perf_counter() - t
    return wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # MB, the largest child so far


def main() -> None:
    for argv in (["--help"], ["train", "--help"], ["check", "--help"], ["ablate", "--help"]):
        runs = [once(argv) for _ in range(5)]
        print(f"comm-diag {' '.join(argv):16s} median {statistics.median(w for w, _ in runs):.2f} s, "
              f"peak memory of any run so far {max(m for _, m in runs):.0f} MB")


if __name__ == "__main__":
    main()
