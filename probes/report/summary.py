"""A report's reading of some runs, written nowhere: the Figure-4 rows (each task from the
training it declares, following the paper's Figure 4: redundancy and uniqueness from runs
trained on unbiased pairs, synergy from runs trained on synergy-biased pairs; a method
with one kind of run is read from what it has, and the notes say so), the verdicts, and
the rows probed during training."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from comm_diag.comm.runtime import runtime_for
from comm_diag.probes.measure.readouts import RECOVERABLE, verdicts
from comm_diag.probes.measure.table import ProbeTable, model_of
from comm_diag.probes.report.result import StudyResult
from comm_diag.probes.measure.verdict import as_plumbing
from comm_diag.probes.report.conclusions import plumbing_only
from comm_diag.probes.measure.suite import PROBE_COLUMNS
from comm_diag.probes.measure.tasks import get_task
from comm_diag.probes.report.published import paper_data
from comm_diag.probes.report.runs import ReportError, epoch_rows, read_rows, run_meta


def summary_rows(runs: Sequence[Path]) -> tuple[list[dict], dict[str, str]]:
    """The Figure-4 rows of all runs (R, U from unbiased trainings, S from synergy
    trainings when a method has both), and a note per method on where they came from."""
    by_method: dict[str, dict[bool, list[dict]]] = {}
    for run in runs:
        rows, biased = read_rows(run)
        for r in rows:
            base = model_of(r["method"])
            by_method.setdefault(base, {}).setdefault(biased, []).append(r)
    out, notes = [], {}
    for method, kinds in by_method.items():
        if True in kinds and False in kinds:  # each task from the training it declares (Figure 4)
            out += [r for r in kinds[False] if get_task(r["task"]).trained_on == "unbiased"]
            out += [r for r in kinds[True] if get_task(r["task"]).trained_on == "synergy"]
            notes[method] = "R, U from unbiased training; S from synergy-biased training"
        else:
            biased = next(iter(kinds))
            out += kinds[biased]
            notes[method] = f"all tasks from {'synergy-biased' if biased else 'unbiased'} training only"
    return out, notes


VERDICT_PROBE = "linear"  # the probe every verdict reads (the MLP's reads S-recoverable only)

# summary.csv: every row with its verdict, the verdict's 95% interval (low, high) and its line
SUMMARY_COLUMNS = (*PROBE_COLUMNS, "low", "high", "line", "verdict")


def summarize(runs: Sequence[Path]) -> StudyResult:
    """Everything a report says, read from the runs (nothing written): the Figure-4 rows and
    where they came from ("rows", "notes"), the verdicts of the linear probe per method and
    interaction ("verdicts"), of the MLP probe on synergy ("s_recoverable"), and the rows
    probed during training ("epochs"). Every run is read (or refused) here."""
    rows, notes = summary_rows(runs)
    table = ProbeTable.of(rows)
    if not table.trained():
        raise ReportError("the runs hold no probe results of a trained model")
    if not table.trained(probe=VERDICT_PROBE):
        found = ", ".join(sorted({r["probe"] for r in rows}))
        raise ReportError(f"the runs were probed with {found} only; verdicts read the {VERDICT_PROBE} probe: "
                          f"run `comm-diag probe RUN --probe {VERDICT_PROBE},{found}` first")
    metas = [run_meta(r) for r in runs]  # each config.json read once
    presets = sorted({m["train"].get("preset", "cpu") for m in metas})
    # the published curve is compared only with runs of the paper's preset on the paper's data
    published = presets == ["paper"] and all(paper_data(m["data"]["spec"]) for m in metas)
    train_epochs = sorted({m["train"]["epochs"] for m in metas})
    mark = as_plumbing if plumbing_only(presets) else (lambda v: v)  # a plumbing preset claims nothing

    def judged(probe: str) -> dict:
        return {m: {k: mark(v) for k, v in vs.items()} for m, vs in verdicts(table, probe=probe).items()}
    return StudyResult(rows=table, notes=notes, verdicts=judged(VERDICT_PROBE),
                       s_recoverable={m: v[RECOVERABLE] for m, v in judged("mlp").items() if v},
                       epochs=ProbeTable.of(epoch_rows(runs)), runs=len(runs), presets=tuple(presets),
                       train_epochs=tuple(train_epochs), published_comparable=published,
                       device=str(runtime_for(metas[0]["train"]).device))
