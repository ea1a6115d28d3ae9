"""Dose-response: how much of an interaction a method takes in, against what the training pairs offer.

A dose study trains every method on one dataset per level of an interaction's strength in
the training pairs (``synergy_prob`` for synergy, ``train_share_prob`` for redundancy;
everything else the preset's: same seed, images, probe pairs and test pairs) and probes the
interaction's task on the unbiased test pairs, which are the same at every level.

- The dose (x-axis) is exact: the bits the training law ties one image's attribute to the
  other's, I(a(x1); b(x2)) (``trifeature_gen.pid.attribute_information``: texture(x1) and
  colour(x2) for synergy, the shared shape for redundancy), on the law the manifest's PID
  is computed on. The level (the probability itself) is the secondary label.
- The response (y-axis) is the linear probe's bits on the fused representation (and its
  balanced accuracy), against the test task's exact bits (the ceiling) and the same
  architecture at random initialisation (the floor), mean and 95% interval over seeds.
- A known-answer reference goes through the same probe at every level: the representation
  of a learner that took in exactly the training law's dependence (the factors' outer
  product contracted with the law's conditional table), so it is at chance at level 0 and
  captures the interaction at every level above.

``dose_study`` builds the study (``pipeline.run`` runs it like any other); ``dose_table``,
``readings``, ``dose_figure`` and ``write_dose`` turn its probe rows into dose.csv,
dose.json, dose.png and the report's section.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import numpy as np

from comm_diag.errors import InputError
import comm_diag.trifeature_gen as tg
from comm_diag.comm.config import DEFAULT_METHODS
from comm_diag.comm.methods.registry import display_name, label_of
from comm_diag.outputs import write_file
from comm_diag.trifeature_gen.factors import factor_index
from comm_diag.trifeature_gen.pid import attribute_information, attribute_law

from comm_diag.probes.measure.backends import backend_for
from comm_diag.probes.measure.classifiers import PROBES
from comm_diag.probes.report.html_page import md_cell
from comm_diag.probes.measure.table import control_of, select
from comm_diag.probes.studies.study import Expectation, Study

from comm_diag.probes.measure.suite import write_csv
from comm_diag.probes.studies.sweep import Variant
from comm_diag.probes.measure.tasks import NAMES, chance, ground_truth_bits, task_labels
from comm_diag.probes.measure.verdict import MARGIN, verdict, with_interval

DOSE_LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _conditional(spec: tg.DatasetSpec, mapping: np.ndarray, attr1: str, attr2: str) -> np.ndarray:
    """P(attr2(x2) = j | attr1(x1) = i) under the training law: 10x10, rows sum to 1."""
    p = attribute_law(spec, mapping, "train", attr1, attr2)  # 10x10
    return p / p.sum(axis=1, keepdims=True)


def _tie_of_pair(ds: tg.Dataset, pair_set: str, attr1: str, attr2: str) -> np.ndarray:
    """The training law's P(attr2(x2) | attr1(x1)) at each pair's own values: Px1 (synergy)."""
    cond = _conditional(ds.spec, ds.mapping, attr1, attr2)
    f1, f2 = ds.factors_of(pair_set, 0), ds.factors_of(pair_set, 1)  # Px3 codes
    return cond[f1[:, factor_index(attr1)], f2[:, factor_index(attr2)]][:, None]  # Px1


def _tie_of_x1(ds: tg.Dataset, pair_set: str, attr1: str, attr2: str) -> np.ndarray:
    """The training law's P(attr2(x2) = . | attr1(x1)): what x1 tells of x2, Px10 (redundancy)."""
    cond = _conditional(ds.spec, ds.mapping, attr1, attr2)
    return cond[ds.factors_of(pair_set, 0)[:, factor_index(attr1)]]  # Px10


@dataclass(frozen=True)
class Dose:
    """One interaction whose strength in the training pairs a dose study varies."""

    interaction: str  # R | S
    task: str  # the task probed on the test pairs
    setting: str  # the DatasetSpec field whose value is the level
    kind: str  # the dataset it trains on: unbiased | synergy
    attributes: Callable[[tg.DatasetSpec], tuple[str, str]]  # (attribute of x1, of x2) the training law ties
    reference: Callable[[tg.Dataset, str, str, str], np.ndarray]  # the known-answer representation, PxD

    def dose_bits(self, ds: tg.Dataset) -> float:
        """The exact bits the dataset's training law ties the two attributes with."""
        return attribute_information(ds.spec, ds.mapping, "train", *self.attributes(ds.spec))

    def level(self, ds: tg.Dataset) -> float:
        value = getattr(ds.spec, self.setting)
        return float(ds.spec.share_prob if value is None else value)  # train_share_prob None: share_prob


DOSES: dict[str, Dose] = {
    "synergy": Dose("S", "synergy", "synergy_prob", "synergy", lambda s: (s.synergy_src, s.synergy_tgt),
                    _tie_of_pair),
    "redundancy": Dose("R", "redundancy", "train_share_prob", "unbiased", lambda s: (s.shared, s.shared),
                       _tie_of_x1),
}
REFERENCE = "reference"  # the known-answer learner's label in the tables


def get_dose(name: str) -> Dose:
    if name not in DOSES:
        raise InputError(f"unknown dose interaction {name!r}; choose from {', '.join(DOSES)}")
    return DOSES[name]


def parse_levels(text: str | Sequence[float]) -> tuple[float, ...]:
    """'0,0.25,1' (or numbers) -> sorted distinct levels in [0, 1], at least two."""
    try:
        levels = [float(x) for x in (text.split(",") if isinstance(text, str) else text)]
    except ValueError:
        raise InputError(f"levels must be numbers in [0, 1] such as 0,0.25,0.5,0.75,1, got {text!r}") from None
    if len(levels) < 2 or len(set(levels)) != len(levels) or not all(0.0 <= x <= 1.0 for x in levels):
        raise InputError(f"levels must be at least two distinct numbers in [0, 1], got {text!r}")
    return tuple(sorted(levels))


def arm_name(label: str, interaction: str, level: float) -> str:
    """A variant's label: method, interaction and level, e.g. comm@synergy=0.25: the level
    short where that is exact, else every digit it takes (0.8 wrote 0.5 and 0.5000001 both
    as 0.5, so one level was never trained and the other was counted twice)."""
    short = f"{level:g}"
    return f"{label}@{interaction}={short if float(short) == level else repr(float(level))}"


def dose_study(interactions: Sequence[str] = ("synergy",), levels: Sequence[float] = DOSE_LEVELS,
               methods: Sequence[str] = DEFAULT_METHODS, **study_fields) -> Study:
    """Every method at every level of every interaction: one variant each, trained on the
    level's own dataset (of the interaction's kind only). ``methods``: built-in names or
    plugin targets; ``study_fields``: other ``Study`` fields (check's name, kind, preflight)."""
    if isinstance(methods, str) or not methods:
        raise InputError("name at least one method (a list such as ['comm', 'cross'])")
    doses = {name: get_dose(name) for name in interactions}
    levels = parse_levels(levels)
    labels = {m: label_of(m) for m in methods}
    variants = tuple(Variant(arm_name(labels[m], name, lv), {"method": m}, data={d.setting: lv}, kinds=(d.kind,))
                     for name, d in doses.items() for m in methods for lv in levels)
    expectations = []
    if "synergy" in doses:  # the paper's argument (Section 3): only CoMM's objective rewards synergy
        low, full = arm_name("comm", "synergy", levels[0]), arm_name("comm", "synergy", levels[-1])
        expectations.append(Expectation(
            f"CoMM's synergy rises with the dose: captured at level {levels[-1]:g}, more than {MARGIN:g} points "
            f"above level {levels[0]:g}", lambda m: m.captured(full, "S") and m.mean(full, "S") > m.mean(low, "S")
            + MARGIN))
        for ref in ("cross", "cross_self"):
            arms = [arm_name(ref, "synergy", lv) for lv in levels]
            expectations.append(Expectation(f"{ref} does not capture synergy at any level",
                                            lambda m, arms=arms: not any(m.captured(a, "S") for a in arms)))
    fields = {"name": "dose", "description": f"{' and '.join(doses)} dose-response over levels "
                                              f"{', '.join(f'{x:g}' for x in levels)}", **study_fields}
    return Study(variants=variants, expectations=tuple(expectations),
                 outputs=lambda result, datasets, out: write_dose(
                     dose_table(result.rows, datasets, doses, device=result.device), out), **fields)


def _mean(xs: list[float]) -> Optional[float]:
    return float(np.mean(xs)) if xs else None


def _reference_rows(dose: Dose, name: str, ds: tg.Dataset, level: float, dose_bits: float, ceiling: float,
                    device: str = "cpu") -> dict:
    """The known-answer learner at one level, through the methods' linear probe and rule."""
    a1, a2 = dose.attributes(ds.spec)
    xtr, xte = dose.reference(ds, "probe_train", a1, a2), dose.reference(ds, "test", a1, a2)
    ytr, yte = task_labels(ds, "probe_train")[dose.task], task_labels(ds, "test")[dose.task]
    # fitted where the study's runs were probed (``device``: the runs', not this machine's)
    s = PROBES["linear"]((xtr, xte), (ytr, yte), np.random.default_rng([0, 7]), backend=backend_for("auto", device))
    v = verdict([s["balanced_accuracy"]], [], chance(dose.task, ds.spec), ses=[s["ba_se"]])
    return {"method": REFERENCE, "interaction": name, "task": dose.task, "setting": dose.setting, "level": level,
            "dose_bits": dose_bits, "balanced_accuracy": v.mean, "ci95": v.ci95, "seeds": 1, "bits": s["bits"],
            "ceiling_bits": ceiling, "bits_fraction": s["bits"] / ceiling if ceiling else None,
            "init_balanced_accuracy": None, "init_bits": None, "chance": chance(dose.task, ds.spec),
            "line": v.threshold, "verdict": v.verdict}


def dose_table(rows: Iterable[dict], datasets: dict[str, tg.Dataset], doses: dict[str, Dose],
               probe: str = "linear", representation: str = "fused", device: str = "cpu") -> list[dict]:
    """One row per (method, interaction, level), and the known-answer reference's: the level,
    the dose in bits, the probe's balanced accuracy (mean, 95% half-width, seeds) and bits on
    the test task, the ceiling (the test task's exact bits), the floor (the random-init
    control), the verdict line and verdict. ``rows``: the study's probe rows; ``datasets``:
    variant label -> kind -> the dataset it trained on (labels from ``arm_name``); ``device``:
    where the runs were probed, and so the known-answer reference is."""
    out = []
    for name, dose in doses.items():
        levels: dict[float, tuple[tg.Dataset, float, float]] = {}  # level -> (dataset, dose bits, ceiling)
        for label, sets in datasets.items():
            if f"@{name}=" not in label or dose.kind not in sets:
                continue
            method, ds = label.rsplit(f"@{name}=", 1)[0], sets[dose.kind]
            level = dose.level(ds)
            if level not in levels:  # the law's bits once per level, not per method
                levels[level] = (ds, dose.dose_bits(ds), ground_truth_bits(ds, "test")[dose.task])
            _, dose_bits, ceiling = levels[level]

            def pick(lab: str, key: str) -> list[float]:
                return [r[key] for r in select(rows, method=lab, task=dose.task, probe=probe,
                                               representation=representation) if r.get(key) is not None]
            scores = pick(label, "balanced_accuracy")
            if not scores:
                continue  # not run yet (--only) or not probed
            init = pick(control_of(label), "balanced_accuracy")
            mine = select(rows, method=label, task=dose.task, probe=probe, representation=representation)
            v = verdict(scores, init, chance(dose.task, ds.spec), ses=[r.get("ba_se") for r in mine])
            bits = _mean(pick(label, "bits"))
            out.append({"method": method, "interaction": name, "task": dose.task, "setting": dose.setting,
                        "level": level, "dose_bits": dose_bits, "balanced_accuracy": v.mean,
                        "ci95": v.ci95, "seeds": v.n_seeds, "bits": bits, "ceiling_bits": ceiling,
                        "bits_fraction": bits / ceiling if bits is not None and ceiling else None,
                        "init_balanced_accuracy": v.init, "init_bits": _mean(pick(control_of(label), "bits")),
                        "chance": chance(dose.task, ds.spec), "line": v.threshold, "verdict": v.verdict})
        for level, (ds, dose_bits, ceiling) in sorted(levels.items()):
            out.append(_reference_rows(dose, name, ds, level, dose_bits, ceiling, device))
    return sorted(out, key=lambda r: (r["interaction"], r["method"] == REFERENCE, r["method"], r["level"]))


def readings(table: list[dict]) -> list[str]:
    """One line per method and interaction: the lowest level at which it captures the
    interaction, and the fraction of the ceiling it reaches at full strength."""
    lines = []
    for name, method in dict.fromkeys((r["interaction"], r["method"]) for r in table):
        arm = select(table, interaction=name, method=method)
        top = arm[-1]
        got = [r["level"] for r in select(arm, verdict="captured")]
        missed = [r["level"] for r in arm if got and r["level"] > got[0] and r["verdict"] != "captured"]
        at = {r["level"]: r["dose_bits"] for r in arm}
        where = (f"does not capture {name} at any level" if not got else
                 f"captures {name} from level {got[0]:g} ({at[got[0]]:.2f} bits in the training pairs)"
                 + (f" but not at {', '.join(f'{x:g}' for x in missed)}" if missed else ""))
        frac = "" if top["bits_fraction"] is None else f", {100 * top['bits_fraction']:.0f}% of the ceiling"
        lines.append(f"{method}: {where}; at level {top['level']:g}: {top['balanced_accuracy']:.1f}% balanced "
                     f"accuracy, {top['bits']:.2f} of {top['ceiling_bits']:.2f} bits{frac}.")
    return lines


DOSE_COLUMNS = ("method", "interaction", "task", "setting", "level", "dose_bits", "balanced_accuracy", "ci95",
                "seeds", "bits", "ceiling_bits", "bits_fraction", "init_balanced_accuracy", "init_bits", "chance",
                "line", "verdict")


def dose_figure(table: list[dict], path: Path) -> Path:
    """One column per interaction: bits (top) and balanced accuracy (bottom) against the dose
    in bits, one line per method (95% interval bars over seeds), its random-init floor
    dashed in its colour, the ceiling dashed black, the known-answer reference dotted; the
    levels label the top axis."""
    from comm_diag.probes.report.figures import method_colours, new_figure, save

    names = list(dict.fromkeys(r["interaction"] for r in table))
    methods = [m for m in dict.fromkeys(r["method"] for r in table) if m != REFERENCE]
    colours = method_colours(methods)
    fig = new_figure(figsize=(max(6.4, 4.6 * len(names)), 6.6))
    axes = fig.subplots(2, len(names), squeeze=False, sharex="col")
    for col, name in enumerate(names):
        rows = select(table, interaction=name)
        top, bottom = axes[0, col], axes[1, col]
        for m in methods + [REFERENCE]:
            arm = sorted(select(rows, method=m), key=lambda r: r["level"])
            if not arm:
                continue
            x = [r["dose_bits"] for r in arm]
            style = {"color": "k", "linestyle": ":", "marker": "s", "label": "known-answer reference"} \
                if m == REFERENCE else {"color": colours[m], "marker": "o", "label": display_name(m)}
            top.plot(x, [r["bits"] for r in arm], **style)
            bottom.errorbar(x, [r["balanced_accuracy"] for r in arm], yerr=[r["ci95"] for r in arm], capsize=2,
                            **style)
            if m != REFERENCE and all(r["init_bits"] is not None for r in arm):
                top.plot(x, [r["init_bits"] for r in arm], color=colours[m], linestyle="--", linewidth=0.8)
                bottom.plot(x, [r["init_balanced_accuracy"] for r in arm], color=colours[m], linestyle="--",
                            linewidth=0.8)
        top.axhline(rows[0]["ceiling_bits"], color="k", linestyle="--", linewidth=1, label="ceiling (test task)")
        bottom.axhline(rows[0]["chance"], color="grey", linestyle="-.", linewidth=1, label="chance")
        top.set_title(f"{NAMES[get_dose(name).interaction]} (task: {rows[0]['task']})", fontsize=10)
        top.set_ylim(0, 1.1 * rows[0]["ceiling_bits"])
        top.set_ylabel("probe bits I(Z; T)")
        bottom.set_ylabel("balanced accuracy (%)")
        bottom.set_xlabel("dose: bits the training pairs tie the attributes with")
        bottom.set_ylim(0, 100)
        levels = sorted({(r["dose_bits"], r["level"]) for r in rows})
        sec = top.secondary_xaxis("top")
        sec.set_xticks([d for d, _ in levels], [f"{lv:g}" for _, lv in levels], fontsize=7)
        sec.set_xlabel(get_dose(name).setting, fontsize=8)
    seen: dict = {}  # one legend for the figure: every line of every panel, once
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    labels, handles = list(seen), list(seen.values())
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 3 * len(names)), fontsize=8, frameon=False)
    fig.suptitle("linear probe on the fused representation, unbiased test pairs\n"
                 "(dashed in colour: the same architecture at random initialisation)", fontsize=9)
    fig.tight_layout(rect=(0, 0.09, 1, 0.95))
    return save(fig, path, dpi=150)


def write_dose(table: list[dict], out: Path) -> dict:
    """OUT/dose.csv, OUT/dose.json (the rows and readings) and OUT/dose.png. Returns the
    report's section (markdown lines, "section"), the rows ("dose") and the readings."""
    if not table:
        return {"section": [], "dose": [], "readings": []}
    write_csv(out / "dose.csv", table, DOSE_COLUMNS)
    lines = readings(table)
    write_file(out / "dose.json", json.dumps({"package_version": tg.__version__, "rows": table,
                                              "readings": lines}, indent=2))
    fig = dose_figure(table, out / "dose.png")
    section = ["## Dose-response", "",
               "Each level trains on its own dataset (same images, probe and test pairs); the dose is the exact "
               "information the training pairs tie the interaction's two attributes with. Linear probe on the "
               "fused representation, unbiased test pairs; the verdict rule per level. The known-answer "
               "reference is a learner that took in exactly the training law's dependence: at chance at level 0, "
               "captured at every level above.", "",
               *[f"- {line}" for line in lines], "",
               "| method | interaction | level | dose (bits) | balanced acc. | bits | ceiling | floor (init) | "
               "verdict |", "|---|---|---|---|---|---|---|---|---|"]
    for r in table:
        floor = "–" if r["init_balanced_accuracy"] is None else f"{r['init_balanced_accuracy']:.1f}"
        section.append(f"| {md_cell(r['method'])} | {r['interaction']} | {r['level']:g} | {r['dose_bits']:.2f} | "
                       f"{with_interval(r['balanced_accuracy'], r['ci95'], r['seeds'])} | {r['bits']:.2f} | {r['ceiling_bits']:.2f} | {floor} | "
                       f"{r['verdict']} |")
    return {"section": section + ["", f"![dose-response]({fig.name})"], "dose": table, "readings": lines}
