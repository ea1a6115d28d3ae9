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


from comm_diag.errors import InputError
from comm_diag.comm.config import TrainConfig
from comm_diag.comm.methods import METHODS, load_class
from comm_diag.comm.methods.plugins import normalize_target
from comm_diag.comm.config import DEFAULT_METHODS
from comm_diag.comm.methods.registry import label_of


from comm_diag.probes.studies import pipeline
from comm_diag.probes.report.conclusions import conclude, next_step, plumbing_only
from comm_diag.probes.studies.dose import DOSE_LEVELS, dose_study
from comm_diag.probes.report.result import StudyResult
from comm_diag.probes.studies.study import Study
from comm_diag.probes.hooks import Hooks
from comm_diag.probes.studies.sweep import Variant
from comm_diag.probes.measure.tasks import NAMES
from comm_diag.probes.measure.verdict import Verdict, with_interval

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
            raise InputError(f"--require takes {', '.join(NAMES.values())} (comma-separated), got {part!r}")
        keys.append(by_name[part])
    return keys


def against_comm(mine: dict[str, Verdict], comm: dict[str, Verdict], label: str, advice: str) -> list[str]:
    """What CoMM, trained with the same budget, says about the user's fused synergy verdict:
    the budget was enough (CoMM captured it), or too small to tell (CoMM did not either), or
    more evidence is needed (either inconclusive)."""
    s, ref = mine.get("S"), comm.get("S")
    if s is None or ref is None or s.verdict == "captured" or label == "comm":
        return []
    if s.verdict == "inconclusive" or ref.verdict == "inconclusive":
        return [f"Fused synergy is inconclusive for {label if s.verdict == 'inconclusive' else 'CoMM'} at this budget: "
                f"{advice}."]
    if ref.verdict == "captured":
        return [f"CoMM, trained with the same budget, captures fused synergy ({with_interval(ref.mean, ref.ci95)} vs. "
                f"{with_interval(s.mean, s.ci95)}), so the budget is not what {label} lacks: its objective or "
                f"fusion does not make it learn what the two modalities say only together."]
    return [f"CoMM does not capture fused synergy with this budget either ({with_interval(ref.mean, ref.ci95)}): "
            f"the budget is too small to tell; {advice}."]


def conclusion_of(result: StudyResult, label: str) -> str:
    """The check's conclusion about the method ``label``, from a study's result
    (``report.summary.summarize``): ``conclusions.conclude`` on its verdicts, then what CoMM's
    verdict at the same budget says about its synergy; at a plumbing preset, that nothing is claimed."""
    presets = result.presets
    mine = result.levels(label)
    said = conclude(mine, label, plumbing=plumbing_only(presets), alone=result.alone(label))
    if not plumbing_only(presets):
        said += against_comm(mine, result.verdicts.get("comm", {}), label,
                             next_step(presets, gpu=result.on_gpu))
    return " ".join(said)


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
            raise InputError(f"unknown control {m!r}; choose from {', '.join(METHODS)}")
    settings = dict(settings or {})
    run = {k: v for k, v in settings.items() if k in TrainConfig.__dataclass_fields__}
    if "method" in run:
        raise InputError("settings cannot change the method: it is the check's target")
    if "seed" in run:
        raise InputError("settings cannot set the seed: a check's seeds are --seeds (seeds=...), for every method")
    if dose:
        if settings:
            raise InputError("settings are for a check of R, U and S; a dose check runs the preset as it is")
        study = dose_study(dose, DOSE_LEVELS if levels is None else levels,
                           [method] + [m for m in controls if m != method], name=f"{method} dose", kind="check",
                           title=f"check {label}: dose-response", record="check.json", preflight=method)
        return study, label
    if levels is not None:
        raise InputError("levels are for a dose check (name the interactions with dose=...)")
    variants = [Variant(label, {**settings, "method": method})] + [
        Variant(m, {**run, "method": m}) for m in controls if m != method]
    study = Study(name=method, kind="check", title=f"check {label}", record="check.json",
                  description=f"{label} beside {', '.join(controls) or 'no control'}", variants=tuple(variants),
                  preflight=method,
                  lead=lambda result: ["## Conclusion", "", conclusion_of(result, label)])
    return study, label


def check(target: str, out: Path | str, *, controls: Sequence[str] = CONTROLS, dose: Sequence[str] = (),
          levels: Optional[Sequence[float] | str] = None, settings: Optional[Mapping[str, Any]] = None,
          hooks: Optional[Hooks] = None, progress: str = "auto", executor: str = "local",
          **options) -> StudyResult:
    """Train and probe ``target`` (a method name, see ``comm_diag.comm.methods.plugins``) beside the
    controls; write OUT/report.md, OUT/summary.csv, OUT/figure4.png. With ``dose`` (e.g.
    ("synergy",)): its dose-response curve beside the controls' (``probes.studies.dose``: OUT/dose.csv,
    dose.json, dose.png). ``options``: ``StudySettings`` fields and the executor's. Returns
    the report's result plus ``label`` and ``conclusion``."""
    study, label = check_study(target, controls, dose, levels, settings)
    result = pipeline.run_with(study, out, hooks=hooks, progress=progress, executor=executor, **options)
    if dose:  # the method's own readings: where it captures each interaction, how much of it
        said = " ".join(r for r in result.outputs.get("readings", []) if r.startswith(f"{label}:"))
    else:
        said = conclusion_of(result, label)
    return result.with_(label=label, conclusion=said)


def unmet(result: StudyResult, required: Sequence[str]) -> list[str]:
    """The required interactions (R/U/S keys) the user's method did not capture."""
    mine = result.verdicts.get(result.label, {})
    return [k for k in required if k not in mine or mine[k].verdict != "captured"]


__all__ = ["check", "conclusion_of", "parse_require", "unmet", "CONTROLS", "REQUIRE_EXIT"]
