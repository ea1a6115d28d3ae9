"""Verdicts: did a method capture an interaction, measured against chance and random init,
never more certain than the evidence (the seeds and the test pairs)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional, Sequence

from comm_diag.probes.measure.metrics import mean_ci95

MARGIN = 5.0  # points of balanced accuracy above the better control that count as "clearly above"
Z95 = 1.959963984540054  # the normal distribution's 97.5% quantile
INTERVAL = ("95% interval of the score: with one seed, +-1.96 standard errors of balanced accuracy over the "
            "test pairs (each class's recall binomial); with several seeds, the t interval of the mean over "
            "seeds and the test pairs' interval (the same pairs for every seed, so averaging seeds does not "
            "shrink it) combined, half-width sqrt(h_seeds^2 + h_test^2)")
RULE = (f"captured if the {INTERVAL} lies entirely above max(chance, same architecture at random "
        f"initialisation) + {MARGIN:g} points of balanced accuracy; not captured if it lies entirely below "
        f"that line; inconclusive if it straddles it, whatever the number of seeds.")


@dataclass(frozen=True)
class Verdict:
    mean: float
    std: float  # over seeds (0 for one)
    ci95: float  # half-width of the interval of ``INTERVAL``
    n_seeds: int
    control: float  # max(chance, mean at random init)
    threshold: float  # control + MARGIN
    verdict: str  # captured | not captured | inconclusive
    init: Optional[float] = None  # mean at random initialisation (None: not measured)
    test_ci95: float = 0.0  # the test pairs' part of ci95

    @property
    def low(self) -> float:
        return self.mean - self.ci95

    @property
    def high(self) -> float:
        return self.mean + self.ci95


def interval(scores: Sequence[float], ses: Sequence[Optional[float]] = ()) -> tuple[float, float, float, float]:
    """(mean, std over seeds, half-width, its test-pair part) of ``INTERVAL``: ``scores`` per
    seed, ``ses`` their standard errors over the test pairs (None where a file predates them)."""
    mean, std, seed_half = mean_ci95(list(scores))
    known = [s for s in ses if s is not None]
    test_half = Z95 * math.sqrt(sum(s * s for s in known) / len(known)) if known else 0.0
    return mean, std, math.hypot(seed_half, test_half), test_half


def verdict(scores: list[float], init_scores: list[float], chance: float, margin: float = MARGIN,
            ses: Sequence[Optional[float]] = ()) -> Verdict:
    """Pure rule of ``RULE``: scores of the trained method per seed (and their test-pair
    standard errors ``ses``), of its random init per seed."""
    mean, std, half, test_half = interval(scores, ses)
    init = mean_ci95(init_scores)[0] if init_scores else None
    control = max(chance, chance if init is None else init)
    threshold = control + margin
    if mean - half > threshold:
        v = "captured"
    elif mean + half < threshold:
        v = "not captured"
    else:
        v = "inconclusive"
    return Verdict(mean, std, half, len(scores), control, threshold, v, init, test_half)


PLUMBING = "plumbing check"  # the verdict of every reading at a plumbing preset (smoke): it claims nothing


def as_plumbing(v: Verdict) -> Verdict:
    """The same scores and line, with the verdict a plumbing preset gives: none."""
    return replace(v, verdict=PLUMBING)


def with_interval(mean: float, half: float, n_seeds: int = 1) -> str:
    """'72.5 ±1.2'; '72.5' where no interval was measured (a file from before 0.9 with one seed)."""
    return f"{mean:.1f} ±{half:.1f}" if half > 0 else f"{mean:.1f}"


def over_seeds(n_seeds: int) -> str:
    """'over 3 seeds'; 'one seed' for one."""
    return f"over {n_seeds} seeds" if n_seeds > 1 else "one seed"
