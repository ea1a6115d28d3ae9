"""The studies ``comm-diag ablate`` runs: the paper's ablations (Section 5; protocol section 6)
and the dose-response study (``dose``). A study is data (``study.Study``); adding one is
adding an entry to ``STUDIES``.
"""

from __future__ import annotations

import numpy as np

from comm_diag.errors import InputError
from comm_diag.probes.studies.dose import dose_study
from comm_diag.probes.report.published import FOLLOWS_WITHIN, fidelity_lines, variants_table
from comm_diag.probes.studies.study import Expectation, Measured, Study, check_expectations
from comm_diag.probes.studies.sweep import Variant
from comm_diag.probes.measure.verdict import MARGIN
from comm_diag.probes.report.result import StudyResult
from comm_diag.trifeature_gen.tasks import INTERACTION_NAMES


def _below(m: Measured, a: str, b: str, k: str, by: float = 0.0) -> bool:
    return m.mean(a, k) < m.mean(b, k) - by


def _slower(m: Measured, a: str, b: str) -> bool:
    """a's learning curves lie below b's on average over R, U and S."""
    ca, cb = m.curve_mean[a], m.curve_mean[b]
    keys = [k for k in INTERACTION_NAMES if ca.get(k) is not None and cb.get(k) is not None]
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
        Expectation("full loss: R, U and S are all captured", lambda m: all(m.captured("full", k) for k in INTERACTION_NAMES)),
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
                    lambda m: all(m.captured("all_on_both", k) for k in INTERACTION_NAMES)),
        Expectation("no augmentation is below augmenting both on at least two of R, U, S",
                    lambda m: sum(_below(m, "none", "all_on_both", k) for k in INTERACTION_NAMES) >= 2),
        Expectation("augmenting one modality only is below augmenting both on at least one of R, U, S",
                    lambda m: all(any(_below(m, v, "all_on_both", k) for k in INTERACTION_NAMES)
                                  for v in ("all_on_1", "all_on_2"))),
    ),
)

def _fidelity_lead(result: StudyResult) -> list[str]:
    """One fidelity line per variant: its CoMM curve against the published one."""
    labels = result.epochs.methods()
    if not result.published_comparable:
        return ["## Fidelity to the published curve", "", "Not compared: the published curve is compared only "
                "with runs of the paper preset on the paper's data (224 px, 10,000 pairs, every test pair)."]
    table = variants_table(list(result.epochs), labels)
    return ["## Fidelity to the published curve", ""] + [
        f"- **{label}**: " + " ".join(fidelity_lines(list(result.epochs), method=label)) for label in labels] + (
        ["", "Measured - published, points of balanced accuracy (fused representation):", "", *table] if table else [])


FIDELITY = Study(
    name="fidelity",
    description="CoMM at the paper preset against the authors' published learning curve, one candidate cause "
                "of a gap per variant (docs/fidelity.md): the preset (fp32, as the authors trained), the fast path "
                "(bf16, the captured step and on a GPU the compiled augmentation), and "
                "the authors' renderer (their shapes and placement, texture patterns, soft shape edge and whole-degree "
                "angles), and their augmentation (torchvision's transforms image by image); each compared with "
                "the published curve trained on unbiased and on synergy-biased pairs",
    variants=(Variant("preset", {"method": "comm"}),
              Variant("fast", {"method": "comm", "fast": True, "precision": "bf16"}),
              # trains and is probed on datasets of its own, the same seed drawn by the authors' renderer
              Variant("authors_renderer", {"method": "comm", "renderer": "authors"}),
              # the same SimCLR set drawn by torchvision image by image, as their PIL pipeline does
              Variant("torchvision_aug", {"method": "comm", "aug1": "torchvision", "aug2": "torchvision"})),
    expectations=(
        Expectation(f"the preset follows the published curve within {FOLLOWS_WITHIN:g} points at every "
                    f"compared epoch", lambda m: m.follows_published("preset")),
    ),
    every=5,
    probes=("linear", "authors"),  # ours, and the authors' protocol the published curve was read with
    lead=_fidelity_lead,
)

STUDIES: dict[str, Study] = {s.name: s for s in (LOSS, FUSION, AUGMENT, FIDELITY, dose_study())}


def get_study(name: str) -> Study:
    if name not in STUDIES:
        raise InputError(f"unknown study {name!r}; choose from {', '.join(STUDIES)}")
    return STUDIES[name]


__all__ = ["STUDIES", "get_study", "check_expectations", "Expectation", "Measured", "Study"]
