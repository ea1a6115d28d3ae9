"""Verdicts: did a method capture an interaction, measured against chance and random init."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from comm_diag.probes.measure.metrics import mean_ci95

MARGIN = 5.0  # points of balanced accuracy above the better control that count as "clearly above"
RULE = (f"captured if the 95% confidence interval of the mean over seeds lies entirely above "
        f"max(chance, same architecture at random initialisation) + {MARGIN:g} points of balanced "
        f"accuracy; not captured if it lies entirely below that line; inconclusive if it straddles it. "
        f"With one seed there is no interval and the point estimate decides.")


@dataclass(frozen=True)
class Verdict:
    mean: float
    std: float
    ci95: float  # half-width
    n_seeds: int
    control: float  # max(chance, mean at random init)
    threshold: float  # control + MARGIN
    verdict: str  # captured | not captured | inconclusive
    init: Optional[float] = None  # mean at random initialisation (None: not measured)


def verdict(scores: list[float], init_scores: list[float], chance: float, margin: float = MARGIN) -> Verdict:
    """Pure rule of ``RULE``: scores of the trained method per seed, of its random init per seed."""
    mean, std, ci = mean_ci95(scores)
    init = mean_ci95(init_scores)[0] if init_scores else None
    control = max(chance, chance if init is None else init)
    threshold = control + margin
    if mean - ci > threshold:
        v = "captured"
    elif mean + ci < threshold:
        v = "not captured"
    else:
        v = "inconclusive"
    return Verdict(mean, std, ci, len(scores), control, threshold, v, init)


def with_interval(mean: float, half: float, n_seeds: int) -> str:
    """'72.5 ±1.2', or '72.5' from one seed: no interval is shown where there is none."""
    return f"{mean:.1f} ±{half:.1f}" if n_seeds > 1 else f"{mean:.1f}"


def over_seeds(n_seeds: int) -> str:
    """'over 3 seeds'; 'one seed' for one."""
    return f"over {n_seeds} seeds" if n_seeds > 1 else "one seed"
