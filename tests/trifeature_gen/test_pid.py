import numpy as np
import pytest

import comm_diag.trifeature_gen as tg
from comm_diag.trifeature_gen.pairs import design_distribution, synergy_mapping
from comm_diag.trifeature_gen.pid import pid, reduce_joint, task_pid

H10, H_SYN = np.log2(10), 0.4689955935892812  # H(0.1) bits


def _pid(spec, pair_set, task):
    m = synergy_mapping(spec)
    return task_pid(design_distribution(spec, pair_set, m), task, spec, m)


def test_pid__defaults_on_test_distribution():
    spec = tg.DatasetSpec()
    r = _pid(spec, "test", "redundancy")
    assert r["redundant"] == pytest.approx(H10, abs=1e-4) and r["synergistic"] == pytest.approx(0, abs=1e-4)
    u = _pid(spec, "test", "uniqueness1")
    assert u["unique1"] == pytest.approx(H10, abs=1e-4) and u["redundant"] == pytest.approx(0, abs=1e-4)
    s = _pid(spec, "test", "synergy")
    assert s["synergistic"] == pytest.approx(H_SYN, abs=1e-4)
    assert s["unique1"] == pytest.approx(0, abs=1e-4) and s["unique2"] == pytest.approx(0, abs=1e-4)
    assert s["source1"] == ["texture1"] and s["source2"] == ["color2"]


def test_pid__biased_training_makes_texture_redundant_and_synergy_constant():
    spec = tg.DatasetSpec(synergy=True)
    u = _pid(spec, "train", "uniqueness1")
    assert u["redundant"] == pytest.approx(H10, abs=1e-4)  # texture1 readable from color2
    assert _pid(spec, "train", "synergy")["entropy"] == 0.0


def test_pid__partial_sharing_splits_shape_into_redundant_and_unique():
    r = _pid(tg.DatasetSpec(share_prob=0.5), "test", "redundancy")
    assert 0 < r["redundant"] < H10 and r["unique1"] > 0
    assert r["redundant"] + r["unique1"] + r["unique2"] + r["synergistic"] == pytest.approx(H10, abs=1e-3)


def test_pid__xor_is_one_bit_of_synergy():
    p = np.zeros((2, 2, 2))
    for a in range(2):
        for b in range(2):
            p[a, b, a ^ b] = 0.25
    out = pid(p, 1)
    assert out["synergistic"] == pytest.approx(1.0, abs=1e-4) and out["redundant"] == pytest.approx(0, abs=1e-4)


def test_reduce_joint__drops_an_independent_block_spanning_both_sources():
    rng = np.random.default_rng(0)
    block = rng.random((3, 3))
    block /= block.sum()  # dependent pair (a1, b2), independent of the rest
    core = np.zeros((2, 2, 2))
    core[0, 0, 0] = core[1, 1, 1] = 0.5  # x1 = x2 = T
    p = np.einsum("ab,xyt->axbyt", block, core)  # axes a1, x1, b2, x2, T
    reduced, kept = reduce_joint(p)
    assert kept == [1, 3] and reduced.shape == (2, 2, 2)


@pytest.mark.parametrize("global_seed", [0, 1, 2, 3])
def test_pid__and_gate_is_exact_whatever_the_global_random_state(global_seed):
    np.random.seed(global_seed)  # the solver must not depend on it (dit's scipy solver did)
    p = np.zeros((2, 2, 2))
    for a in range(2):
        for b in range(2):
            p[a, b, a & b] = 0.25
    out = pid(p, 1)
    # BROJA of AND: I(T; X1, X2) = 0.811 bits = 0.311 redundant + 0.5 synergistic, no unique bits
    assert out["redundant"] == pytest.approx(0.3113, abs=1e-3) and out["synergistic"] == pytest.approx(0.5, abs=1e-3)
    assert out["unique1"] == pytest.approx(0, abs=1e-3) and out["unique2"] == pytest.approx(0, abs=1e-3)
