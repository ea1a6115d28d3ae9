import numpy as np
import pytest

from comm_diag.probes.measure.verdict import PLUMBING, as_plumbing, verdict


def test_verdict__clearly_above_both_controls_is_captured():
    assert verdict([75, 76, 74], [52, 50, 51], 50).verdict == "captured"


def test_verdict__at_random_init_level_is_not_captured_even_above_chance():
    v = verdict([60, 61, 59], [58, 60, 59], 50)
    assert v.verdict == "not captured" and v.control == 59


def test_verdict__interval_straddling_the_line_is_inconclusive():
    assert verdict([50, 60, 70], [50, 50, 50], 50).verdict == "inconclusive"


def test_verdict__one_seed_without_a_recorded_error_uses_the_point_estimate():
    """A probes.csv from before 0.9 has no ba_se: its one seed has no interval to show."""
    v = verdict([66.0], [], 50)
    assert v.verdict == "captured" and v.ci95 == 0.0 and v.n_seeds == 1


def test_verdict__one_seed_carries_the_test_pairs_interval():
    """0.8 called 34.6 against a line of 34.0 'captured' on one seed; with the test pairs'
    standard error (0.8 points) its interval straddles the line."""
    near = verdict([34.6], [], 10.0, margin=24.0, ses=[0.8])
    assert near.verdict == "inconclusive" and near.ci95 == pytest.approx(1.96 * 0.8, abs=1e-3)
    assert verdict([32.0], [], 10.0, margin=24.0, ses=[0.8]).verdict == "not captured"
    assert verdict([37.0], [], 10.0, margin=24.0, ses=[0.8]).verdict == "captured"


def test_verdict__several_seeds_add_the_shared_test_error_to_the_seed_interval():
    """The test pairs are the same for every seed: their error is not divided by sqrt(seeds)."""
    from scipy import stats

    scores, ses = [70.0, 72.0, 71.0], [0.9, 1.1, 1.0]
    v = verdict(scores, [], 50.0, ses=ses)
    seed_half = stats.t.ppf(0.975, 2) * np.std(scores, ddof=1) / np.sqrt(3)
    test_half = 1.959964 * np.sqrt(np.mean(np.square(ses)))
    assert v.ci95 == pytest.approx(np.hypot(seed_half, test_half), rel=1e-6)
    assert v.test_ci95 == pytest.approx(test_half, rel=1e-6) and v.low < v.mean < v.high


def test_balanced_accuracy_se_is_the_binomial_error_of_the_class_recalls():
    from comm_diag.probes.measure.metrics import balanced_accuracy_se

    y = np.array([0] * 900 + [1] * 100)
    pred = np.array([0] * 720 + [1] * 180 + [1] * 60 + [0] * 40)  # recalls 0.8 and 0.6
    r0, r1 = 721 / 902, 61 / 102
    expected = 50 * np.sqrt(r0 * (1 - r0) / 900 + r1 * (1 - r1) / 100)
    assert balanced_accuracy_se(y, pred) == pytest.approx(expected, rel=1e-9)
    assert balanced_accuracy_se(y, y) > 0  # a perfect score still has an error


# ----------------------------------------------------------------------------- the reading in words

def _result(presets, epochs, seeds=1):
    """A summarized result's verdict part, from the verdict rule on given scores."""
    scores = {"comm": {"R": [95.0], "U": [45.0], "S": [70.0]}, "cross": {"R": [99.0], "U": [12.0], "S": [49.0]}}
    line = {"R": 10.0, "U": 10.0, "S": 50.0}
    from comm_diag.probes.measure.table import ProbeTable
    from comm_diag.probes.report.result import StudyResult

    return StudyResult(rows=ProbeTable(), notes={}, s_recoverable={}, epochs=ProbeTable(), runs=1,
                       presets=tuple(presets), train_epochs=tuple(epochs),
                       verdicts={m: {k: verdict(s * seeds, [], line[k], ses=[0.8] * seeds) for k, s in by.items()}
                                 for m, by in scores.items()})


def test_overview_says_what_each_method_captured_how_sure_and_what_next():
    from comm_diag.probes.report.conclusions import next_step, overview, plumbing_note

    lines = overview(_result(["cpu"], [6]), gpu=False)
    text = " ".join(lines)
    assert "CoMM captures redundancy (linear probe, fused representation: 95.0 ±1.6, line 15.0), uniqueness" in text
    assert "Cross does not capture uniqueness" in text and "or synergy fused into the representation" in text
    assert "cpu preset, 6 epochs, one seed" in text and "test pairs' sampling error" in text
    assert "--preset paper needs a GPU" in text  # a CPU's next step
    assert "on this GPU" in next_step(["cpu"], gpu=True) and "--preset cpu" in next_step(["smoke"], gpu=True)
    assert "over 3 seeds" in " ".join(overview(_result(["cpu"], [6], seeds=3), gpu=False))
    assert plumbing_note(["smoke"]) and not plumbing_note(["cpu"])
    # the note says the epochs that ran, and the report's own command is the next step (0.8:
    # "one epoch" after --epochs 2, and quickstart, which trains neither a check's method nor an ablation)
    assert "tiny images, 2 epochs" in plumbing_note(["smoke"], [2])[0]
    assert "same command with `--preset cpu`" in plumbing_note(["smoke"])[0] and "quickstart" not in plumbing_note(["smoke"])[0]
    # a smoke run reported beside a paper run is still said to be one (0.8: the note vanished)
    assert "Runs of the smoke preset are in this report" in plumbing_note(["paper", "smoke"])[0]


def test_the_check_table_keeps_words_whole_at_80_columns():
    """0.5 cut 'redundan|cy' and 'cross_se|lf' in a narrow terminal; no cell word is cut now."""
    import re

    from rich.console import Console

    from comm_diag import tables

    result = _result(["cpu"], [6])
    result.verdicts["LateFusionSimCLR"] = result.verdicts["comm"]
    result.verdicts["cross_self"] = result.verdicts["cross"]
    console = Console(width=80, record=True)
    console.print(tables.check(result, "LateFusionSimCLR"))
    text = console.export_text()
    assert max(map(len, text.splitlines())) <= 80
    words = set(re.findall(r"[\w.+]+", text))
    for word in ("redundancy", "uniqueness", "synergy", "captured", "Cross+Self", "CoMM"):
        assert word in words, word
    assert "(95% CI)" not in text  # one seed: no interval announced


# ----------------------------------------------------------------------------- conclusions from crafted tables

def _v(mean: float, line: float, se: float = 0.8, seeds: int = 1):
    return verdict([mean] * seeds, [], line - 5.0, ses=[se] * seeds)


def test_conclude_names_level_and_representation_and_says_inconclusive_where_the_interval_straddles():
    from comm_diag.probes.report.conclusions import conclude

    text = " ".join(conclude({"R": _v(99.0, 15.0), "U": _v(15.6, 15.0), "S": _v(40.0, 55.0)}, "M"))
    assert "M captures redundancy (linear probe, fused representation: 99.0 ±1.6, line 15.0)." in text
    assert "Inconclusive for M, the 95% interval straddling the line: uniqueness" in text
    assert "M does not capture synergy fused into the representation" in text


def test_conclude_reports_an_mlp_reading_below_the_linear_one_and_claims_no_fusion_it_did_not_measure():
    """0.8's smoke check concluded 'the signature of real fusion' for a linear score 1.2 points
    over its line with the MLP reading below it; a crafted table of that shape now reads so."""
    from comm_diag.probes.report.conclusions import conclude

    levels = {"R": _v(60.0, 45.0), "S": _v(56.2, 55.0, se=1.5), "S recoverable": _v(53.6, 55.0, se=1.5)}
    text = " ".join(conclude(levels, "SimCLR", alone={"modality1": _v(50.0, 55.0), "modality2": _v(51.0, 55.0)}))
    assert "signature" not in text and "real fusion" not in text
    assert "The MLP probe reads synergy below the linear probe (53.6 vs 56.2)" in text and "held-out" in text
    assert "inconclusive" in text.lower() and "synergy fused into the representation" in text
    assert "Neither modality alone" not in text  # fused synergy was not captured: nothing said about fusion


def test_conclude_says_what_the_modalities_alone_show_only_when_fused_synergy_is_captured():
    from comm_diag.probes.report.conclusions import conclude

    fused = {"S": _v(75.0, 55.0)}
    none_alone = {"modality1": _v(50.0, 55.0), "modality2": _v(49.0, 55.0)}
    assert "Neither modality alone carries it" in " ".join(conclude(fused, "CoMM", alone=none_alone))
    one_alone = {"modality1": _v(70.0, 55.0), "modality2": _v(49.0, 55.0)}
    assert "also read from modality1 alone" in " ".join(conclude(fused, "CoMM", alone=one_alone))
    unsure = {"modality1": _v(55.5, 55.0), "modality2": _v(49.0, 55.0)}
    assert "alone" not in " ".join(conclude(fused, "CoMM", alone=unsure))


def test_conclude_at_a_plumbing_preset_claims_nothing():
    from comm_diag.probes.report.conclusions import conclude

    levels = {"R": as_plumbing(_v(99.0, 15.0)), "S": as_plumbing(_v(75.0, 55.0))}
    text = " ".join(conclude(levels, "CoMM", plumbing=True))
    assert "plumbing check only" in text and "captures" not in text and levels["R"].verdict == PLUMBING
