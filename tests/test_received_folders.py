"""A received folder is regular files of bounded size, or it is refused in one line before
any read or write (#51): a FIFO would block probe, report and resume forever; a hard link
would let a resumed run rewrite a file outside with its log; a sparse 200 GB checkpoint was
hashed in full. Each case runs the command in a fresh process with a time limit (a hang
fails the test instead of the suite), on a copy of a real probed run or dataset."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from comm_diag.comm.config import TrainConfig
from comm_diag.comm.train import train
from comm_diag.probes.measure.suite import probe_run


@pytest.fixture(scope="module")
def probed(tmp_path_factory, tiny_dataset) -> Path:
    run = train(TrainConfig(d=32, epochs=1, batch_size=64, method_settings={"proj_hidden": 64, "proj_dim": 32}),
                tiny_dataset, tmp_path_factory.mktemp("received") / "run")
    probe_run(run, tasks=("redundancy",), representations=("fused",))
    return run


def _cli(*argv, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "comm_diag.cli", *map(str, argv)], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def _one_line(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode == 1, done.stdout[-1000:] + done.stderr[-1000:]
    assert "Traceback" not in done.stderr and done.stderr.startswith("error:"), done.stderr[-1000:]
    assert all(w in done.stderr.replace("\n", "") for w in words), done.stderr[-1000:]


def _data_of(run: Path) -> str:
    from comm_diag.comm.run_folder import read_config

    return read_config(run)["data"]["path"]


@pytest.mark.parametrize("where, command", [("checkpoints/epoch_001.pt", "probe"), ("probes.json", "report"),
                                            ("log.csv", "resume")])
def test_a_fifo_in_a_run_is_refused_by_probe_report_and_resume(probed, tmp_path, where, command):
    run = tmp_path / "run"
    shutil.copytree(probed, run)
    (run / where).unlink()
    os.mkfifo(run / where)
    argv = {"probe": ["probe", run], "report": ["report", run, "--out", tmp_path / "rep"],
            "resume": ["train", "--resume", "--out", run, "--data", _data_of(probed)]}[command]
    _one_line(_cli(*argv, cwd=tmp_path), f"{where} is not a regular file")


def test_a_hard_link_in_a_run_is_refused_before_resume_could_rewrite_the_file_outside(probed, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(probed, run)
    outside = tmp_path / "mine.csv"
    outside.write_text("a user's file\n")
    (run / "log.csv").unlink()
    os.link(outside, run / "log.csv")
    _one_line(_cli("train", "--resume", "--out", run, "--data", _data_of(probed), "--epochs", "2", cwd=tmp_path),
              "log.csv is a hard link")
    assert outside.read_text() == "a user's file\n"


def test_a_checkpoint_larger_than_any_comm_diag_writes_is_refused_without_reading_it(probed, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(probed, run)
    with open(run / "checkpoints" / "epoch_000.pt", "r+b") as f:
        f.truncate(200 * 2**30)  # sparse: 200 GB that take no disk
    done = _cli("report", run, "--out", tmp_path / "rep", cwd=tmp_path)
    _one_line(done, "epoch_000.pt holds 200.0 GB")


def test_a_fifo_in_a_dataset_is_refused_before_its_hashes_are_read(tiny_dataset, tmp_path):
    data = tmp_path / "d"
    shutil.copytree(tiny_dataset.root, data)
    (data / "preview.png").unlink()
    os.mkfifo(data / "preview.png")
    _one_line(_cli("info", data, cwd=tmp_path), "preview.png is not a regular file")
