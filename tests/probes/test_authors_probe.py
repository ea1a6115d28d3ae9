"""The authors' probe (``--probe authors``): their objective solved to its optimum, their search
for C, their split; against optima known in closed form."""

import math

import numpy as np
import pytest

from comm_diag.probes.measure import authors_probe as ap
from comm_diag.probes.measure.classifiers import PROBES
from comm_diag.probes.measure.optimum import TOLERANCE


def _symmetric_problem(q: float, n: int = 1000):
    """x = +1 or -1 (half each); y = 1 with probability q where x = +1, 1 - q where x = -1,
    exactly. The optimum of mean CE + (0.5/C) ||W|| is W = [[-a], [a]], b = 0, with
    sigma(2a) = q - lam / sqrt(2) (lam = 0.5/C) when that exceeds 1/2, else a = 0."""
    x = np.repeat([1.0, -1.0], n // 2)[:, None]
    hits = int(round(q * n / 2))
    y = np.concatenate([np.r_[np.ones(hits), np.zeros(n // 2 - hits)], np.r_[np.zeros(hits), np.ones(n // 2 - hits)]])
    return x, y.astype(int)


@pytest.mark.parametrize("c", [0.5, 2.0, 100.0])
def test_authors_fit__reaches_the_known_optimum_of_the_norm_penalty(c):
    q = 0.8
    x, y = _symmetric_problem(q)
    lam = 0.5 / c
    p = q - lam / math.sqrt(2)
    a = 0.5 * math.log(p / (1 - p)) if p > 0.5 else 0.0
    w, b, record = ap.fit(x, y, c, 2)
    assert record["converged"] and record["gradient"] <= TOLERANCE
    # the logit difference has the cross-entropy's curvature: it is the optimum's to 1e-7 on any
    # CPU; the rows' common part only the norm's (lam/||W||), so a gradient of 1e-8 bounds it looser
    assert abs((w[1, 0] - w[0, 0]) / 2 - a) < 1e-7
    assert abs(w[0, 0] + w[1, 0]) < 1e-6 + 20 * TOLERANCE * max(np.linalg.norm(w), 1e-12) / lam
    np.testing.assert_allclose(b, [0.0, 0.0], atol=1e-7)


def test_authors_fit__below_a_threshold_the_optimum_is_exactly_no_weights():
    """The norm (not its square) has a corner at W = 0: for 0.5/C >= ||grad_W CE(0, b*)|| the
    optimum is W = 0 with the log class frequencies as bias; just above, it is not."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 600)
    x = rng.normal(size=(600, 5)) + np.eye(3, 5)[y]
    freq = np.bincount(y) / len(y)
    probs = np.tile(freq, (len(y), 1))  # the predictions at W = 0, b = log freq
    threshold = 0.5 / np.linalg.norm((probs - np.eye(3)[y]).T @ x / len(y))
    w, b, record = ap.fit(x, y, threshold * 0.99, 3)
    assert not w.any() and record["solver"] == "closed-form" and record["converged"]
    np.testing.assert_allclose(np.exp(b) / np.exp(b).sum(), freq, rtol=1e-12)
    w, _, record = ap.fit(x, y, threshold * 1.5, 3)
    assert np.linalg.norm(w) > 0 and record["converged"]


def test_authors_fit__a_warm_start_reaches_the_same_optimum():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 4, 800)
    x = rng.normal(size=(800, 6)) + 1.5 * np.eye(4, 6)[y]
    w1, b1, _ = ap.fit(x, y, 10.0, 4)
    w2, b2, r2 = ap.fit(x, y, 30.0, 4, init=(w1, b1))
    w3, b3, r3 = ap.fit(x, y, 30.0, 4)
    assert r2["converged"] and r3["converged"]

    def objective(w, b):  # their objective, in float64: at max |gradient| <= 1e-8 both are within
        z = x @ w.T + b  # ~g^2/curvature of the optimum, whatever the CPU's rounding on the way
        z = z - z.max(1, keepdims=True)
        ce = -(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(1))).mean()
        return ce + 0.5 / 30.0 * np.linalg.norm(w)

    assert abs(objective(w2, b2) - objective(w3, b3)) < 1e-10
    np.testing.assert_allclose(ap.AuthorsModel(w2, b2, np.arange(4)).predict_proba(x),
                               ap.AuthorsModel(w3, b3, np.arange(4)).predict_proba(x), atol=1e-4)


def test_authors_search__coarse_sweep_then_halving_on_their_grid():
    calls = []

    def score(c):  # one peak at C = 10^0.8
        calls.append(c)
        return -abs(math.log10(c) - 0.8)

    best, visited = ap.search(score)
    assert calls[:7] == list(ap.COARSE)
    fine = ap.fine_grid(1.0)
    assert len(fine) == 29 and fine[0] == pytest.approx(1e-2) and fine[-1] == pytest.approx(1e2)
    # the fine grid has 7 values a decade (29 over 4 decades): 10^(6/7) is the closest to the peak
    assert best == pytest.approx(10 ** (6 / 7))
    assert len(calls) == len(set(calls)) <= 7 + 3 * 5  # each cost fitted once
    assert list(visited)[0] == 1.0  # the coarse winner first


def test_authors_search__ties_go_to_the_smallest_coarse_cost_and_the_grid_stays_in_range():
    best, visited = ap.search(lambda c: 50.0)  # nothing to choose: their first cost
    assert best == 1e-6 and all(1e-6 * (1 - 1e-9) <= c for c in visited)


def test_authors_probe__chooses_c_by_balanced_accuracy_where_plain_accuracy_collapses():
    """On a 10%-positive label, plain accuracy prefers the C that predicts 'negative' (balanced
    accuracy 50); the authors' choice by balanced accuracy keeps the signal."""
    rng = np.random.default_rng(3)
    n = 3000
    y = (rng.random(n) < 0.1).astype(int)
    x = rng.normal(size=(n, 8))
    x[:, 0] += 1.2 * y
    idx = rng.permutation(n)
    tr, te = idx[:2000], idx[2000:]
    ours = PROBES["authors"]((x[tr], x[te]), (y[tr], y[te]), np.random.default_rng(0))
    assert ours["converged"] and all(f["converged"] for f in ours["fits"])
    unweighted = PROBES["linear_unweighted"]((x[tr], x[te]), (y[tr], y[te]), np.random.default_rng(0))
    assert unweighted["balanced_accuracy"] == 50.0 and unweighted["C"] == 1e-6  # a constant prediction
    assert ours["balanced_accuracy"] > 55 and ours["C"] > 1.0
