"""A study as data: what an experiment trains, on what, and what it expects.

A study is a list of ``Variant``s (the run and method settings each changes from the
preset; ``TrainConfig.replace`` routes them; the dataset settings, a study axis too),
optional extra variants (run when asked), how often to probe during training,
``Expectation``s (a sentence and a pure predicate over the measured table), and
optionally a method to try on real pairs before any work, the lines that open its
report and outputs of its own. ``pipeline.run`` runs any study the same way; the
studies themselves are in ``studies`` (the paper's ablations, the dose-response).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from comm_diag.errors import InputError
from comm_diag.probes.studies.sweep import KINDS, Variant
from comm_diag.probes.measure.verdict import Verdict


@dataclass(frozen=True)
class Measured:
    """What the checks read: per variant, a Verdict per interaction (R, U, S) and the
    mean accuracy over the probed epochs >= 1 (the area under the learning curve, a
    speed measure; None when the study does not probe during training)."""

    verdicts: dict[str, dict[str, Verdict]]
    curve_mean: dict[str, dict[str, Optional[float]]]
    epochs: tuple = ()  # the rows probed during training (probes_by_epoch.csv)
    published_comparable: bool = True  # the runs are the paper preset's on its data (summarize)

    def mean(self, variant: str, k: str) -> float:
        return self.verdicts[variant][k].mean

    def captured(self, variant: str, k: str) -> bool:
        return self.verdicts[variant][k].verdict == "captured"

    def follows_published(self, variant: str) -> Optional[bool]:
        """The variant's curve, of either training (unbiased or synergy-biased pairs: which one
        the published curve comes from is not said), is within FOLLOWS_WITHIN points of the
        authors' published CoMM curve at every compared epoch; None where no epoch was
        compared (0.8 called that "did NOT hold")."""
        from comm_diag.probes.report.published import by_training, follows

        if not self.published_comparable:
            return None
        held = [follows(rows) for rows in by_training(self.epochs, method=variant).values()]
        return any(held) if held else None


@dataclass(frozen=True)
class Expectation:
    text: str
    holds: Callable[[Measured], Optional[bool]]  # None: nothing to compare


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
    # outputs of its own beside the report: (result, variant -> kind -> dataset, OUT) -> writes its
    # files in OUT (the dose study's dose.csv, dose.json, dose.png), returns its report section
    # ("section": markdown lines) and its results (in the study's result under "outputs")
    outputs: Optional[Callable[[dict, dict, Path], dict]] = None

    def __post_init__(self) -> None:
        if not self.title:
            object.__setattr__(self, "title", f"ablate {self.name}")
        names = [v.name for v in (*self.variants, *self.extra)]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:  # two variants of one name would share run folders and be reported as one
            raise InputError(f"the study {self.name!r} has two variants named {twice[0]!r}: every variant needs "
                             f"a name of its own (two levels that print alike, two plugins of one class name?)")

    @property
    def preflight_label(self) -> str:
        return (self.preflight or "").rsplit(":", 1)[-1]

    def all_variants(self, extra: bool = False) -> tuple[Variant, ...]:
        return self.variants + (self.extra if extra else ())

    def preset_kinds(self, extra: bool = False) -> tuple[str, ...]:
        """The preset's datasets its variants train on (those with data settings have their own)."""
        used = {k for v in self.all_variants(extra) if not v.data for k in v.kinds}
        return tuple(k for k in KINDS if k in used)


def check_expectations(study: Study, measured: Measured) -> list[tuple[str, Optional[bool]]]:
    """(sentence, held?) per expectation; None where a variant it reads was not run or it had
    nothing to compare."""
    out = []
    for e in study.expectations:
        try:
            held = e.holds(measured)
        except KeyError:
            held = None
        out.append((e.text, None if held is None else bool(held)))
    return out
