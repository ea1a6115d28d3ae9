"""benchmarks/device_check.sh --tiny: the prepared GPU check runs end to end on CPU, so it cannot rot."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_device_check_runs_in_tiny_mode_and_records_every_part(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out)}
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "device_check.sh"), "--tiny", "--work",
                           str(tmp_path / "work")], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads((out / "device_check.json").read_text())
    assert record["mode"] == "tiny" and record["preset"] == "smoke"
    parts = record["parts"]
    single = {r["method"]: r for r in parts["throughput"]["single"]}
    assert set(single) == {"comm", "cross", "cross_self"} and all(r["pairs_per_s"] > 0 for r in single.values())
    assert 0 < single["comm"]["aug_share"] < 1
    assert parts["throughput"]["comm_sharing_the_device"][0]["runs"] == 2
    probes = parts["probes"]
    assert probes["torch"]["seconds"] > 0 and probes["torch"]["probes"] == probes["sklearn"]["probes"] > 0
    assert probes["torch"]["balanced_accuracy"].keys() == probes["sklearn"]["balanced_accuracy"].keys()
    fig = parts["figure4"]
    assert fig["exit_code"] == 0 and fig["epochs"] == 1
    tasks = {r["task"] for r in fig["summary"]}
    assert {"redundancy", "uniqueness1", "synergy"} <= tasks
    assert (out / "figure4" / "figure4.png").stat().st_size > 10_000 and (out / "figure4" / "report.md").is_file()
    assert not any(p.suffix == ".npy" for p in out.rglob("*"))  # no dataset comes back with the figures
