"""The dose-response study: exact doses, datasets that differ only in their training pairs, a
known-answer reference, and the study end to end through ``check`` at the smoke size."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import comm_diag.trifeature_gen as tg
from comm_diag.probes.studies import dose as dose_mod
from comm_diag.probes.studies.ablation import planned_jobs, study_named
from comm_diag.probes.studies.check import check
from comm_diag.probes.studies.dose import DOSES, REFERENCE, dose_table, parse_levels, readings
from comm_diag.trifeature_gen.pairs import synergy_mapping
from comm_diag.trifeature_gen.pid import attribute_information

from tests.conftest import TINY

LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)


@pytest.fixture(scope="module")
def synergy_levels(tmp_path_factory) -> dict[float, tg.Dataset]:
    """The tiny dataset at three synergy strengths, as a dose study generates them."""
    root = tmp_path_factory.mktemp("dose")
    out = {}
    for p in (0.0, 0.5, 1.0):
        tg.generate(tg.DatasetSpec(**TINY, synergy=True, synergy_prob=p), root / str(p))
        out[p] = tg.load(root / str(p))
    return out


@pytest.mark.parametrize("name", list(DOSES))
def test_the_dose_is_exact_and_monotone_in_the_level(name):
    d = DOSES[name]
    bits = []
    for p in LEVELS:
        spec = tg.DatasetSpec(synergy=d.kind == "synergy", **{d.setting: p})
        bits.append(attribute_information(spec, synergy_mapping(spec), "train", *d.attributes(spec)))
    assert bits[0] == pytest.approx(0.0, abs=1e-9)
    assert bits[-1] == pytest.approx(np.log2(10))  # the attribute of x2 is a bijection of x1's
    assert all(a < b for a, b in zip(bits, bits[1:]))
    # the test pairs are unbiased whatever the level: nothing ties texture(x1) to colour(x2) there
    spec = tg.DatasetSpec(synergy=True, synergy_prob=1.0, train_share_prob=0.0)
    assert attribute_information(spec, synergy_mapping(spec), "test", "texture", "color") == pytest.approx(0, abs=1e-9)
    assert attribute_information(spec, synergy_mapping(spec), "test", "shape", "shape") == pytest.approx(np.log2(10))


def _same_pairs(a: tg.Dataset, b: tg.Dataset, pair_set: str) -> bool:
    return all(np.array_equal(x, y) for x, y in zip((a.pairs[pair_set].i1, a.pairs[pair_set].i2),
                                                     (b.pairs[pair_set].i1, b.pairs[pair_set].i2)))


def test_levels_change_only_the_training_pairs(tmp_path, synergy_levels, tiny_dataset):
    a, b = synergy_levels[0.0], synergy_levels[1.0]
    assert np.array_equal(a.images["train"], b.images["train"])
    for pair_set in ("probe_train", "test"):
        assert _same_pairs(a, b, pair_set) and _same_pairs(a, tiny_dataset, pair_set)
        assert a.manifest["pid"][pair_set] == b.manifest["pid"][pair_set]
    assert not _same_pairs(a, b, "train")
    # the redundancy dose: share_prob of the training pairs alone
    tg.generate(tg.DatasetSpec(**TINY, train_share_prob=0.0), tmp_path / "r0")
    r0 = tg.load(tmp_path / "r0")
    assert r0.spec.share_prob_of("train") == 0.0 and r0.spec.share_prob_of("test") == 1.0
    for pair_set in ("probe_train", "test"):
        assert _same_pairs(r0, tiny_dataset, pair_set)  # the default dataset's probe and test pairs
    t1, t2 = r0.factors_of("train", 0), r0.factors_of("train", 1)
    assert (t1[:, 0] == t2[:, 0]).mean() < 0.3  # training pairs no longer share the shape (1/10 by chance)
    assert r0.manifest["pid"]["train"]["redundancy"]["redundant"] == pytest.approx(0.0, abs=1e-6)
    assert r0.manifest["pid"]["test"] == tiny_dataset.manifest["pid"]["test"]
    with pytest.raises(ValueError, match="train-share-prob must be in"):
        tg.DatasetSpec(train_share_prob=1.5).validate()


def test_known_answer_reference_captures_synergy_at_full_strength_not_at_zero(synergy_levels):
    """The factors' outer product contracted with the training law's conditional table: a
    learner that took in exactly the dependence the training pairs carry."""
    d = DOSES["synergy"]
    rows = {p: dose_mod._reference_rows(d, "synergy", ds, p, d.dose_bits(ds), 0.469)
            for p, ds in synergy_levels.items()}
    assert rows[0.0]["verdict"] == "not captured" and rows[0.0]["balanced_accuracy"] == pytest.approx(50.0)
    assert rows[0.0]["bits"] == pytest.approx(0.0, abs=1e-3)
    for p in (0.5, 1.0):
        assert rows[p]["verdict"] == "captured" and rows[p]["balanced_accuracy"] > 95
        assert rows[p]["bits"] > 0.3
    assert rows[0.0]["dose_bits"] < rows[0.5]["dose_bits"] < rows[1.0]["dose_bits"]


def test_readings_name_the_lowest_captured_level_and_the_fraction_of_the_ceiling():
    def row(method, level, v, bits):
        return {"method": method, "interaction": "synergy", "level": level, "dose_bits": 3.32 * level,
                "verdict": v, "balanced_accuracy": 50 + 30 * level, "bits": bits, "ceiling_bits": 0.5,
                "bits_fraction": bits / 0.5}
    table = [row("a", 0.0, "not captured", 0.0), row("a", 0.5, "captured", 0.1), row("a", 1.0, "captured", 0.4),
             row("b", 0.0, "not captured", 0.0), row("b", 0.5, "captured", 0.1), row("b", 1.0, "inconclusive", 0.1),
             row("c", 0.0, "not captured", 0.0), row("c", 1.0, "not captured", 0.0)]
    a, b, c = readings(table)
    assert a.startswith("a: captures synergy from level 0.5 (1.66 bits") and "80% of the ceiling" in a
    assert "but not at 1" in b
    assert c.startswith("c: does not capture synergy at any level")


def test_dose_study_plan_trains_each_level_on_its_own_dataset(tmp_path):
    study = study_named("dose", interactions=["synergy", "redundancy"], levels="0,1", methods=["cross"])
    jobs = planned_jobs(study, tmp_path, preset="smoke", seeds=[0])
    assert {(j.label, j.kind) for j in jobs} == {("cross@synergy=0", "synergy"), ("cross@synergy=1", "synergy"),
                                                 ("cross@redundancy=0", "unbiased"), ("cross@redundancy=1", "unbiased")}
    assert len({j.data for j in jobs}) == 4
    assert study.preset_kinds() == ()  # no variant trains on the preset's own pair: it is not generated
    with pytest.raises(ValueError, match="for the dose study"):
        study_named("loss", levels="0,1")
    for bad in ("0", "0,2", "a,b", "0.5,0.5"):
        with pytest.raises(ValueError, match="levels"):
            parse_levels(bad)


def test_a_dose_check_gives_the_method_its_curve(tmp_path):
    """Through ``check`` at the smoke size: two levels, one method, real training and probes."""
    out = tmp_path / "dose"
    result = check("cross", out, controls=(), dose=["synergy"], levels=[0, 1], preset="smoke")
    table = result["outputs"]["dose"]
    assert [(r["method"], r["level"]) for r in table] == [("cross", 0.0), ("cross", 1.0),
                                                           (REFERENCE, 0.0), (REFERENCE, 1.0)]
    assert table[0]["dose_bits"] == pytest.approx(0, abs=1e-9) and table[1]["dose_bits"] == pytest.approx(np.log2(10))
    for r in table:
        assert r["ceiling_bits"] == pytest.approx(table[0]["ceiling_bits"])  # one test law for every level
        assert 0 <= r["balanced_accuracy"] <= 100 and r["verdict"] in ("captured", "not captured", "inconclusive")
    assert [r["init_balanced_accuracy"] is None for r in table] == [False, False, True, True]
    assert result["conclusion"].startswith("cross: ")
    with open(out / "dose.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 4
    assert json.loads((out / "dose.json").read_text())["readings"][0] == result["conclusion"]
    assert (out / "dose.png").stat().st_size > 10_000
    report = (out / "report.md").read_text()
    assert "## Dose-response" in report and "![dose-response](dose.png)" in report
    assert sorted(p.name for p in (out / "data").iterdir()) == ["synergy_prob=0.0", "synergy_prob=1.0"]
    assert dose_table(result["rows"], {}, {"synergy": DOSES["synergy"]}) == []  # no dataset: nothing to read


def test_levels_that_print_alike_get_names_of_their_own_and_a_study_refuses_twins():
    from comm_diag.probes.studies.dose import arm_name, dose_study

    assert arm_name("comm", "synergy", 0.5) == "comm@synergy=0.5" and arm_name("comm", "synergy", 1.0) == "comm@synergy=1"
    close = (arm_name("comm", "synergy", 0.5), arm_name("comm", "synergy", 0.5000001))
    assert close[0] != close[1] and float(close[1].rsplit("=", 1)[1]) == 0.5000001
    study = dose_study(("synergy",), (0.5, 0.5000001), ["comm"])
    assert len({v.name for v in study.variants}) == 2
    from comm_diag.probes.studies.study import Study
    from comm_diag.probes.studies.sweep import Variant

    with pytest.raises(ValueError, match="two variants named 'comm@synergy=0.5'"):
        Study(name="twins", description="", variants=(Variant("comm@synergy=0.5"), Variant("comm@synergy=0.5")))
