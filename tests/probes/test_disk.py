"""The disk a study will write is said before it starts (#52: the default quickstart wrote
404 MB without saying so); the estimate is checked against what generate and train write."""

from __future__ import annotations

import json

import pytest

from comm_diag.comm.config import preset
from comm_diag.comm.train import train
from comm_diag.probes.studies.disk import checkpoint_bytes, dataset_bytes, said, study_bytes


def test_the_estimate_matches_what_generate_and_train_write(tiny_dataset, tmp_path):
    written = sum(p.stat().st_size for p in tiny_dataset.root.rglob("*") if p.suffix in (".npy", ".csv"))
    assert dataset_bytes(tiny_dataset.spec) == pytest.approx(written, rel=0.1)
    run = train(preset("smoke").replace(epochs=2, batch_size=64), tiny_dataset, tmp_path / "run")
    config = json.loads((run / "config.json").read_text())["train"]
    checkpoints = sum(p.stat().st_size for p in (run / "checkpoints").glob("*.pt"))
    assert checkpoint_bytes(config) == pytest.approx(checkpoints, rel=0.1)


def test_a_study_says_its_disk_before_any_byte_and_counts_only_what_is_missing(tmp_path):
    from comm_diag.probes.hooks import Hooks
    from comm_diag.probes.studies import pipeline
    from comm_diag.probes.studies.pipeline import StudySettings
    from comm_diag.probes.studies.registry import STUDIES
    from comm_diag.probes.studies.sweep import planned_datasets

    settings = StudySettings(preset="smoke", only=0)
    study = STUDIES["loss"]
    jobs = pipeline.study_jobs(study, tmp_path / "s", settings)
    specs = planned_datasets(tmp_path / "s", "smoke", study.all_variants(), study.preset_kinds())
    estimate = study_bytes(jobs, specs)
    assert [p.name for p, _ in specs] == ["unbiased", "synergy"] and estimate["checkpoints"] > 0
    assert said(estimate, tmp_path).startswith("disk: about ")
    stages: list[str] = []

    class Stop(Exception):
        pass

    def on_stage(text):
        stages.append(text)
        raise Stop  # the first stage: before the study writes anything
    with pytest.raises(Stop):
        pipeline.run(study, tmp_path / "s", settings, hooks=Hooks(on_stage=on_stage))
    assert stages[0].startswith("disk: about ") and not (tmp_path / "s").exists()
