"""Oracle tests: the probes must score true factors ~100% and uninformative features at chance."""

import numpy as np
import pytest

from comm_diag.probes.metrics import auroc, balanced_accuracy, mean_ci95
from comm_diag.probes.probes import PROBES
from comm_diag.probes.tasks import task_labels
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


def test_probe__linear_probe_is_class_weighted_on_rare_synergy(oracle_dataset):
    # texture1 and color2 one-hots: the label is their XOR-like product, which an
    # unweighted probe would ignore (it predicts the 90% class); the weighted one
    # cannot, but stays near chance because the relation is not linear
    both = lambda ds, s: np.concatenate([_onehot(ds.pairs[s].factors1[:, 1]),  # noqa: E731
                                         _onehot(ds.pairs[s].factors2[:, 2])], 1)
    lin = _score("linear", oracle_dataset, both, "synergy")["balanced_accuracy"]
    assert lin < 70


def test_metrics__balanced_accuracy_and_auroc():
    y = np.array([0] * 90 + [1] * 10)
    assert balanced_accuracy(y, np.zeros(100, int)) == 50.0  # plain accuracy would be 90
    assert balanced_accuracy(y, y) == 100.0
    assert auroc(y, y.astype(float)) == 100.0 and auroc(y, np.ones(100)) == 50.0
    m, sd, ci = mean_ci95([70.0, 72.0, 74.0])
    assert m == 72.0 and sd == 2.0 and ci == pytest.approx(4.968, abs=1e-3)
