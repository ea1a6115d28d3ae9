from comm_diag.probes.verdict import verdict


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
