"""The authors' published learning curve of CoMM (probes/report/published_curve.csv) and how far a
measured curve is from it: the fidelity line of a report of ``paper``-preset runs."""

from __future__ import annotations

import csv
import io
from importlib import resources
from typing import Sequence

from comm_diag.probes.measure.readouts import select

FOLLOWS_WITHIN = 3.0  # points of balanced accuracy: "follows the published curve"
METHOD = "comm"  # the published curve is CoMM's


def published_curve() -> list[dict]:
    """Rows {task, epoch, balanced_accuracy, reading_error} of the CSV (its comment line says
    where they come from)."""
    text = resources.files(__package__).joinpath("published_curve.csv").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    return [{"task": r["task"], "epoch": int(r["epoch"]), "balanced_accuracy": float(r["balanced_accuracy"]),
             "reading_error": float(r["reading_error"])} for r in csv.DictReader(io.StringIO(body))]


def fidelity(epoch_rows: Sequence[dict], method: str = METHOD) -> list[dict]:
    """At each published (task, epoch) the method's curve was probed at: the measured mean over
    seeds on the fused representation, the published value and their difference. The
    authors' own probe protocol (probe "authors") is compared when the runs were probed with
    it, else comm-diag's linear probe; each row says which ("probe")."""
    probe = "authors" if select(epoch_rows, probe="authors", method=method) else "linear"
    out = []
    for ref in published_curve():
        got = [r["balanced_accuracy"] for r in select(epoch_rows, method=method, task=ref["task"], probe=probe,
                                                      representation="fused") if int(r["epoch"]) == ref["epoch"]]
        if got:
            mean = sum(got) / len(got)
            out.append({**ref, "measured": mean, "difference": mean - ref["balanced_accuracy"], "probe": probe})
    return out


def fidelity_line(rows: Sequence[dict]) -> str:
    """One sentence: does the measured curve follow the published one (within FOLLOWS_WITHIN
    points at every compared epoch), or how far is it."""
    if not rows:
        return ("Fidelity: no probed epoch of this report matches an epoch of the published curve "
                "(probe every 5 epochs, e.g. `--every 5`).")
    worst = max(rows, key=lambda r: abs(r["difference"]))
    held = all(abs(r["difference"]) <= FOLLOWS_WITHIN for r in rows)
    parts = ", ".join(f"{r['task']} ep {r['epoch']}: {r['measured']:.1f} vs {r['balanced_accuracy']:g}"
                      for r in rows)
    verdict = (f"follows the published curve within {FOLLOWS_WITHIN:g} points at every compared epoch"
               if held else f"does not follow it: the largest gap is {worst['difference']:+.1f} points "
                            f"({worst['task']}, epoch {worst['epoch']})")
    which = ("the authors' probe protocol (unweighted, cropped probe images, their C search)"
             if rows[0]["probe"] == "authors" else
             "comm-diag's linear probe (class-weighted; theirs is not: `--probe linear,authors` adds theirs)")
    return (f"Fidelity to the authors' published CoMM curve (fused representation, {which}; the "
            f"published values read off the paper's figure to about ±1 point): CoMM {verdict}. {parts}.")
