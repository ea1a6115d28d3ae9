"""Hardening that the CLI table cannot show: signals, a real kill -9, the Python entry
points' options, modalities, what a run records and what a checkpoint may hold."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import comm_diag.trifeature_gen as tg
from comm_diag.comm.config import preset
from comm_diag.comm.methods import build_method
from comm_diag.comm.run_folder import TrainingError, load_checkpoint, run_config
from comm_diag.outputs import OutputError, check, foreign_entries
from comm_diag.probes.studies.quickstart import quickstart
from comm_diag.probes.measure.features import extract

GEN = ["generate", "--size", "64", "--views", "4"]  # a few seconds of rendering: time to be interrupted


def _start(argv: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "comm_diag.cli", *argv], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(pattern: str, folder: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    t0 = time.monotonic()
    while not list(folder.glob(pattern)):
        assert proc.poll() is None and time.monotonic() - t0 < timeout, "the command ended before it began writing"
        time.sleep(0.05)


def test_sigterm_during_generate_removes_the_lock_and_the_partial_folder(tmp_path):
    proc = _start([*GEN, "--out", str(tmp_path / "ds")], tmp_path)
    _wait_for(".ds.partial-*/images/train.npy", tmp_path, proc)  # mid-write
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "error: interrupted" in stderr and "Traceback" not in stderr, stderr
    assert list(tmp_path.iterdir()) == []  # no dataset, no temporary folder, no lock file


def test_kill_9_during_generate_leaves_nothing_the_next_generate_keeps(tmp_path):
    proc = _start([*GEN, "--out", str(tmp_path / "ds")], tmp_path)
    _wait_for(".ds.partial-*/images", tmp_path, proc)
    proc.kill()
    proc.communicate(timeout=60)
    assert list(tmp_path.glob(".ds.partial-*"))  # SIGKILL runs no cleanup ...
    r = subprocess.run([sys.executable, "-m", "comm_diag.cli", "generate", "--size", "32", "--train-pairs", "64",
                        "--probe-pairs", "64", "--test-pairs", "32", "--out", str(tmp_path / "ds")],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # ... the next writer of the folder clears it


def test_empty_means_no_entry_at_all(tmp_path):
    (tmp_path / "a").mkdir()
    assert check(tmp_path / "a", "dataset") == (tmp_path / "a").resolve()
    (tmp_path / "a" / ".git").mkdir()
    with pytest.raises(OutputError, match="did not write"):
        check(tmp_path / "a", "dataset", force=True)


def test_foreign_entries_are_what_the_manifest_does_not_list(tiny_dataset, tmp_path):
    import shutil

    ds = tmp_path / "ds"
    shutil.copytree(tiny_dataset.root, ds)
    assert foreign_entries(ds) == []
    (ds / "pairs" / "mine.csv").write_text("x")
    (ds / ".venv" / "bin").mkdir(parents=True)
    (ds / ".venv" / "bin" / "python").write_text("x")
    assert foreign_entries(ds) == [".venv", "pairs/mine.csv"]  # a foreign folder once, not its contents


def test_python_entry_points_refuse_misspelt_options(tmp_path):
    with pytest.raises(TypeError, match=r"unknown option 'seed'.*seeds"):
        quickstart(tmp_path / "q", seed=[1, 2], preset="smoke")
    with pytest.raises(TypeError, match="unknown option 'address'"):
        quickstart(tmp_path / "q", address="x", preset="smoke")  # a Ray option with the local executor
    assert not (tmp_path / "q").exists()


def test_a_model_of_three_modalities_is_not_probed_on_two(tiny_dataset):
    model = build_method(preset("smoke").replace(image_size=32), n_modalities=3)
    with pytest.raises(ValueError, match="takes 3 modalities but the dataset"):
        extract(model, tiny_dataset, "test")


def test_a_run_records_its_data_by_absolute_path_and_content(tiny_dataset, monkeypatch):
    monkeypatch.chdir(tiny_dataset.root.parent)
    ds = tg.load(tiny_dataset.root.name)  # a relative --data
    meta = run_config(preset("smoke"), ds)
    assert Path(meta["data"]["path"]).is_absolute() and Path(meta["data"]["path"]) == tiny_dataset.root.resolve()
    assert meta["data"]["files"] == tiny_dataset.manifest["sha256"] and len(meta["run_id"]) == 16


def test_a_checkpoint_holding_code_is_refused_and_not_run(tmp_path):
    sentinel = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(sentinel),))

    torch.save({"model": {}, "epoch": 0, "x": Payload()}, tmp_path / "last.pt")
    with pytest.raises(TrainingError, match="holds objects other than tensors and plain data: refused"):
        load_checkpoint(tmp_path / "last.pt")
    assert not sentinel.exists()
    torch.save({"model": {"w": torch.zeros(2)}, "epoch": 0, "config": {"train": {"lr": 1e-3}}}, tmp_path / "ok.pt")
    assert load_checkpoint(tmp_path / "ok.pt")["model"]["w"].shape == (2,)  # tensors and plain data load


def test_unbiased_and_synergy_twins_share_the_files_a_probe_reads(tiny_dataset, tiny_synergy_dataset):
    # a synergy run is probed on its unbiased twin only because these files are the same
    from comm_diag.probes.measure.suite import TWIN_FILES

    for f in TWIN_FILES:
        assert tiny_dataset.manifest["sha256"][f] == tiny_synergy_dataset.manifest["sha256"][f], f
