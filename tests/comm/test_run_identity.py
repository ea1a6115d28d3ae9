"""A run's identity covers what changes its weights by rounding (#51): the compile backend
and, on CPU, the thread count. A resumed run keeps the arithmetic it started with (its
recorded thread count is taken again; another compile backend is refused), and a run of
0.8, which recorded none, resumes under its old identity."""

from __future__ import annotations

import json

import pytest
import torch

from comm_diag.comm.config import TrainConfig
from comm_diag.comm.run_folder import TrainingError, data_fingerprint, load_run, run_id
from comm_diag.comm.train import train

CFG = TrainConfig(d=32, batch_size=64, epochs=2, precision="fp32", method="cross")


def _stop_in_epoch_2(info):
    if info.epoch == 2 and info.step == 1:
        raise KeyboardInterrupt


def test_the_identity_differs_with_threads_and_compile_and_only_with_them(tiny_dataset):
    fp, train_ = data_fingerprint(tiny_dataset), CFG.to_dict()
    ids = {(c, t): run_id(train_, fp, {"compile": c, "cpu_threads": t}) for c in (None, "inductor") for t in (1, 2)}
    assert len(set(ids.values())) == 4
    assert ids[None, 1] == run_id(dict(train_), fp, {"cpu_threads": 1, "compile": None})  # order-free
    assert run_id(train_, fp) not in ids.values()  # 0.8's identity (no numerics) is its own
    # a setting added since (fast) at its default leaves a 0.8 run's identity as it was; set, it changes it
    before = {k: v for k, v in train_.items() if k != "fast"}
    assert run_id(before, fp) == run_id(train_, fp) != run_id({**train_, "fast": True}, fp)


def test_a_run_resumed_under_another_thread_count_takes_its_own_again(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("COMM_DIAG_THREADS", "1")
    with pytest.raises(KeyboardInterrupt):
        train(CFG, tiny_dataset, tmp_path / "r", on_step=_stop_in_epoch_2)
    first = json.loads((tmp_path / "r" / "config.json").read_text())
    assert first["numerics"] == {"compile": None, "cpu_threads": 1}
    monkeypatch.setenv("COMM_DIAG_THREADS", "2")  # a study resumed with other --workers
    log_before = (tmp_path / "r" / "log.csv").stat().st_ino
    train(CFG, tiny_dataset, tmp_path / "r", resume=True)
    # the kept rows went to a new file renamed over the log: the old file was never written
    assert (tmp_path / "r" / "log.csv").stat().st_ino != log_before
    after = json.loads((tmp_path / "r" / "config.json").read_text())
    assert after["run_id"] == first["run_id"] and after["numerics"]["cpu_threads"] == 1
    assert load_run(tmp_path / "r")[1]["epoch"] == 2
    fresh = train(CFG, tiny_dataset, tmp_path / "fresh")  # 2 threads from the start: another identity
    assert json.loads((fresh / "config.json").read_text())["run_id"] != first["run_id"]


def test_a_resume_with_another_compile_backend_is_refused(tiny_dataset, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        train(CFG, tiny_dataset, tmp_path / "r", on_step=_stop_in_epoch_2)
    with pytest.raises(TrainingError, match="compile=None, now 'aot_eager'"):
        train(CFG, tiny_dataset, tmp_path / "r", resume=True, compile="aot_eager")


def test_a_run_of_0_8_resumes_under_the_identity_it_recorded(tiny_dataset, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        train(CFG, tiny_dataset, tmp_path / "r", on_step=_stop_in_epoch_2)
    run = tmp_path / "r"
    meta = json.loads((run / "config.json").read_text())
    meta.pop("numerics")
    meta["run_id"] = old = run_id(meta["train"], meta["data"]["fingerprint"])  # as 0.8 computed it
    (run / "config.json").write_text(json.dumps(meta))
    for p in (run / "checkpoints").glob("*.pt"):
        state = torch.load(p, weights_only=True)
        state["run"] = old
        if "config" in state:
            state["config"] = meta
        torch.save(state, p)
    train(CFG, tiny_dataset, run, resume=True)
    assert json.loads((run / "config.json").read_text())["run_id"] == old
    assert "numerics" not in json.loads((run / "config.json").read_text())
