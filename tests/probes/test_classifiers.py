"""Oracle tests: the probes must score true factors ~100% and uninformative features at chance."""

import numpy as np
import pytest

from comm_diag.probes.measure.metrics import auroc, balanced_accuracy, entropy_bits, information_bits, mean_ci95
from comm_diag.probes.measure.classifiers import PROBES
from comm_diag.probes.measure.tasks import ground_truth_bits, task_labels
import comm_diag.trifeature_gen as tg


@pytest.fixture(scope="module")
def oracle_dataset(tmp_path_factory):
    """Enough probe pairs (3,000) that the MLP probe uses its early-stopping path."""
    out = tmp_path_factory.mktemp("oracle") / "ds"
    tg.generate(tg.DatasetSpec(size=32, train_pairs=64, probe_pairs=3000, test_pairs=1000), out)
    return tg.load(out)


def _onehot(codes: np.ndarray, k: int = 10) -> np.ndarray:
    return np.eye(k)[codes].astype(np.float32)


def _factor_features(ds, pair_set):
    p = ds.pairs[pair_set]
    return np.concatenate([_onehot(p.factors1[:, j]) for j in range(3)] +
                          [_onehot(p.factors2[:, j]) for j in range(3)], axis=1)


def _score(probe, ds, fn, task, seed=0):
    feats = (fn(ds, "probe_train"), fn(ds, "test"))
    labels = (task_labels(ds, "probe_train")[task], task_labels(ds, "test")[task])
    return PROBES[probe](feats, labels, np.random.default_rng(seed))


@pytest.mark.parametrize("probe", ["linear", "mlp"])
@pytest.mark.parametrize("task", ["redundancy", "uniqueness1", "uniqueness2"])
def test_probe__true_factors_score_near_100(oracle_dataset, probe, task):
    assert _score(probe, oracle_dataset, _factor_features, task)["balanced_accuracy"] > 95


@pytest.mark.parametrize("probe", ["linear", "mlp"])
def test_probe__constant_features_score_chance(oracle_dataset, probe):
    const = lambda ds, s: np.ones((len(ds.pairs[s]), 4), np.float32)  # noqa: E731
    assert _score(probe, oracle_dataset, const, "redundancy")["balanced_accuracy"] == pytest.approx(10, abs=3)
    s = _score(probe, oracle_dataset, const, "synergy")
    assert s["balanced_accuracy"] == pytest.approx(50, abs=3)


@pytest.mark.parametrize("probe", ["linear", "mlp"])
def test_probe__feature_encoding_the_synergy_label_scores_near_100(oracle_dataset, probe):
    oracle = lambda ds, s: ds.pairs[s].synergy[:, None].astype(np.float32)  # noqa: E731
    s = _score(probe, oracle_dataset, oracle, "synergy")
    assert s["balanced_accuracy"] > 95 and s["auroc"] > 95


def test_probe__one_modality_alone_scores_chance_on_synergy(oracle_dataset):
    x1_only = lambda ds, s: np.concatenate([_onehot(ds.pairs[s].factors1[:, j]) for j in range(3)], 1)  # noqa
    s = _score("linear", oracle_dataset, x1_only, "synergy")
    assert s["balanced_accuracy"] == pytest.approx(50, abs=8)


def _noisy_synergy(ds, s, sigma=1.5):
    """The synergy label plus Gaussian noise: weakly informative, so that only a class-weighted
    probe ever predicts the 10% positive class."""
    rng = np.random.default_rng(len(ds.pairs[s]))
    return (ds.pairs[s].synergy + sigma * rng.standard_normal(len(ds.pairs[s])))[:, None].astype(np.float32)


def test_probe__class_weighting_sees_a_rare_label_that_the_unweighted_probe_cannot(oracle_dataset):
    # Bayes-optimal with the label frequencies: predict positive only where x > 5.4 (almost
    # never), so the authors' unweighted probe collapses to exactly 50% balanced accuracy;
    # class-weighted, the threshold is x > 0.5 and balanced accuracy ~63%. A probe that always
    # predicts the majority class fails the first assertion.
    weighted = _score("linear", oracle_dataset, _noisy_synergy, "synergy")
    unweighted = _score("linear_unweighted", oracle_dataset, _noisy_synergy, "synergy")
    assert weighted["balanced_accuracy"] > 58
    assert unweighted["balanced_accuracy"] == pytest.approx(50.0, abs=0.5)
    assert unweighted["auroc"] == pytest.approx(weighted["auroc"], abs=2)  # the ranking is the same


def test_probe__texture1_color2_one_hots_do_not_make_synergy_linear(oracle_dataset):
    # the label is [colour2 == m(texture1)], a conjunction no linear score of the two one-hots
    # separates; an MLP on the same features computes it
    both = lambda ds, s: np.concatenate([_onehot(ds.pairs[s].factors1[:, 1]),  # noqa: E731
                                         _onehot(ds.pairs[s].factors2[:, 2])], 1)
    assert _score("linear", oracle_dataset, both, "synergy")["balanced_accuracy"] < 60
    assert _score("mlp", oracle_dataset, both, "synergy")["balanced_accuracy"] > 90


# the stated tolerance: the linear probe's bound is within 5% of the exact bits; the MLP's
# probabilities are less confident (early stopping), so its bound is looser: at least 70%; the
# authors' probe picks the smallest C of best accuracy, whose probabilities are far from
# confident: its bound is valid but weak (at least 10%)
@pytest.mark.parametrize("probe, least", [("linear", 0.95), ("mlp", 0.70), ("linear_unweighted", 0.10)])
def test_probe__bits_of_true_factors_reach_the_exact_pid_and_constants_give_zero(oracle_dataset, probe, least):
    truth = ground_truth_bits(oracle_dataset)  # 3.32 bits of shape, redundant
    s = _score(probe, oracle_dataset, _factor_features, "redundancy")
    assert least * truth["redundancy"] <= s["bits"] <= truth["redundancy"] + 1e-6
    const = lambda ds, s: np.ones((len(ds.pairs[s]), 4), np.float32)  # noqa: E731
    assert _score(probe, oracle_dataset, const, "redundancy")["bits"] == pytest.approx(0.0, abs=0.02)


def test_information_bits__formula_and_prior_correction():
    y = np.array([0] * 90 + [1] * 10)
    classes = np.array([0, 1])
    perfect = np.eye(2)[y]
    assert information_bits(y, perfect, classes) == pytest.approx(entropy_bits(y)) == pytest.approx(0.469, abs=1e-3)
    # a class-weighted probe that knows nothing says 50/50; corrected to the 90/10 prior it is
    # exactly the prior, whose cross-entropy is H(T): 0 bits
    flat = np.full((100, 2), 0.5)
    assert information_bits(y, flat, classes, train_prior=np.array([0.9, 0.1])) == pytest.approx(0.0, abs=1e-9)
    assert information_bits(y, flat, classes) == 0.0  # uncorrected, the bound is negative and reads 0


def test_metrics__balanced_accuracy_and_auroc():
    y = np.array([0] * 90 + [1] * 10)
    assert balanced_accuracy(y, np.zeros(100, int)) == 50.0  # plain accuracy would be 90
    assert balanced_accuracy(y, y) == 100.0
    assert auroc(y, y.astype(float)) == 100.0 and auroc(y, np.ones(100)) == 50.0
    m, sd, ci = mean_ci95([70.0, 72.0, 74.0])
    assert m == 72.0 and sd == 2.0 and ci == pytest.approx(4.968, abs=1e-3)


def test_mlp_probe__never_below_the_linear_probe_on_a_small_probe_set(tmp_path):
    # 512 probe pairs at 32 px (the smoke preset's size): on this outer product of texture(x1)
    # and colour(x2) the 0.3 MLP probe alone read 97.3 and 98.4 (seeds 0, 1) where the linear
    # probe reads 100, so this test fails on it. The linear solution is in the MLP probe's
    # family now, chosen on the held-out quarter of probe_train.
    tg.generate(tg.DatasetSpec(size=32, train_pairs=64, probe_pairs=512, test_pairs=512), tmp_path / "ds")
    ds = tg.load(tmp_path / "ds")
    outer = lambda ds, s: np.einsum("pi,pj->pij", _onehot(ds.pairs[s].factors1[:, 1]),  # noqa: E731
                                    _onehot(ds.pairs[s].factors2[:, 2])).reshape(len(ds.pairs[s]), 100)
    for seed in (0, 1):
        linear = _score("linear", ds, outer, "synergy", seed)["balanced_accuracy"]
        mlp = _score("mlp", ds, outer, "synergy", seed)
        assert linear > 95 and mlp["balanced_accuracy"] >= linear - 1, (linear, mlp)


def test_probes__choose_nothing_on_test_labels(oracle_dataset):
    # C (linear) and the family member (MLP) are chosen on probe_train only: permuting the test
    # labels changes the score, never the choice
    feats = (_factor_features(oracle_dataset, "probe_train"), _factor_features(oracle_dataset, "test"))
    ytr, yte = task_labels(oracle_dataset, "probe_train")["uniqueness1"], task_labels(oracle_dataset, "test")["uniqueness1"]
    shuffled = np.random.default_rng(0).permutation(yte)
    a = PROBES["linear"](feats, (ytr, yte), np.random.default_rng(0))
    b = PROBES["linear"](feats, (ytr, shuffled), np.random.default_rng(0))
    assert a["C"] == b["C"] and a["balanced_accuracy"] > 90 > b["balanced_accuracy"] + 50


def test_bits_of_a_representation_holding_the_synergy_label_reach_most_of_the_exact_bits():
    """0.8 read 0.00 bits beside 75% balanced accuracy: a class-weighted probe's probabilities,
    overconfident on the rare positive class, made the bound vacuous. Calibrated on the probe's
    held-out split, a representation that holds the label (plus noise features) gets >= 80% of
    H(0.1) = 0.469 bits, the exact synergy bits of the unbiased law."""
    from comm_diag.probes.measure.classifiers import linear_probe

    rng = np.random.default_rng(3)

    def sample(n):
        y = (rng.random(n) < 0.1).astype(int)
        return np.column_stack([y + 0.05 * rng.normal(size=n), rng.normal(size=(n, 15))]), y
    (xtr, ytr), (xte, yte) = sample(4000), sample(4000)
    s = linear_probe((xtr, xte), (ytr, yte), np.random.default_rng(0))
    exact = -(0.1 * np.log2(0.1) + 0.9 * np.log2(0.9))
    assert s["balanced_accuracy"] > 99 and s["bits"] >= 0.8 * exact, s
    # a representation with nothing in it stays near 0 bits (the calibration is not fitted on test)
    noise = linear_probe((rng.normal(size=(4000, 16)), rng.normal(size=(4000, 16))), (ytr, yte), np.random.default_rng(0))
    assert noise["bits"] < 0.02
