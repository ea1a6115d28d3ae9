"""Probes on frozen features. One signature for all, in the style of disentanglement_lib:

    probe(features: (X_train, X_test), labels: (y_train, y_test), rng) -> dict of scores

with "balanced_accuracy" (%) and its standard error over the test pairs "ba_se" always,
"auroc" (%) for binary labels, "bits", the lower bound H(T) - CE(T | Z) on the information
the representation holds about the label, from the probe's probabilities calibrated on its
held-out split (temperature and class offsets, never on test), and "fits", the record of
every logistic fit (solver, C, iterations, final max |gradient|, converged: the stated
optimum of ``probes.measure.optimum``). The
linear and MLP probes are class-weighted (the synergy label is ~10% positive: an
unweighted probe predicts "negative" and pins balanced accuracy at 50%);
``linear_unweighted`` is unweighted and chosen on plain accuracy, on purpose, to show that
collapse; ``authors`` is the CoMM authors' probe as they run it (``authors_probe``).
"""

from __future__ import annotations

import functools
import zlib
from typing import Callable, Generator, Optional, Sequence, Union

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from comm_diag.probes.measure import authors_probe
from comm_diag.probes.measure.host_fit import LogisticFit, MLPFit, SklearnBackend
from comm_diag.probes.measure.metrics import (auroc, balanced_accuracy, balanced_accuracy_se, calibrated,
                                              fit_calibration, information_bits)

Pair = tuple[np.ndarray, np.ndarray]
Probe = Callable[[Pair, Pair, np.random.Generator], dict]

C_GRID = (0.1, 1.0, 10.0)
HOLDOUT = 0.25  # fraction of probe_train held out to choose C
SWEEP_MAX = 4000  # the C sweep fits on at most this many samples (fits dominate probe time)
SKLEARN = SklearnBackend()  # the default backend: the numbers of every earlier version


def probe_rng(seed: int, task: str, probe: str) -> np.random.Generator:
    """The random generator of one probe fit, keyed by the task's and the probe's names (not
    their positions: a task added before synergy leaves synergy's numbers as they were)."""
    return np.random.default_rng([seed, zlib.crc32(task.encode()), zlib.crc32(probe.encode())])


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


def _scores(y: np.ndarray, clf, x: np.ndarray, held: tuple, fits: Sequence) -> dict:
    """The test scores of the fitted ``clf`` on (x, y): balanced accuracy and its standard
    error, AUROC for two classes, the bits of its probabilities calibrated on ``held``
    ((held-out probabilities of the model fitted without them, held-out labels): the
    chosen candidate's), and the records of ``fits`` (the fitted logistic models)."""
    proba = clf.predict_proba(x)
    pred = clf.classes_[proba.argmax(1)]  # predict() would compute the probabilities again
    records = [m.fit_record_ for m in fits if getattr(m, "fit_record_", None) is not None]
    out = {"balanced_accuracy": balanced_accuracy(y, pred), "ba_se": balanced_accuracy_se(y, pred),
           "bits": information_bits(y, calibrated(proba, fit_calibration(*held, clf.classes_)), clf.classes_),
           "fits": records, "converged": all(r["converged"] for r in records)}
    if proba.shape[1] == 2:
        out["auroc"] = auroc(y, proba[:, 1])
    return out


def _constant(y_train: np.ndarray, y_test: np.ndarray) -> dict | None:
    """Features or labels that carry nothing: the probe predicts the one training class."""
    if len(np.unique(y_train)) < 2:
        pred = np.full_like(y_test, y_train[0])
        out = {"balanced_accuracy": balanced_accuracy(y_test, pred), "ba_se": balanced_accuracy_se(y_test, pred),
               "bits": 0.0, "fits": [], "converged": True}
        if len(np.unique(y_test)) == 2:
            out["auroc"] = 50.0
        return out
    return None


def _standardised(xtr: np.ndarray, xte: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scaler = StandardScaler().fit(xtr)
    return scaler.transform(xtr), scaler.transform(xte)


# A probe is written once, as a protocol: a generator that yields each fit it needs (a
# ``LogisticFit`` or an ``MLPFit``, answered with the fitted models) and returns its scores.
# ``run_protocol`` answers one protocol's fits one by one (every probe on scikit-learn);
# ``run_protocols`` advances many protocols together and answers each round's logistic fits
# in one call (``backend.logistic_many``: on a GPU one batched solve for every task x
# representation x C of a model).
Protocol = Generator[Union[LogisticFit, MLPFit], list, dict]


def _answer(request, backend) -> list:
    if isinstance(request, LogisticFit):
        return backend.logistic_many([request])[0]
    return [backend.mlp(request.x, request.y, request.hidden, request.seed)]


def _threads(backend, threads: Optional[int]) -> Optional[int]:
    """scikit-learn's fits on ``threads`` BLAS/OpenMP threads (on probe-sized problems lbfgs
    ran 3x faster with one thread than with two: benchmarks/bench_probe.py); the torch
    solver's batched products on every thread torch has (None: no limit)."""
    return threads if backend.name == "sklearn" else None


def run_protocol(protocol: Protocol, backend=SKLEARN, threads: Optional[int] = 1) -> dict:
    """A protocol's scores, its fits answered one at a time (scikit-learn's on ``threads``
    threads, ``_threads``)."""
    with threadpool_limits(_threads(backend, threads)):
        answer = None
        while True:
            try:
                request = protocol.send(answer)
            except StopIteration as done:
                return done.value
            answer = _answer(request, backend)


def run_protocols(protocols: Sequence[Protocol], backend) -> list[dict]:
    """The scores of every protocol, the same as ``run_protocol`` gives each (each draws from
    its own generator, so advancing them together changes no draw): in rounds, each round's
    logistic fits answered by one ``backend.logistic_many`` call, the MLPs one by one."""
    results: list[Optional[dict]] = [None] * len(protocols)
    pending: dict[int, object] = {}

    def advance(i: int, answer) -> None:
        try:
            pending[i] = protocols[i].send(answer)
        except StopIteration as done:
            results[i] = done.value

    with threadpool_limits(_threads(backend, 1)):
        for i in range(len(protocols)):
            advance(i, None)
        while pending:
            round_, pending = pending, {}
            logistic = [i for i, r in round_.items() if isinstance(r, LogisticFit)]
            for i, fitted in zip(logistic, backend.logistic_many([round_[i] for i in logistic])):
                advance(i, fitted)
            for i in (i for i in round_ if i not in logistic):
                advance(i, _answer(round_[i], backend))
    return results


def probe_row(probe: str, task: str, rep: str, seed: int, features: Pair, labels: Pair,
              exact_bits: Optional[float], backend=SKLEARN) -> dict:
    """One probe's row of probes.csv (without method and seed): the scores of ``probe`` on
    (task, representation) and its bits as a fraction of the task's ``exact_bits``. Its
    random generator is its own, keyed by names (``probe_rng``), so the order of fits is
    free, and every argument is plain data: a worker process runs it (``fit_workers``)."""
    return score_row(probe, task, rep, PROBES[probe](features, labels, probe_rng(seed, task, probe), backend=backend),
                     exact_bits)


def score_row(probe: str, task: str, rep: str, s: dict, exact_bits: Optional[float]) -> dict:
    bits = s.get("bits")
    return {"task": task, "probe": probe, "representation": rep,
            "balanced_accuracy": s["balanced_accuracy"], "ba_se": s.get("ba_se"), "auroc": s.get("auroc"),
            "bits": bits, "bits_fraction": bits / exact_bits if bits is not None and exact_bits else None,
            "converged": s.get("converged"), "fits": s.get("fits", [])}


def as_probe(protocol: Callable[..., Protocol]) -> Probe:
    """The probe function of a protocol: ``probe(features, labels, rng, backend=..., **settings)``."""
    @functools.wraps(protocol)
    def probe(features: Pair, labels: Pair, rng: np.random.Generator, backend=SKLEARN, **settings) -> dict:
        return run_protocol(protocol(features, labels, rng, **settings), backend)
    return probe


def linear_protocol(features: Pair, labels: Pair, rng: np.random.Generator, c_grid=C_GRID) -> Protocol:
    """Class-weighted logistic regression on standardised features, every fit to the stated
    optimum (``optimum``); C chosen by balanced accuracy on a stratified held-out quarter of
    the training features (fitting on at most SWEEP_MAX of the rest), then refitted on all of
    them from the chosen fit's weights and scored on the test features."""
    (xtr, xte), (ytr, yte) = features, labels
    if (const := _constant(ytr, yte)) is not None:
        return const
    xtr, xte, seed, (a, b, ya, yb) = _prepared(xtr, xte, ytr, rng)
    if len(a) > SWEEP_MAX:
        a, _, ya, _ = train_test_split(a, ya, train_size=SWEEP_MAX, stratify=ya, random_state=seed)
    sweep = yield LogisticFit(a, ya, tuple(c_grid), seed)
    k = _best(sweep, b, yb)
    clf = (yield LogisticFit(xtr, ytr, (c_grid[k],), seed, init=(sweep[k].coef_, sweep[k].intercept_)))[0]
    return {**_scores(yte, clf, xte, (sweep[k].predict_proba(b), yb), [*sweep, clf]), "C": c_grid[k]}


def _best(models: Sequence, x: np.ndarray, y: np.ndarray, score=balanced_accuracy) -> int:
    """The index of the model of best ``score`` on (x, y); the first of equal scores."""
    return int(np.argmax([score(y, m.predict(x)) for m in models]))


def _holdout(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, ...]:
    """(fit x, held-out x, fit y, held-out y): the stratified held-out quarter that chooses
    hyperparameters (a plain split when a class has a single sample)."""
    strat = y if np.unique(y, return_counts=True)[1].min() >= 2 else None
    return tuple(train_test_split(x, y, test_size=HOLDOUT, stratify=strat, random_state=seed))


def _prepared(xtr: np.ndarray, xte: np.ndarray, ytr: np.ndarray, rng: np.random.Generator) -> tuple:
    """What the linear and MLP probes start from: the standardised features, the fit's seed
    (drawn from ``rng``) and the held-out quarter split of the training features."""
    xtr, xte = _standardised(xtr, xte)
    seed = _seed(rng)
    return xtr, xte, seed, _holdout(xtr, ytr, seed)


def _balanced(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Classes balanced by resampling with replacement (MLPClassifier has no class weights)."""
    classes, counts = np.unique(y, return_counts=True)
    idx = np.concatenate([rng.choice(np.flatnonzero(y == k), counts.max(), replace=True) for k in classes])
    return x[idx], y[idx]


def mlp_protocol(features: Pair, labels: Pair, rng: np.random.Generator, hidden: int = 256) -> Protocol:
    """What a non-linear reader recovers: the better, on the held-out quarter of the
    training features (balanced accuracy), of a one-hidden-layer MLP (ReLU, Adam, fitted
    on classes balanced by resampling, early stopping on a 10% split from ``backends.EARLY_STOP_MIN``
    samples) and the linear probe's family (class-weighted logistic regression, C in
    C_GRID, to the stated optimum), both fitted on the other three quarters; a chosen
    linear probe is refitted on all training features (as ``linear_probe``), a chosen MLP is
    kept as fitted; scored on the test ones. The linear solution is in the MLP's family, so on
    the same features "recoverable" does not read below "fused" because an MLP under-fitted a
    small set (a 512-pair probe set read 57% where the linear probe read 100%); it can read
    below it on test by the choice itself (the held-out quarter preferred the other
    candidate), which the conclusions say. Nothing is chosen on test pairs."""
    (xtr, xte), (ytr, yte) = features, labels
    if (const := _constant(ytr, yte)) is not None:
        return const
    xtr, xte, seed, (a, b, ya, yb) = _prepared(xtr, xte, ytr, rng)
    sweep = yield LogisticFit(a[:SWEEP_MAX], ya[:SWEEP_MAX], C_GRID, seed)
    k = _best(sweep, b, yb)
    mlp = (yield MLPFit(*_balanced(a, ya, rng), hidden, seed))[0]
    if balanced_accuracy(yb, sweep[k].predict(b)) > balanced_accuracy(yb, mlp.predict(b)):
        clf = (yield LogisticFit(xtr, ytr, (C_GRID[k],), seed, init=(sweep[k].coef_, sweep[k].intercept_)))[0]
        chosen, held = "linear", sweep[k]
    else:  # not refitted: a second MLP fit would double the probe's time (its own early stopping holds out 10% too)
        clf, chosen, held = mlp, "mlp", mlp
    return {**_scores(yte, clf, xte, (held.predict_proba(b), yb), [*sweep, clf]), "chosen": chosen}


UNWEIGHTED_C_GRID = tuple(10.0 ** k for k in range(-6, 7))  # 1e-6 ... 1e6
UNWEIGHTED_SPLIT = 0.4  # held out to choose C


def linear_unweighted_protocol(features: Pair, labels: Pair, rng: np.random.Generator) -> Protocol:
    """An unweighted probe chosen on plain accuracy, on purpose: logistic regression (scikit-learn's
    squared penalty) on the raw features, C chosen in 1e-6 ... 1e6 by plain accuracy on a
    60/40 split, refitted (every fit to the stated optimum). On the ~10%-positive synergy label
    it predicts "negative" unless the signal is strong, which pins balanced accuracy at 50%: the
    collapse class weights (or a choice of C by balanced accuracy, as the authors' probe makes,
    ``authors_protocol``) avoid."""
    (xtr, xte), (ytr, yte) = features, labels
    if (const := _constant(ytr, yte)) is not None:
        return const
    seed = _seed(rng)
    a, b, ya, yb = train_test_split(xtr, ytr, test_size=UNWEIGHTED_SPLIT, random_state=seed)
    sweep = yield LogisticFit(a, ya, UNWEIGHTED_C_GRID, seed, balanced=False)
    k = _best(sweep, b, yb, score=lambda y, pred: (pred == y).mean())
    clf = (yield LogisticFit(xtr, ytr, (UNWEIGHTED_C_GRID[k],), seed, balanced=False,
                             init=(sweep[k].coef_, sweep[k].intercept_)))[0]
    return {**_scores(yte, clf, xte, (sweep[k].predict_proba(b), yb), [*sweep, clf]), "C": UNWEIGHTED_C_GRID[k]}


def authors_protocol(features: Pair, labels: Pair, rng: np.random.Generator) -> Protocol:
    """The CoMM authors' probe as they run it (``authors_probe``): their objective (unweighted,
    the norm of W as penalty, bias free) on the raw features, each fit to its optimum; C chosen
    by balanced accuracy on a stratified 60/40 split by their coarse sweep and halving search,
    refitted on all training features. Its fits are solved here, in float64 on the host, on
    every backend (the objective is not the one the backends solve)."""
    yield from ()  # a protocol is a generator; this one asks its backend for nothing
    (xtr, xte), (ytr, yte) = features, labels
    if (const := _constant(ytr, yte)) is not None:
        return const
    classes, codes = np.unique(ytr, return_inverse=True)
    k, seed = len(classes), _seed(rng)
    strat = codes if np.bincount(codes).min() >= 2 else None
    a, b, ya, yb = train_test_split(xtr, codes, train_size=authors_probe.FIT_FRACTION, stratify=strat,
                                    random_state=seed)
    fitted: dict[float, authors_probe.AuthorsModel] = {}

    def score(c: float) -> float:
        near = min(fitted, key=lambda v: abs(np.log(v / c)), default=None)  # a warm start: same optimum
        w, bias, record = authors_probe.fit(a, ya, c, k, init=None if near is None else
                                            (fitted[near].coef_, fitted[near].intercept_))
        fitted[c] = authors_probe.AuthorsModel(w, bias, classes, record)
        return balanced_accuracy(classes[yb], fitted[c].predict(b))

    best, _ = authors_probe.search(score)
    w, bias, record = authors_probe.fit(xtr, codes, best, k, init=(fitted[best].coef_, fitted[best].intercept_))
    clf = authors_probe.AuthorsModel(w, bias, classes, record)
    held = (fitted[best].predict_proba(b), classes[yb])
    return {**_scores(yte, clf, xte, held, [*fitted.values(), clf]), "C": best}


PROTOCOLS: dict[str, Callable[..., Protocol]] = {
    "linear": linear_protocol, "mlp": mlp_protocol, "linear_unweighted": linear_unweighted_protocol,
    # the authors' protocol: their probe on features of randomly cropped images
    # (probes.measure.suite extracts those for it), reported under its own name
    "authors": authors_protocol}
PROBES: dict[str, Probe] = {name: as_probe(protocol) for name, protocol in PROTOCOLS.items()}
linear_probe, mlp_probe, linear_unweighted_probe = PROBES["linear"], PROBES["mlp"], PROBES["linear_unweighted"]
AUTHORS_CROP = (0.5, 1.0)  # RandomResizedCrop's scale on probe and test images in the authors' code
AUTHORS_REPRESENTATION = "fused"  # the one their probe reads: the CLS output (ours after its LayerNorm)
