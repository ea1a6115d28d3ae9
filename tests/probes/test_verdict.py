from comm_diag.probes.measure.verdict import verdict


def test_verdict__clearly_above_both_controls_is_captured():
    assert verdict([75, 76, 74], [52, 50, 51], 50).verdict == "captured"


def test_verdict__at_random_init_level_is_not_captured_even_above_chance():
    v = verdict([60, 61, 59], [58, 60, 59], 50)
    assert v.verdict == "not captured" and v.control == 59


def test_verdict__interval_straddling_the_line_is_inconclusive():
    assert verdict([50, 60, 70], [50, 50, 50], 50).verdict == "inconclusive"


def test_verdict__one_seed_uses_point_estimate():
    v = verdict([66.0], [], 50)
    assert v.verdict == "captured" and v.ci95 == 0.0 and v.n_seeds == 1


# ----------------------------------------------------------------------------- the reading in words

def _result(presets, epochs, seeds=1):
    """A summarized result's verdict part, from the verdict rule on given scores."""
    scores = {"comm": {"R": [95.0], "U": [45.0], "S": [70.0]}, "cross": {"R": [99.0], "U": [12.0], "S": [49.0]}}
    line = {"R": 10.0, "U": 10.0, "S": 50.0}
    return {"presets": presets, "train_epochs": epochs,
            "verdicts": {m: {k: verdict(s * seeds, [], line[k]) for k, s in by.items()} for m, by in scores.items()}}


def test_overview_says_what_each_method_captured_how_sure_and_what_next():
    from comm_diag.probes.report.conclusions import next_step, overview, plumbing_note

    lines = overview(_result(["cpu"], [6]), gpu=False)
    text = " ".join(lines)
    assert "CoMM captures redundancy, uniqueness and synergy." in text
    assert "Cross captures redundancy but not uniqueness or synergy." in text
    assert "cpu preset, 6 epochs, one seed" in text and "one seed gives no interval" in text
    assert "--preset paper needs a GPU" in text  # a CPU's next step
    assert "on this GPU" in next_step(["cpu"], gpu=True) and "--preset cpu" in next_step(["smoke"], gpu=True)
    assert "over 3 seeds" in " ".join(overview(_result(["cpu"], [6], seeds=3), gpu=False))
    assert plumbing_note(["smoke"]) and not plumbing_note(["cpu"]) and not plumbing_note(["smoke", "cpu"])


def test_the_check_table_keeps_words_whole_at_80_columns():
    """0.5 cut 'redundan|cy' and 'cross_se|lf' in a narrow terminal; no cell word is cut now."""
    import re

    from rich.console import Console

    from comm_diag import tables

    result = {**_result(["cpu"], [6]), "rows": []}
    result["verdicts"]["LateFusionSimCLR"] = result["verdicts"]["comm"]
    result["verdicts"]["cross_self"] = result["verdicts"]["cross"]
    console = Console(width=80, record=True)
    console.print(tables.check(result, "LateFusionSimCLR"))
    text = console.export_text()
    assert max(map(len, text.splitlines())) <= 80
    words = set(re.findall(r"[\w.+]+", text))
    for word in ("redundancy", "uniqueness", "synergy", "captured", "Cross+Self", "CoMM"):
        assert word in words, word
    assert "(95% CI)" not in text  # one seed: no interval announced
