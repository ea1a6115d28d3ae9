"""Studies as data: what an experiment trains, on what, and what it expects.

A study is a list of ``Variant``s (the run and method settings each changes from the
preset; ``TrainConfig.replace`` routes them), optional extra variants (run when asked),
how often to probe during training, ``Expectation``s (a sentence and a pure predicate
over the measured table), and optionally a method to try on real pairs before any
work and the lines that open its report. ``pipeline.run`` runs any study the same way:
quickstart, ``check`` and the paper's ablations (Section 5; protocol section 6) below.
Adding an ablation is adding an entry to ``STUDIES``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from .sweep import Variant
from .verdict import MARGIN, Verdict


@dataclass(frozen=True)
class Measured:
    """What the checks read: per variant, a Verdict per interaction (R, U, S) and the
    mean accuracy over the probed epochs >= 1 (the area under the learning curve, a
    speed measure; None when the study does not probe during training)."""

    verdicts: dict[str, dict[str, Verdict]]
    curve_mean: dict[str, dict[str, Optional[float]]]

    def mean(self, variant: str, k: str) -> float:
        return self.verdicts[variant][k].mean

    def captured(self, variant: str, k: str) -> bool:
        return self.verdicts[variant][k].verdict == "captured"


@dataclass(frozen=True)
class Expectation:
    text: str
    holds: Callable[[Measured], bool]


@dataclass(frozen=True)
class Study:
    name: str  # recorded in OUT/sweep.json: a folder holds one study
    description: str
    variants: tuple[Variant, ...]
    expectations: tuple[Expectation, ...] = ()
    extra: tuple[Variant, ...] = ()  # run only with --extra
    every: int = 0  # probe every k-th epoch during training (learning curves); 0: only init and last
    kind: str = "study"  # quickstart | study | check (sweep.json's "experiment")
    title: str = ""  # the report's title after "comm-diag" [default: "ablate NAME"]
    record: str = "expectations.json"  # the study's record in OUT (settings, runs, expectations)
    probes: tuple[str, ...] = ("linear",)
    preflight: Optional[str] = None  # a method to run one step of on real pairs before any work
    lead: Optional[Callable[[dict], list[str]]] = None  # report lines after the title, from its result

    def __post_init__(self) -> None:
        if not self.title:
            object.__setattr__(self, "title", f"ablate {self.name}")

    @property
    def preflight_label(self) -> str:
        return (self.preflight or "").rsplit(":", 1)[-1]

    def all_variants(self, extra: bool = False) -> tuple[Variant, ...]:
        return self.variants + (self.extra if extra else ())


def _below(m: Measured, a: str, b: str, k: str, by: float = 0.0) -> bool:
    return m.mean(a, k) < m.mean(b, k) - by


def _slower(m: Measured, a: str, b: str) -> bool:
    """a's learning curves lie below b's on average over R, U and S."""
    ca, cb = m.curve_mean[a], m.curve_mean[b]
    keys = [k for k in "RUS" if ca.get(k) is not None and cb.get(k) is not None]
    return bool(keys) and float(np.mean([ca[k] for k in keys])) < float(np.mean([cb[k] for k in keys]))


LOSS = Study(
    name="loss",
    description="CoMM's loss: all n+1 terms vs. only I(Z', Z'') vs. only the masked terms (paper Fig. 5)",
    variants=(Variant("full", {"method": "comm"}),
              Variant("full_only", {"method": "comm", "w_masked": 0.0}),
              Variant("masked_only", {"method": "comm", "w_full": 0.0})),
    expectations=(
        Expectation("masked terms only: R and U are captured", lambda m: m.captured("masked_only", "R")
                    and m.captured("masked_only", "U")),
        Expectation("masked terms only: S is not captured", lambda m: not m.captured("masked_only", "S")),
        Expectation("full loss: R, U and S are all captured", lambda m: all(m.captured("full", k) for k in "RUS")),
        Expectation("I(Z', Z'') only learns more slowly than the full loss (mean probe accuracy over "
                    "the probed epochs, averaged over R, U, S)", lambda m: _slower(m, "full_only", "full")),
    ),
    every=2,
)

FUSION = Study(
    name="fusion",
    description="CoMM's attention fusion vs. concat + linear without latent converters (paper Table 4)",
    variants=(Variant("attention", {"method": "comm", "fusion": "transformer"}),
              Variant("linear", {"method": "comm", "fusion": "linear"})),
    expectations=(
        Expectation("attention fusion captures S", lambda m: m.captured("attention", "S")),
        Expectation(f"linear fusion loses synergy: S not captured, or more than {MARGIN:g} points below attention",
                    lambda m: not m.captured("linear", "S") or _below(m, "linear", "attention", "S", MARGIN)),
        Expectation("linear fusion loses some uniqueness: U below attention's",
                    lambda m: _below(m, "linear", "attention", "U")),
    ),
)

AUGMENT = Study(
    name="augment",
    description="CoMM without augmentation, with the full SimCLR set on modality 1, on modality 2, on both "
                "(paper Table 5); --extra adds crop only and colour only on both",
    variants=(Variant("none", {"method": "comm", "aug1": "none", "aug2": "none"}),
              Variant("all_on_1", {"method": "comm", "aug1": "all", "aug2": "none"}),
              Variant("all_on_2", {"method": "comm", "aug1": "none", "aug2": "all"}),
              Variant("all_on_both", {"method": "comm", "aug1": "all", "aug2": "all"})),
    extra=(Variant("crop_on_both", {"method": "comm", "aug1": "crop", "aug2": "crop"}),
           Variant("color_on_both", {"method": "comm", "aug1": "color", "aug2": "color"})),
    expectations=(
        Expectation("augmenting both modalities captures R, U and S",
                    lambda m: all(m.captured("all_on_both", k) for k in "RUS")),
        Expectation("no augmentation is below augmenting both on at least two of R, U, S",
                    lambda m: sum(_below(m, "none", "all_on_both", k) for k in "RUS") >= 2),
        Expectation("augmenting one modality only is below augmenting both on at least one of R, U, S",
                    lambda m: all(any(_below(m, v, "all_on_both", k) for k in "RUS")
                                  for v in ("all_on_1", "all_on_2"))),
    ),
)

STUDIES: dict[str, Study] = {s.name: s for s in (LOSS, FUSION, AUGMENT)}


def get_study(name: str) -> Study:
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}; choose from {', '.join(STUDIES)}")
    return STUDIES[name]


def check_expectations(study: Study, measured: Measured) -> list[tuple[str, Optional[bool]]]:
    """(sentence, held?) per expectation; None where a variant it reads was not run."""
    out = []
    for e in study.expectations:
        try:
            out.append((e.text, bool(e.holds(measured))))
        except KeyError:
            out.append((e.text, None))
    return out
