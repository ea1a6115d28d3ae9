"""comm-diag calibrate: known-answer representations through the methods' probes and verdict rule."""

import csv
import json

import pytest
from typer.testing import CliRunner

import comm_diag.trifeature_gen as tg
from comm_diag.cli import CALIBRATION_MISMATCH_EXIT, app
from comm_diag.probes.studies.calibrate import REFERENCES, calibrate

runner = CliRunner()


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("calib") / "ds"
    tg.generate(tg.DatasetSpec(size=32, train_pairs=64, probe_pairs=3000, test_pairs=1000), out)
    return tg.load(out)


def test_calibrate__every_known_answer_is_found(small_dataset, tmp_path):
    r = runner.invoke(app, ["calibrate", "--data", str(small_dataset.root), "--out", str(tmp_path / "cal")])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(open(tmp_path / "cal" / "calibration.csv")))
    assert len(rows) == 4 * len(REFERENCES) and all(row["ok"] == "True" for row in rows)
    by = {(row["reference"], row["level"]): row for row in rows}
    # synergy: recoverable but not fused from concatenated factors, fused from their outer product
    assert by[("factors_concat", "S fused")]["verdict"] == "not captured"
    assert by[("factors_concat", "S recoverable")]["verdict"] == "captured"
    assert by[("factors_outer", "S fused")]["verdict"] == "captured"
    # bits: true factors reach the exact PID bits (3.32 for shape), shuffled labels about none
    assert float(by[("factors_concat", "R")]["bits_fraction"]) > 0.95
    assert float(by[("shuffled_labels", "R")]["bits"]) < 0.05
    assert json.loads((tmp_path / "cal" / "calibration.json").read_text())["seeds"] == [0, 1, 2]


def test_calibrate__a_wrong_expectation_is_a_mismatch_and_exit_3(small_dataset, tmp_path, monkeypatch):
    from dataclasses import replace

    # if the instrument claimed synergy fused into concatenated factors, calibration must say so
    wrong = replace(REFERENCES["factors_concat"], expected={**REFERENCES["factors_concat"].expected, "S fused": True})
    monkeypatch.setitem(REFERENCES, "factors_concat", wrong)
    r = runner.invoke(app, ["calibrate", "--data", str(small_dataset.root), "--out", str(tmp_path / "cal"),
                            "--references", "factors_concat", "--seeds", "0"])
    assert r.exit_code == CALIBRATION_MISMATCH_EXIT and "factors_concat S fused: not captured" in r.output


def test_calibrate__unknown_reference_is_one_line(small_dataset, tmp_path):
    r = runner.invoke(app, ["calibrate", "--data", str(small_dataset.root), "--out", str(tmp_path / "cal"),
                            "--references", "oracle"])
    assert r.exit_code == 1 and "unknown reference 'oracle'" in r.output and not (tmp_path / "cal").exists()
    with pytest.raises(ValueError, match="unknown reference"):
        calibrate(small_dataset, ["oracle"])


def test_calibrate__warns_below_the_probe_set_its_answers_are_decisive_from(tmp_path):
    from comm_diag.probes.studies.calibrate import DECISIVE_PROBE_PAIRS

    out = tmp_path / "ds"
    tg.generate(tg.DatasetSpec(size=32, train_pairs=64, probe_pairs=DECISIVE_PROBE_PAIRS // 4, test_pairs=300), out)
    r = runner.invoke(app, ["calibrate", "--data", str(out), "--out", str(tmp_path / "cal"),
                            "--references", "modality1_alone", "--seeds", "0"])
    record = json.loads((tmp_path / "cal" / "calibration.json").read_text())
    assert record["probe_pairs"] == DECISIVE_PROBE_PAIRS // 4 and record["decisive_probe_pairs"] == DECISIVE_PROBE_PAIRS
    assert "warning:" in r.output and f"decisive from {DECISIVE_PROBE_PAIRS}" in " ".join(r.output.split())


def test_calibrate__no_warning_at_the_decisive_size(small_dataset, tmp_path):
    r = runner.invoke(app, ["calibrate", "--data", str(small_dataset.root), "--out", str(tmp_path / "cal"),
                            "--references", "modality1_alone", "--seeds", "0"])
    assert r.exit_code == 0 and "warning:" not in r.output
    assert json.loads((tmp_path / "cal" / "calibration.json").read_text())["warning"] is None
