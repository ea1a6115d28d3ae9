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
    assert not any("error" in p for p in parts.values()), {k: p.get("error") for k, p in parts.items()}
    paths = parts["gpu_paths"]  # the torch probe backend on the device of the check (CPU here)
    assert paths["mlp_train_accuracy"] > 0.9 and paths["logistic_max_gradient"] < 1e-8
    single = {r["method"]: r for r in parts["throughput"]["single"] if "aug" not in r}
    # the fidelity study's torchvision variant, timed on its own (it trains image by image on the host)
    tv = [r for r in parts["throughput"]["single"] if r.get("aug") == "torchvision"]
    assert len(tv) == 1 and tv[0]["pairs_per_s"] > 0 and tv[0]["loss_finite"]
    assert set(single) == {"comm", "cross", "cross_self"} and all(r["pairs_per_s"] > 0 for r in single.values())
    assert 0 < single["comm"]["aug_share"] < 1 and single["comm"]["eager_because"] == "not asked"
    # v3: the step by phase, the encoder's own rate, determinism, probes by phase, the real scheduler
    for variant in ("preset", "fast"):
        phases = parts["profile"][variant]["phases"]
        assert {"augment", "forward", "backward", "optimizer"} <= set(phases), phases
        assert all(v["host_ms"] > 0 for v in phases.values())
    assert parts["profile"]["fast"]["precision"] == "bf16"
    assert parts["roofline"]["images_per_s"] > 0 and record["encoder_share_of_roofline"] > 0
    assert parts["determinism"]["bitwise_equal"] is True  # on CPU a deterministic rerun is bitwise
    by_phase = parts["probes_by_phase"]
    assert by_phase["features_s"] > 0 and by_phase["linear"]["rows"] > 0 and by_phase["mlp"]["rows"] > 0
    scheduled = parts["scheduler"]["runs"]
    assert [r["k"] for r in scheduled] == [2] and scheduled[0]["pairs_per_s"] > 0
    assert parts["data"]["probe_pairs"] > 0
    probes = parts["probes"]
    assert probes["torch"]["seconds"] > 0 and probes["torch"]["probes"] == probes["sklearn"]["probes"] > 0
    assert probes["torch"]["balanced_accuracy"].keys() == probes["sklearn"]["balanced_accuracy"].keys()
    fig = parts["figure4"]
    assert fig["epochs"] == 1 and {int(r["epoch"]) for r in fig["curve"]} == {0, 1}
    # the two runs trained together (comm.together), each with its own log
    assert len(fig["train_pairs_per_s"]) == 2 and all(v > 0 for v in fig["train_pairs_per_s"].values())
    tasks = {r["task"] for r in fig["summary"]}
    assert {"redundancy", "uniqueness1", "synergy"} <= tasks
    assert (out / "figure4" / "figure4.png").stat().st_size > 10_000 and (out / "figure4" / "report.md").is_file()
    assert not any(p.suffix == ".npy" for p in out.rglob("*"))  # no dataset comes back with the figures
    files = [p for p in out.rglob("*") if p.is_file()]  # what the device tool brings back: <= 8, one folder deep
    assert len(files) <= 8 and all(len(p.relative_to(out).parts) <= 2 for p in files)


def test_the_device_check_cut_by_its_deadline_keeps_a_whole_record_of_what_it_measured(tmp_path):
    """The fidelity study's check, given a deadline shorter than it needs: it ends with status
    3, device_check.json is whole and names the part the deadline cut, every part before it
    is recorded, and what comes back is <= 8 files one folder deep."""
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out)}
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "device_check.sh"), "--tiny", "--study", "fidelity",
                           "--deadline-s", "25", "--work", str(tmp_path / "work")], capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 3, done.stderr[-2000:]
    record = json.loads((out / "device_check.json").read_text())
    order = ["gpu_paths", "throughput", "profile", "roofline", "determinism", "data", "probes", "fidelity",
             "scheduler"]
    cut = record["deadline"]["cut_part"]
    assert record["deadline"]["deadline_s"] == 25 and cut in order
    assert list(record["parts"]) == order[:order.index(cut)]  # the cut part is not recorded as done
    assert not any("error" in p for p in record["parts"].values())
    assert "deadline: 25 s reached during" in (out / "device_check.log").read_text()
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) <= 8 and all(len(p.relative_to(out).parts) <= 2 for p in files)
    assert not any(p.suffix == ".tmp" for p in files)


def test_the_fidelity_budget_counts_every_run_and_probe_at_each_variants_rate():
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from device_fidelity import PAPER_EPOCHS, fidelity_epochs

    rates = {"preset": 4000.0, "fast": 5000.0, "torchvision_aug": 400.0}
    # one epoch: 2 runs x 10,000 pairs per variant = 5 + 4 + 50 s; 2 probe points x 2 protocols x 6 runs x 10 s
    assert fidelity_epochs(rates, 10_000, 10.0, 5, 59 + 240) == 1
    assert fidelity_epochs(rates, 10_000, 10.0, 5, 59 + 240 - 1) == 1  # never below one epoch
    # five epochs: 295 s of training, 2 points (0 and 5) x 2 x 6 x 10 s
    assert fidelity_epochs(rates, 10_000, 10.0, 5, 295 + 240) == 5
    assert fidelity_epochs({"preset": 1e9}, 10, 0.0, 5, 1e9) == PAPER_EPOCHS
