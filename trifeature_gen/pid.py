"""Exact partial information decomposition of every task, from the pair law itself.

For a task with label T and sources X1 = (shape1, texture1, color1),
X2 = (shape2, texture2, color2), the bivariate PID splits I(T; X1, X2) into
redundant, unique-1, unique-2 and synergistic bits. We use the BROJA measure
(Bertschinger et al., 2014) as implemented by ``dit``.

BROJA cannot be run on 1000-valued sources, so the law is first reduced
exactly: a block of variables that is jointly independent of the task label
and of every other variable is dropped. That leaves the BROJA optimum unchanged
(any feasible Q extended by the independent block's own law stays feasible and
keeps every mutual information), and it is what makes the problem small: for
the default synergy task only (texture1, color2, T) remain.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np

from comm_diag.trifeature_gen.factors import FACTOR_NAMES, FACTOR_SIZES, factor_index
from comm_diag.trifeature_gen.pairs import design_distribution
from comm_diag.trifeature_gen.spec import DatasetSpec
from comm_diag.trifeature_gen.tasks import TASKS, get_task

PID_TERMS = ("redundant", "unique1", "unique2", "synergistic")
_TOL = 1e-10
PID_ATOL = 1e-3  # bits: how far the solver's atoms may be from the exact identities they satisfy


def task_label_grid(task: str, spec: DatasetSpec, mapping: np.ndarray) -> np.ndarray:
    """The label of every factor combination of a pair (``tasks.TASKS``): 10x10x10x10x10x10 int64."""
    grids = np.meshgrid(*[np.arange(k) for k in FACTOR_SIZES * 2], indexing="ij")
    f1, f2 = np.stack(grids[:3], -1), np.stack(grids[3:], -1)  # 10x10x10x10x10x10x3 each
    return get_task(task).label([f1, f2], spec, mapping).astype(np.int64)


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return max(float(-(p * np.log2(p)).sum()), 0.0)


def _mutual_information(p: np.ndarray, axes_a: tuple[int, ...]) -> float:
    """I(A; B) in bits, where A are axes_a of the joint p and B all the other axes."""
    axes_b = tuple(a for a in range(p.ndim) if a not in axes_a)
    return max(_entropy(p.sum(axis=axes_b)) + _entropy(p.sum(axis=axes_a)) - _entropy(p), 0.0)


def reduce_joint(p: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Drop the largest block of source axes independent of the rest (last axis = T).

    Returns the marginal on the kept axes (T last) and the kept source axes.
    """
    target = p.ndim - 1
    kept = list(range(target))
    changed = True
    while changed:  # single independent variables first: cheap and the common case
        changed = False
        for a in list(kept):
            axes = kept + [target]
            if _mutual_information(p, (axes.index(a),)) < _TOL:
                p = p.sum(axis=axes.index(a))
                kept.remove(a)
                changed = True
    n = len(kept)
    for size in range(2, n):  # then blocks of several variables
        for block in itertools.combinations(range(n), size):
            if _mutual_information(p, block) < _TOL:
                sub, sub_kept = reduce_joint(p.sum(axis=block))
                rest = [a for i, a in enumerate(kept) if i not in block]
                return sub, [rest[i] for i in sub_kept]
    return p, kept


def pid(p_sources_target: np.ndarray, n_source1_axes: int) -> dict[str, float]:
    """BROJA PID of a joint law over (source-1 axes, source-2 axes, T), in bits.

    Args:
        p_sources_target: joint pmf, axes = n_source1_axes axes of X1, then the
            axes of X2, then T (last). Sums to 1.
        n_source1_axes: how many leading axes belong to X1.
    Returns:
        redundant, unique1, unique2, synergistic, plus entropy H(T) and
        mutual_information I(T; X1, X2).
    """
    import dit
    from dit.pid import PID_BROJA

    p = p_sources_target
    h_t = _entropy(p.sum(axis=tuple(range(p.ndim - 1))))
    mi = _mutual_information(p, (p.ndim - 1,))
    out = {"entropy": h_t, "mutual_information": mi}
    if h_t < _TOL or mi < _TOL:
        return {**out, **{k: 0.0 for k in PID_TERMS}}
    shape = p.shape
    s1 = int(np.prod(shape[:n_source1_axes]))
    p3 = p.reshape(s1, -1, shape[-1])  # X1 x X2 x T, with each source flattened
    idx = np.argwhere(p3 > 0)
    dist = dit.Distribution([tuple(map(int, r)) for r in idx], p3[p3 > 0].tolist())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # admUI (Banerjee et al., 2018): deterministic and exact for two sources. dit's default
        # for small laws, scipy from random starts of the global numpy state, once returned
        # -0.88 bits of synergy for XOR in the middle of a test session.
        dec = PID_BROJA(dist, [[0], [1]], [2], method="admui")
    values = {
        "redundant": dec.get_pi(((0,), (1,))),
        "unique1": dec.get_pi(((0,),)),
        "unique2": dec.get_pi(((1,),)),
        "synergistic": dec.get_pi(((0, 1),)),
    }
    values = {k: max(float(v), 0.0) if abs(v) < 1e-6 else float(v) for k, v in values.items()}
    i1 = _mutual_information(p3.sum(axis=1), (1,))  # I(T; X1)
    i2 = _mutual_information(p3.sum(axis=0), (1,))  # I(T; X2)
    if (min(values.values()) < -PID_ATOL or abs(sum(values.values()) - mi) > PID_ATOL
            or abs(values["redundant"] + values["unique1"] - i1) > PID_ATOL
            or abs(values["redundant"] + values["unique2"] - i2) > PID_ATOL):
        raise RuntimeError(f"the BROJA solver returned an inconsistent decomposition {values} "
                           f"(I(T;X1,X2) = {mi:.4f}, I(T;X1) = {i1:.4f}, I(T;X2) = {i2:.4f} bits)")
    return {**out, **values}


def task_pid(joint: np.ndarray, task: str, spec: DatasetSpec, mapping: np.ndarray) -> dict:
    """PID of one task under a pair law (``pairs.pair_distribution``), with the
    variables that the reduction kept as source 1 and source 2."""
    labels = task_label_grid(task, spec, mapping)
    k = int(labels.max()) + 1
    p = np.zeros(joint.shape + (k,))
    for t in range(k):
        p[..., t] = np.where(labels == t, joint, 0.0)
    reduced, kept = reduce_joint(p)
    n1 = sum(a < 3 for a in kept)
    result = pid(reduced, n1)
    names = [f"{FACTOR_NAMES[a % 3]}{1 + a // 3}" for a in kept]
    return {**result, "source1": names[:n1], "source2": names[n1:]}


def pid_table(joint: np.ndarray, spec: DatasetSpec, mapping: np.ndarray) -> dict[str, dict]:
    """task -> PID (bits) for every task of the protocol."""
    return {task: task_pid(joint, task, spec, mapping) for task in TASKS}


def attribute_law(spec: DatasetSpec, mapping: np.ndarray, pair_set: str, attr1: str, attr2: str) -> np.ndarray:
    """The joint law of (attr1(x1), attr2(x2)) for a pair of ``pair_set`` (``pairs.design_distribution``,
    the law the manifest's PID is computed on): 10x10, sums to 1."""
    joint = design_distribution(spec, pair_set, mapping)  # 10x10x10x10x10x10: shape1 .. colour2
    a, b = factor_index(attr1), 3 + factor_index(attr2)
    return joint.sum(axis=tuple(k for k in range(6) if k not in (a, b)))  # 10x10


def attribute_information(spec: DatasetSpec, mapping: np.ndarray, pair_set: str, attr1: str, attr2: str) -> float:
    """I(attr1(x1); attr2(x2)) in bits under ``attribute_law``: how much a set's pairs tie one
    image's attribute to the other's. E.g. for the synergy-biased train pairs, I(texture1;
    colour2) = log2(10) = 3.32 bits at synergy_prob 1 and 0 at 0."""
    return _mutual_information(attribute_law(spec, mapping, pair_set, attr1, attr2), (0,))
