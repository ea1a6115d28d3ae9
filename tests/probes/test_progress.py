"""Progress as bars, lines or nothing, and every event forwarded to the caller's hooks."""

from __future__ import annotations

import pytest

from comm_diag.comm.train import StepInfo
from comm_diag.probes.report.progress import progress, resolve_mode
from comm_diag.probes.hooks import Hooks


def _steps(epochs: int = 2, per_epoch: int = 3):
    for e in range(1, epochs + 1):
        for s in range(1, per_epoch + 1):
            yield StepInfo(epoch=e, step=s, steps_per_epoch=per_epoch, epochs=epochs,
                           global_step=(e - 1) * per_epoch + s, loss=1.0 / e, pairs_per_s=100.0)


def test_lines_say_each_stage_quarter_and_finished_epoch_and_the_caller_hears_everything():
    written, heard = [], []
    also = Hooks(on_stage=heard.append, on_step=lambda info: heard.append(info.global_step),
                 on_job_step=lambda name, info: heard.append((name, info.global_step)))
    with progress("lines", also=also, label="train x", write=written.append) as hooks:
        hooks.on_stage("dataset: unbiased")
        for done in (10, 30, 60, 100):
            hooks.on_generate(done, 100)
        for info in _steps():
            hooks.on_step(info)
        hooks.on_job_step("run-b", next(iter(_steps(1, 1))))
    text = [w.split("s ", 1)[1] for w in written]  # without the elapsed seconds
    assert text == ["dataset: unbiased", "rendering: 30/100 images", "rendering: 60/100 images",
                    "rendering: 100/100 images", "train x: epoch 1/2 loss 1.000 100 pairs/s",
                    "train x: epoch 2/2 loss 0.500 100 pairs/s", "run-b: epoch 1/1 loss 1.000 100 pairs/s"]
    assert heard == ["dataset: unbiased", 1, 2, 3, 4, 5, 6, ("run-b", 1)]


def test_off_draws_nothing_and_modes_are_checked(capsys):
    heard = []
    with progress("off", also=Hooks(on_stage=heard.append)) as hooks:
        hooks.on_stage("report")
        assert hooks.on_step is None and hooks.on_generate is None  # nothing listens: training skips the calls
    assert heard == ["report"] and capsys.readouterr() == ("", "")
    with pytest.raises(ValueError, match="unknown progress 'loud'; choose from auto, bar, lines, off"):
        resolve_mode("loud")
    assert resolve_mode("auto") == "lines"  # pytest captures stderr: not a terminal
