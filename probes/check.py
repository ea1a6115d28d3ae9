"""``comm-diag check``: does a user's method capture redundancy, uniqueness and synergy?

The user's method and the reference controls (CoMM, Cross, Cross+Self) are trained
with the same preset, budget and seeds on the preset's two datasets (R and U probed
after training on unbiased pairs, S after training on synergy-biased pairs, as in
the paper's Figure 4); every run also gives its random-initialisation floor. The
verdicts use the rule of ``probes.verdict``; ``conclusion`` puts them in words.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

import trifeature_gen as tg
from comm.config import preset
from comm.methods.plugins import label_of, load_class, normalize_target, preflight

from .executors import run_jobs
from .report import write_report
from .sweep import Hooks, Variant, claim, folders, given_datasets, identity, plan, preset_datasets
from .verdict import Verdict

CONTROLS = ("comm", "cross", "cross_self")
NAMES = {"R": "redundancy", "U": "uniqueness", "S": "synergy"}
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


def sample_pairs(ds: tg.Dataset, n: int = 16) -> list[torch.Tensor]:
    """The first n training pairs as two Bx3xHxW float batches in [0, 1]."""
    p = ds.pairs["train"]
    return [torch.from_numpy(ds.images["train"][idx[:n]]).permute(0, 3, 1, 2).float() / 255.0  # Bx3xHxW
            for idx in (p.i1, p.i2)]


def conclusion(label: str, ver: dict[str, dict[str, Verdict]], syn_by_rep: dict[str, float]) -> str:
    """One paragraph in plain words from the verdicts of the user's method and of CoMM."""
    mine = ver[label]
    got = [NAMES[k] for k in "RUS" if k in mine and mine[k].verdict == "captured"]
    missed = [NAMES[k] for k in "RUS" if k in mine and mine[k].verdict == "not captured"]
    unsure = [NAMES[k] for k in "RUS" if k in mine and mine[k].verdict == "inconclusive"]

    def listing(xs: list[str], conj: str = "and") -> str:
        return xs[0] if len(xs) == 1 else ", ".join(xs[:-1]) + f" {conj} " + xs[-1]

    text = [f"{label} captures {listing(got)}" if got else f"{label} captures none of the three interactions"]
    if missed:
        text.append(f"but not {listing(missed, 'or')}")
    text = [" ".join(text) + "."]
    if unsure:
        text.append(f"{listing(unsure).capitalize()} is inconclusive at this budget: more seeds "
                    f"(--seeds 0,1,2) narrow the interval.")
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
                            f"budget is too small to tell; raise --epochs or use --preset paper.")
    return " ".join(text)


def check(target: str, out: Path | str, *, preset_name: str = "cpu", seeds: Sequence[int] = (0,),
          data: Sequence[Path | str] = (), epochs: Optional[int] = None, controls: bool = True,
          hooks: Optional[Hooks] = None, executor: str = "local", data_overrides: Optional[dict] = None,
          **executor_options) -> dict:
    """Train and probe ``target`` (a method name, see ``comm.methods.plugins``) beside the
    controls; write OUT/report.md, OUT/summary.csv, OUT/figure4.png. Returns the
    report's result plus ``label`` and ``conclusion``."""
    hooks = hooks or Hooks()
    out = Path(out)
    method = normalize_target(target)
    load_class(method)  # fails here, before any data or training, if it cannot load
    label = label_of(method)
    base = preset(preset_name).replace(epochs=epochs)
    datasets = given_datasets(data) if data else preset_datasets(out, preset_name, hooks, data_overrides)
    hooks.on_stage(f"{label}: one trial step and features() on real pairs")
    preflight(base.replace(method=method, seed=seeds[0]), sample_pairs(next(iter(datasets.values()))))
    claim(out, identity("check", method, base, datasets))
    variants = [Variant(label, {"method": method})]
    if controls:
        variants += [Variant(m, {"method": m}) for m in CONTROLS if m != method]
    jobs = plan(base, variants, seeds, folders(datasets), out)
    runs = [Path(r) for r in run_jobs(jobs, hooks, executor, **executor_options)]
    hooks.on_stage("report")
    result = write_report(runs, out, title=f"comm-diag check {label} ({preset_name} preset)")
    alone: dict[str, list[float]] = {}  # synergy of each modality alone, per seed
    for r in result["rows"]:
        if r["method"] == label and r["task"] == "synergy" and r["probe"] == "linear" \
                and r["representation"] in ("modality1", "modality2"):
            alone.setdefault(r["representation"], []).append(r["balanced_accuracy"])
    syn = {rep: float(np.mean(v)) for rep, v in alone.items()}
    text = conclusion(label, result["verdicts"], syn)
    report = (out / "report.md").read_text().splitlines()
    (out / "report.md").write_text("\n".join([report[0], "", "## Conclusion", "", text, *report[1:]]) + "\n")
    return {**result, "label": label, "conclusion": text}


def unmet(result: dict, required: Sequence[str]) -> list[str]:
    """The required interactions (R/U/S keys) the user's method did not capture."""
    mine = result["verdicts"].get(result["label"], {})
    return [k for k in required if k not in mine or mine[k].verdict != "captured"]


__all__ = ["check", "conclusion", "parse_require", "unmet", "CONTROLS", "REQUIRE_EXIT"]
