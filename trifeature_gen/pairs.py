"""Split, synergy mapping and pair sampling: the bimodal half of the protocol.

A pair set is a mixture of uniform distributions over "allowed" pairs of
distinct images of one split. Each component is a set of constraints (share
the shared attribute; obey the synergy mapping) with a weight, e.g. with
``share_prob = p`` a pair is drawn among those sharing the attribute with
probability p and among all pairs otherwise. Sampling is without replacement
inside each component; ``pair_distribution`` gives the exact joint law of the
pair's factors that this sampler draws from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from comm_diag.errors import InputError
from comm_diag.trifeature_gen.factors import FACTOR_SIZES, all_combinations, factor_index
from comm_diag.trifeature_gen.spec import (COMBINATIONS, STREAM_MAPPING, STREAM_PAIRS, STREAM_SPLIT, PAIR_SETS,
                                           DatasetSpec)



@dataclass(frozen=True)
class Images:
    """The images of one split: factor codes Nx3, view number (N,), global render ids (N,)."""

    factors: np.ndarray
    views: np.ndarray
    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.factors)

    @property
    def codes(self) -> np.ndarray:
        """Flat combination code shape*100 + texture*10 + color: (N,)."""
        return self.factors @ np.array([FACTOR_SIZES[1] * FACTOR_SIZES[2], FACTOR_SIZES[2], 1])


def split_images(spec: DatasetSpec) -> dict[str, Images]:
    """Shuffle the 1000 combinations, split them, repeat each by its number of views.

    Global render ids number train images first, then test images, so no two
    images of a dataset share a random stream.
    """
    combos = all_combinations()
    perm = spec.rng(STREAM_SPLIT).permutation(len(combos))
    n_train = int(round(spec.train_fraction * len(combos)))
    parts = {"train": (np.sort(perm[:n_train]), spec.views), "test": (np.sort(perm[n_train:]), spec.test_views)}
    out, offset = {}, 0
    for split, (rows, views) in parts.items():
        factors = np.repeat(combos[rows], views, axis=0)
        view = np.tile(np.arange(views), len(rows))
        out[split] = Images(factors, view, offset + np.arange(len(factors)))
        offset += len(factors)
    return out


def synergy_mapping(spec: DatasetSpec) -> np.ndarray:
    """The bijection m: value of synergy_src -> value of synergy_tgt, as a permutation (10,).

    Drawn from its own stream, so training and probing always agree on it.
    """
    n_src = FACTOR_SIZES[factor_index(spec.synergy_src)]
    n_tgt = FACTOR_SIZES[factor_index(spec.synergy_tgt)]
    assert n_src == n_tgt, "synergy attributes must have the same number of values"
    return spec.rng(STREAM_MAPPING).permutation(n_tgt)


def synergy_label(f1: np.ndarray, f2: np.ndarray, spec: DatasetSpec, mapping: np.ndarray) -> np.ndarray:
    """1 iff synergy_tgt(x2) == m(synergy_src(x1)): f1, f2 (..., 3) codes -> (...) int64."""
    src, tgt = factor_index(spec.synergy_src), factor_index(spec.synergy_tgt)
    return (f2[..., tgt] == mapping[f1[..., src]]).astype(np.int64)


def components(spec: DatasetSpec, pair_set: str) -> list[tuple[float, bool, bool]]:
    """The mixture a pair set is drawn from: (weight, must_share, must_obey) per component."""
    if pair_set not in PAIR_SETS:
        raise InputError(f"unknown pair set {pair_set!r}; choose from {', '.join(PAIR_SETS)}")
    p = spec.share_prob_of(pair_set)
    share = [(p, True), (1.0 - p, False)]
    biased = pair_set == "train" and spec.synergy
    obey = [(spec.synergy_prob, True), (1.0 - spec.synergy_prob, False)] if biased else [(1.0, False)]
    return [(ws * wo, s, o) for ws, s in share for wo, o in obey if ws * wo > 0]


def allowed(images: Images, spec: DatasetSpec, must_share: bool, must_obey: bool,
            mapping: np.ndarray, distinct: bool = True) -> np.ndarray:
    """Bool NxN matrix: which ordered pairs (i1, i2) a component allows (i1 != i2 if distinct)."""
    f = images.factors
    ok = ~np.eye(len(f), dtype=bool) if distinct else np.ones((len(f), len(f)), dtype=bool)
    if must_share:
        k = factor_index(spec.shared)
        ok &= f[:, None, k] == f[None, :, k]
    if must_obey:
        ok &= synergy_label(f[:, None, :], f[None, :, :], spec, mapping).astype(bool)
    return ok


def _allocate(n: int, weights: list[float]) -> list[int]:
    """Split n into integer counts proportional to weights (largest remainder)."""
    raw = np.array(weights) * n
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts))[: n - counts.sum()]:
        counts[i] += 1
    return counts.tolist()


DEFAULT_TEST_PAIRS = DatasetSpec.__dataclass_fields__["test_pairs"].default


def sample_pairs(images: Images, spec: DatasetSpec, pair_set: str, n: int,
                 mapping: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Draw n pairs for one set: returns (Px2 int64 image indices, warnings).

    Each component gives its share of n, sampled without replacement among its
    allowed pairs; a component with fewer allowed pairs than asked gives all of
    them and a warning says so (P < n then).
    """
    rng = spec.rng(STREAM_PAIRS, PAIR_SETS.index(pair_set))
    comps = components(spec, pair_set)
    picked, warnings = [], []
    for (w, share, obey), k in zip(comps, _allocate(n, [c[0] for c in comps])):
        candidates = np.flatnonzero(allowed(images, spec, share, obey, mapping))
        if k > len(candidates):
            # the default test set is "up to 4,096, clamped to those allowed" (spec): using all of
            # them is what it asks for, not a surprise to warn about (0.8 warned at every generate)
            if not (pair_set == "test" and n == DEFAULT_TEST_PAIRS):
                warnings.append(f"{pair_set}: asked for {k} pairs but only {len(candidates)} are allowed "
                                f"(share={share}, obey={obey}); using all {len(candidates)}")
            k = len(candidates)
        picked.append(rng.choice(candidates, size=k, replace=False))
    flat = np.concatenate(picked) if picked else np.zeros(0, np.int64)
    flat = flat[rng.permutation(len(flat))]  # components interleaved, not in blocks
    return np.stack(np.divmod(flat, len(images)), axis=1).astype(np.int64), warnings


def all_pairs(images: Images, spec: DatasetSpec, mapping: np.ndarray) -> np.ndarray:
    """Every ordered pair of the images that shares the shared attribute, an image with
    itself included, in row-major order: Px2 int64 (the authors' test set: with one render
    per combination its law is the design law, ``design_distribution``)."""
    return np.argwhere(allowed(images, spec, True, False, mapping, distinct=False)).astype(np.int64)


def pair_distribution(images: Images, spec: DatasetSpec, pair_set: str, mapping: np.ndarray,
                      distinct: bool = True) -> np.ndarray:
    """Exact law of (factors of x1, factors of x2) under the sampler: 10x10x10x10x10x10.

    Axes: shape1, texture1, color1, shape2, texture2, color2; sums to 1. Each
    component is uniform over its allowed pairs, weighted by its mixture weight.
    """
    codes = images.codes
    joint = np.zeros(COMBINATIONS * COMBINATIONS)
    for w, share, obey in components(spec, pair_set):
        i1, i2 = np.nonzero(allowed(images, spec, share, obey, mapping, distinct))
        if len(i1):
            joint += w / len(i1) * np.bincount(codes[i1] * COMBINATIONS + codes[i2], minlength=COMBINATIONS**2)
    joint /= joint.sum()
    return joint.reshape(FACTOR_SIZES + FACTOR_SIZES)


def design_distribution(spec: DatasetSpec, pair_set: str, mapping: np.ndarray) -> np.ndarray:
    """The sampler's law over all 1000 combinations with uniform, independent factors
    (the limit of many views): 10x10x10x10x10x10, axes as in ``pair_distribution``."""
    combos = all_combinations()
    everything = Images(combos, np.zeros(len(combos), np.int64), np.arange(len(combos)))
    return pair_distribution(everything, spec, pair_set, mapping, distinct=False)
