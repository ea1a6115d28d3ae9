import csv
import json

import pytest

from comm_diag.comm.config import TrainConfig
from comm_diag.comm.train import train
from comm_diag.probes.report import find_runs, write_report
from comm_diag.probes.suite import PROBE_COLUMNS, ProbeError, probe_run

CFG = dict(image_size=32, d=32, batch_size=64, epochs=1)
OWN = {"comm": dict(proj_hidden=32, proj_dim=16), "cross": {}}  # each method's own settings


@pytest.fixture(scope="module")
def probed_runs(tmp_path_factory, tiny_dataset, tiny_synergy_dataset):
    root = tmp_path_factory.mktemp("runs")
    runs = []
    for method in ("comm", "cross"):
        for name, ds in (("unbiased", tiny_dataset), ("synergy", tiny_synergy_dataset)):
            run = train(TrainConfig().replace(method=method, **CFG, **OWN[method]), ds, root / f"{method}-{name}")
            probe_run(run, every=1 if method == "comm" else 0)
            runs.append(run)
    return root, runs


def test_probe_run__writes_schema_and_controls(probed_runs):
    _, runs = probed_runs
    rows = list(csv.DictReader(open(runs[0] / "probes.csv")))
    assert tuple(rows[0]) == PROBE_COLUMNS
    assert {r["method"] for r in rows} == {"comm", "comm@init"}
    assert {r["representation"] for r in rows} == {"fused", "modality1", "modality2"}
    assert {r["task"] for r in rows} == {"redundancy", "uniqueness1", "uniqueness2", "synergy"}
    assert all(r["auroc"] == "" for r in rows if r["task"] != "synergy")
    assert all(0 <= float(r["balanced_accuracy"]) <= 100 for r in rows)
    meta = json.loads((runs[0] / "probes.json").read_text())
    assert meta["config"]["train"]["method"] == "comm" and "package_version" in meta
    by_epoch = list(csv.DictReader(open(runs[0] / "probes_by_epoch.csv")))
    assert {r["epoch"] for r in by_epoch} == {"0", "1"}


def test_report__summary_figure_and_verdicts(probed_runs, tmp_path):
    root, runs = probed_runs
    result = write_report(find_runs([root]), tmp_path / "rep")
    assert (tmp_path / "rep" / "figure4.png").stat().st_size > 1000
    assert (tmp_path / "rep" / "learning_curves.png").is_file()
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| comm |" in md and "Verdict rule" in md
    rows = list(csv.DictReader(open(tmp_path / "rep" / "summary.csv")))
    assert tuple(rows[0]) == PROBE_COLUMNS
    # R and U from unbiased trainings, S from synergy trainings
    assert result["notes"]["comm"].startswith("R, U from unbiased")
    assert set(result["verdicts"]["cross"]) == {"R", "U", "S"}


def test_probe_run__errors(tmp_path, tiny_dataset):
    with pytest.raises(ProbeError, match="not a training run"):
        probe_run(tmp_path)


def test_probe_run__restricts_tasks_and_representations(probed_runs):
    _, runs = probed_runs
    rows = probe_run(runs[1], tasks=("synergy",), representations=("fused", "modality2"))
    assert {r["task"] for r in rows} == {"synergy"}
    assert {r["representation"] for r in rows} == {"fused", "modality2"}
    assert all(r["auroc"] is not None for r in rows)
