"""The authors' published learning curve of CoMM (probes/report/published_curve.csv) and how far a
measured curve is from it: the fidelity line of a report of ``paper``-preset runs."""

from __future__ import annotations

import csv
import io
from importlib import resources
from typing import Optional, Sequence

from comm_diag.probes.measure.table import select

FOLLOWS_WITHIN = 3.0  # points of balanced accuracy: "follows the published curve"
METHOD = "comm"  # the published curve is CoMM's


def published_curve() -> list[dict]:
    """Rows {task, epoch, balanced_accuracy, reading_error} of the CSV (its comment line says
    where they come from)."""
    text = resources.files(__package__).joinpath("published_curve.csv").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    return [{"task": r["task"], "epoch": int(r["epoch"]), "balanced_accuracy": float(r["balanced_accuracy"]),
             "reading_error": float(r["reading_error"])} for r in csv.DictReader(io.StringIO(body))]


def paper_data(spec: dict) -> bool:
    """A run's data (its config's data spec) is the paper preset's, whatever the seed, the
    kind (unbiased or synergy) and the renderer (a fidelity-study variant): the only data the
    published curve is compared with (0.8 compared a paper-preset run on 32 px, 512-pair data)."""
    from comm_diag.comm.config import preset_data
    from comm_diag.trifeature_gen import DatasetSpec

    free = {"seed", "synergy", "renderer"}
    paper = DatasetSpec(**preset_data("paper")).to_dict()
    return all(spec.get(k) == v for k, v in paper.items() if k not in free)


TRAININGS = ("unbiased", "synergy")  # a row's "training": the pairs its run was trained on
TRAINING_WORDS = {"unbiased": "trained on unbiased pairs", "synergy": "trained on synergy-biased pairs"}


def fidelity(epoch_rows: Sequence[dict], method: str = METHOD, training: str = "unbiased") -> list[dict]:
    """At each published (task, epoch) the method's curve was probed at: the measured mean over
    the seeds of runs of one ``training`` (rows' "training"; a row without one is unbiased,
    as before 0.9) on the fused representation, the published value and their difference.
    The authors' own probe protocol (probe "authors") is compared when the runs were probed
    with it, else comm-diag's linear probe; each row says which ("probe")."""
    mine = select(epoch_rows, training=lambda t: (t or "unbiased") == training)
    probe = "authors" if select(mine, probe="authors", method=method) else "linear"
    out = []
    for ref in published_curve():
        got = [r["balanced_accuracy"] for r in select(mine, method=method, task=ref["task"], probe=probe,
                                                      representation="fused",
                                                      epoch=lambda e, at=ref["epoch"]: int(e) == at)]
        if got:
            mean = sum(got) / len(got)
            out.append({**ref, "measured": mean, "difference": mean - ref["balanced_accuracy"], "probe": probe,
                        "training": training})
    return out


def follows(rows: Sequence[dict]) -> Optional[bool]:
    """Within FOLLOWS_WITHIN points at every compared epoch; None where nothing was compared."""
    return all(abs(r["difference"]) <= FOLLOWS_WITHIN for r in rows) if rows else None


def by_training(epoch_rows: Sequence[dict], method: str = METHOD) -> dict[str, list[dict]]:
    """``fidelity`` of each training that has a compared epoch: the published curve plots R, U
    and S of one training per loss, and S is learnt only from synergy-biased pairs, where
    texture(x1) also predicts colour(x2) and U1 rises; so the curve is compared with both."""
    return {t: rows for t in TRAININGS if (rows := fidelity(epoch_rows, method, t))}


def fidelity_line(rows: Sequence[dict]) -> str:
    """One sentence for one training's comparison: does the measured curve follow the
    published one (within FOLLOWS_WITHIN points at every compared epoch), or how far is it."""
    if not rows:
        return ("Fidelity: no probed epoch of this report matches an epoch of the published curve "
                "(probe every 5 epochs, e.g. `--every 5`).")
    worst = max(rows, key=lambda r: abs(r["difference"]))
    parts = ", ".join(f"{r['task']} ep {r['epoch']}: {r['measured']:.1f} vs {r['balanced_accuracy']:g}"
                      for r in rows)
    verdict = (f"follows the published curve within {FOLLOWS_WITHIN:g} points at every compared epoch"
               if follows(rows) else f"does not follow it: the largest gap is {worst['difference']:+.1f} points "
                                     f"({worst['task']}, epoch {worst['epoch']})")
    which = ("the authors' probe protocol (unweighted, cropped probe images, their C search)"
             if rows[0]["probe"] == "authors" else
             "comm-diag's linear probe (class-weighted; theirs is not: `--probe linear,authors` adds theirs)")
    training = TRAINING_WORDS[rows[0].get("training", "unbiased")]
    return (f"Fidelity to the authors' published CoMM curve (fused representation, {which}; the "
            f"published values read off the paper's figure to about ±1 point): CoMM {training} {verdict}. "
            f"{parts}.")


def fidelity_lines(epoch_rows: Sequence[dict], method: str = METHOD) -> list[str]:
    """The comparison with each training, and which one follows the curve (or, where none
    does, which is closer: the smaller mean |difference|)."""
    compared = by_training(epoch_rows, method)
    if not compared:
        return [fidelity_line([])]
    lines = [fidelity_line(rows) for rows in compared.values()]
    if len(compared) == 2:
        held = [t for t, rows in compared.items() if follows(rows)]
        gap = {t: sum(abs(r["difference"]) for r in rows) / len(rows) for t, rows in compared.items()}
        closer = min(gap, key=gap.get)
        lines.append(f"The curve {TRAINING_WORDS[held[0]]} follows it." if len(held) == 1 else
                     "Both trainings follow it." if held else
                     f"Neither training follows it; closer: CoMM {TRAINING_WORDS[closer]} (mean gap "
                     f"{gap[closer]:.1f} points against {max(gap.values()):.1f}).")
    return lines


def variants_table(epoch_rows: Sequence[dict], methods: Sequence[str]) -> list[str]:
    """The fidelity study's variants in one markdown table: per variant, training and probed
    epoch of the published curve, each task's measured - published difference (points), the
    mean |difference|; then the variant and training closest to the curve."""
    tasks = sorted({r["task"] for r in published_curve()})
    lines = ["| variant | trained on | probe | epoch | " + " | ".join(tasks) + " | mean abs gap |",
             "|---|---|---|---|" + "---|" * len(tasks) + "---|"]
    gaps: dict[tuple[str, str], float] = {}
    for method in methods:
        for training, rows in by_training(epoch_rows, method).items():
            gaps[(method, training)] = sum(abs(r["difference"]) for r in rows) / len(rows)
            for epoch in sorted({r["epoch"] for r in rows}):
                at = {r["task"]: r["difference"] for r in select(rows, epoch=epoch)}
                cells = [f"{at[t]:+.1f}" if t in at else "–" for t in tasks]
                mean = sum(abs(v) for v in at.values()) / len(at)
                lines.append(f"| {method} | {training} | {rows[0]['probe']} | {epoch} | " + " | ".join(cells)
                             + f" | {mean:.1f} |")
    if not gaps:
        return []
    (method, training), gap = min(gaps.items(), key=lambda kv: kv[1])
    return [*lines, "", f"Closest to the published curve: **{method}**, {TRAINING_WORDS[training]} (mean gap "
                        f"{gap:.1f} points over its compared epochs and tasks)."]
