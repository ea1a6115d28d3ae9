"""``comm-diag check``: does a user's method capture redundancy, uniqueness and synergy?

The user's method and the reference controls (CoMM, Cross, Cross+Self by default; any
built-in, e.g. InfMasking or late-fusion SimCLR, on request) are trained
with the same preset, budget and seeds on the preset's two datasets (R and U probed
after training on unbiased pairs, S after training on synergy-biased pairs, as in
the paper's Figure 4); every run also gives its random-initialisation floor. The
verdicts use the rule of ``comm_diag.probes.measure.verdict``; ``conclusion`` puts them in words.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from comm_diag.comm.config import TrainConfig
from comm_diag.comm.methods import METHODS, load_class
from comm_diag.comm.methods.plugins import normalize_target
from comm_diag.comm.methods.registry import DEFAULT_METHODS, label_of

from comm_diag.comm.runtime import resolve_device

from comm_diag.probes.studies import pipeline
from comm_diag.probes.report.conclusions import listing, next_step, plumbing_note
from comm_diag.probes.studies.dose import DOSE_LEVELS, dose_study
from comm_diag.probes.measure.readouts import select
from comm_diag.probes.studies.study import Study
from comm_diag.probes.hooks import Hooks
from comm_diag.probes.studies.sweep import Variant
from comm_diag.probes.measure.tasks import NAMES
from comm_diag.probes.measure.verdict import Verdict

CONTROLS = DEFAULT_METHODS  # check's name for them
REQUIRE_EXIT = 3  # exit code when a --require'd interaction is not captured


def parse_require(text: Optional[str]) -> list[str]:
    """'synergy,uniqueness' -> ['S', 'U']."""
    if not text:
        return []
    by_name = {v: k for k, v in NAMES.items()}
    keys = []
    for part in (p.strip() for p in text.split(",")):
        if part not in by_name:
            raise ValueError(f"--require takes {', '.join(NAMES.values())} (comma-separated), got {part!r}")
        keys.append(by_name[part])
    return keys


def conclusion(label: str, ver: dict[str, dict[str, Verdict]], syn_by_rep: dict[str, float],
               recoverable: Optional[dict[str, Verdict]] = None,
               advice: str = "raise --epochs or add seeds (--seeds 0,1,2)") -> str:
    """One paragraph in plain words from the verdicts of the user's method and of CoMM, with
    synergy at both levels: fused into the representation (linear probe) and recoverable
    from it (MLP probe), ``recoverable`` holding the latter's verdict per method; ``advice``:
    the next budget to try where this one was too small to tell (``conclusions.next_step``)."""
    mine = ver[label]
    got = [NAMES[k] for k in "RUS" if k in mine and mine[k].verdict == "captured"]
    missed = [NAMES[k] for k in "RUS" if k in mine and mine[k].verdict == "not captured"]
    unsure = [NAMES[k] for k in "RUS" if k in mine and mine[k].verdict == "inconclusive"]

    if got:
        first = f"{label} captures {listing(got)}" + (f" but not {listing(missed, 'or')}" if missed else "")
    elif missed:
        first = f"{label} does not capture {listing(missed, 'or')}"
    else:
        first = f"{label} captures none of the three interactions for certain"
    text = [first + "."]
    if unsure:
        text.append(f"{listing(unsure).capitalize()} is inconclusive at this budget: more seeds "
                    f"(--seeds 0,1,2) narrow the interval.")
    rec = (recoverable or {}).get(label)
    if rec is not None and "S" in mine:
        fused = mine["S"].verdict == "captured"
        if rec.verdict == "captured" and not fused:
            text.append(f"Its synergy is recoverable from the representation by a non-linear probe (MLP "
                        f"{rec.mean:.1f} against a line at {rec.threshold:.1f}) but not fused into it (linear "
                        f"{mine['S'].mean:.1f}): the information is there, the representation did not compute it.")
        elif rec.verdict == "captured":
            text.append(f"Synergy is both fused into the representation (linear {mine['S'].mean:.1f}) and "
                        f"recoverable from it (MLP {rec.mean:.1f}).")
        elif rec.verdict == "not captured":
            text.append(f"Not even a non-linear probe recovers synergy from it (MLP {rec.mean:.1f}).")
    if "S" in mine:
        s = mine["S"]
        if s.verdict == "captured" and syn_by_rep:
            alone = max(syn_by_rep.get("modality1", np.nan), syn_by_rep.get("modality2", np.nan))
            if not np.isnan(alone):
                where = ("only in the fused representation (each modality alone reads "
                         f"{alone:.1f} at best), the signature of real fusion") if alone < s.threshold else \
                    f"also from a single modality ({alone:.1f}): check that the pairs are the synergy ones"
                text.append(f"Synergy ({s.mean:.1f} balanced accuracy) is readable {where}.")
        elif s.verdict != "captured":
            ref = ver.get("comm", {}).get("S")
            if ref is not None and ref.verdict == "captured":
                text.append(f"CoMM, trained with the same budget, does capture synergy ({ref.mean:.1f} vs. "
                            f"{s.mean:.1f}), so the budget is not what {label} lacks: its objective or fusion "
                            f"does not make it learn what the two modalities say only together.")
            elif ref is not None:
                text.append(f"CoMM did not capture synergy with this budget either ({ref.mean:.1f}): the "
                            f"budget is too small to tell; {advice}.")
    return " ".join(text)


def synergy_alone(result: dict, label: str) -> dict[str, float]:
    """modality1 / modality2 -> the method's mean synergy (linear probe) from each modality alone."""
    alone = {rep: [r["balanced_accuracy"] for r in select(result["rows"], method=label, task="synergy",
                                                          probe="linear", representation=rep)]
             for rep in ("modality1", "modality2")}
    return {rep: float(np.mean(v)) for rep, v in alone.items() if v}


def conclusion_of(result: dict, label: str, plumbing: bool = True) -> str:
    """``conclusion`` from a study's result (``report.summary.summarize``) for the method ``label``,
    ending with the plumbing warning of a smoke budget (``plumbing``: the report has its own)."""
    presets = result.get("presets", [])
    said = conclusion(label, result["verdicts"], synergy_alone(result, label), result["s_recoverable"],
                      next_step(presets, gpu=resolve_device("auto").type == "cuda"))
    return " ".join([said, *[line.replace("**", "") for line in plumbing_note(presets) if plumbing]])


def check_study(target: str, controls: Sequence[str] = CONTROLS, dose: Sequence[str] = (),
                levels: Optional[Sequence[float] | str] = None,
                settings: Optional[Mapping[str, Any]] = None) -> tuple[Study, str]:
    """The study of ``check``: the user's method beside the controls, with its conclusion as
    the report's lead; with ``dose`` (interactions), the dose-response study of the method
    and the controls over ``levels`` instead. ``settings`` (``--set``): the method's own go
    to it alone, run settings (a ``TrainConfig`` field: epochs, lr, ...) to every method, so
    that the controls keep the same budget. Returns (study, the method's label)."""
    method = normalize_target(target)
    load_class(method)  # fails here, before any data or training, if it cannot load
    label = label_of(method)
    for m in controls:
        if m not in METHODS:
            raise ValueError(f"unknown control {m!r}; choose from {', '.join(METHODS)}")
    settings = dict(settings or {})
    run = {k: v for k, v in settings.items() if k in TrainConfig.__dataclass_fields__}
    if "method" in run:
        raise ValueError("settings cannot change the method: it is the check's target")
    if "seed" in run:
        raise ValueError("settings cannot set the seed: a check's seeds are --seeds (seeds=...), for every method")
    if dose:
        if settings:
            raise ValueError("settings are for a check of R, U and S; a dose check runs the preset as it is")
        study = dose_study(dose, DOSE_LEVELS if levels is None else levels,
                           [method] + [m for m in controls if m != method], name=f"{method} dose", kind="check",
                           title=f"check {label}: dose-response", record="check.json", preflight=method)
        return study, label
    if levels is not None:
        raise ValueError("levels are for a dose check (name the interactions with dose=...)")
    variants = [Variant(label, {**settings, "method": method})] + [
        Variant(m, {**run, "method": m}) for m in controls if m != method]
    study = Study(name=method, kind="check", title=f"check {label}", record="check.json",
                  description=f"{label} beside {', '.join(controls) or 'no control'}", variants=tuple(variants),
                  preflight=method,
                  lead=lambda result: ["## Conclusion", "", conclusion_of(result, label, plumbing=False)])
    return study, label


def check(target: str, out: Path | str, *, controls: Sequence[str] = CONTROLS, dose: Sequence[str] = (),
          levels: Optional[Sequence[float] | str] = None, settings: Optional[Mapping[str, Any]] = None,
          hooks: Optional[Hooks] = None, progress: str = "auto", executor: str = "local", **options) -> dict:
    """Train and probe ``target`` (a method name, see ``comm_diag.comm.methods.plugins``) beside the
    controls; write OUT/report.md, OUT/summary.csv, OUT/figure4.png. With ``dose`` (e.g.
    ("synergy",)): its dose-response curve beside the controls' (``probes.dose``: OUT/dose.csv,
    dose.json, dose.png). ``options``: ``StudySettings`` fields and the executor's. Returns
    the report's result plus ``label`` and ``conclusion``."""
    study, label = check_study(target, controls, dose, levels, settings)
    result = pipeline.run_with(study, out, hooks=hooks, progress=progress, executor=executor, **options)
    if dose:  # the method's own readings: where it captures each interaction, how much of it
        said = " ".join(r for r in result["outputs"].get("readings", []) if r.startswith(f"{label}:"))
    else:
        said = conclusion_of(result, label)
    return {**result, "label": label, "conclusion": said}


def unmet(result: dict, required: Sequence[str]) -> list[str]:
    """The required interactions (R/U/S keys) the user's method did not capture."""
    mine = result["verdicts"].get(result["label"], {})
    return [k for k in required if k not in mine or mine[k].verdict != "captured"]


__all__ = ["check", "conclusion", "parse_require", "unmet", "CONTROLS", "REQUIRE_EXIT"]
