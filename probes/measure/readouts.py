"""The probe table and what the verdicts read from it.

Every probe score is a row (``suite.PROBE_COLUMNS``: method, seed, task, probe,
representation, balanced accuracy, ...); ``select`` is the one way outputs pick rows. The
verdict tables read the declared ``readouts()``: each task through the linear probe on the
fused representation, keyed by its interaction (R, U, S) when it stands for it and by its
short name otherwise (U2), plus synergy through the MLP probe ("S recoverable"). They are
derived from ``trifeature_gen.tasks.TASKS``, so a task added there reaches the verdicts too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from comm_diag.probes.measure.table import ProbeTable, control_of, is_control, select
from comm_diag.probes.measure.tasks import chance, short_name
from comm_diag.probes.measure.verdict import Verdict, as_plumbing, verdict
from comm_diag.trifeature_gen import tasks as task_defs

RECOVERABLE = "S recoverable"  # synergy read by the MLP probe: recoverable from the representation


@dataclass(frozen=True)
class Readout:
    key: str  # the verdict's key: R, U, S (a task standing for its interaction), U2 (another task), S recoverable
    task: str
    probe: str  # linear | mlp
    label: str  # its column in the verdict tables
    representation: str = "fused"


def readouts() -> tuple[Readout, ...]:
    """Every task's linear readout, in TASKS' order, then synergy's MLP readout (read when
    called: a task added to TASKS before is in)."""
    out = []
    for name, t in task_defs.TASKS.items():
        key = t.interaction if t.reported else short_name(name)
        out.append(Readout(key, name, "linear", f"{key} fused" if t.interaction == "S" else key))
    synergy = task_defs.reported_task("S")
    return (*out, Readout(RECOVERABLE, synergy, "mlp", RECOVERABLE))


def reported_readouts() -> tuple[Readout, ...]:
    """The readouts of the tasks that stand for their interaction (R, U, S fused, S
    recoverable): what a verdict about an interaction, or a calibration, reads."""
    return tuple(r for r in readouts() if r.key in (*task_defs.INTERACTION_NAMES, RECOVERABLE))


def readout_rows(rows: Iterable[dict], method: str, readout: Readout) -> list[dict]:
    """The method's rows (one per seed) on a readout."""
    return select(rows, method=method, task=readout.task, probe=readout.probe, representation=readout.representation)


def scores(rows: Iterable[dict], method: str, readout: Readout) -> list[float]:
    """The method's balanced accuracies (one per seed) on a readout."""
    return [r["balanced_accuracy"] for r in readout_rows(rows, method, readout)]


def judge(rows: Iterable[dict], method: str, readout: Readout) -> Verdict | None:
    """The verdict rule on a readout: the method's scores (with their test-pair errors)
    against its random-init control and the task's chance; None where it was not probed."""
    mine = readout_rows(rows, method, readout)
    if not mine:
        return None
    return verdict([r["balanced_accuracy"] for r in mine], scores(rows, control_of(method), readout),
                   chance(readout.task), ses=[r.get("ba_se") for r in mine])


def verdicts(rows: Iterable[dict], probe: str = "linear") -> dict[str, dict[str, Verdict]]:
    """method -> readout key -> Verdict, for the readouts of ``probe`` (linear: R, U, U2, S;
    mlp: S recoverable)."""
    out: dict[str, dict[str, Verdict]] = {}
    for m in ProbeTable.of(rows).methods():
        judged = {r.key: judge(rows, m, r) for r in readouts() if r.probe == probe}
        out[m] = {k: v for k, v in judged.items() if v is not None}
    return out


def with_verdicts(rows: Iterable[dict], plumbing: bool = False) -> list[dict]:
    """Every row with the verdict of its (method, task, probe, representation) over seeds,
    that verdict's 95% interval (low, high) and its line, max(chance, random init) + margin
    (``verdict.RULE``); a random-initialisation control's row gets none.
    ``plumbing``: the runs are of a plumbing preset, and every verdict is ``verdict.PLUMBING``."""
    judged: dict[tuple, Verdict] = {}  # one verdict per (method, task, probe, representation), not per seed
    out = []
    for r in rows:
        if is_control(r["method"]):
            out.append({**r, "low": None, "high": None, "line": None, "verdict": ""})
            continue
        key = (r["method"], r["task"], r["probe"], r["representation"])
        if key not in judged:
            judged[key] = judge(rows, r["method"], Readout("", *key[1:3], "", key[3]))
        v = as_plumbing(judged[key]) if plumbing else judged[key]
        out.append({**r, "low": v.low, "high": v.high, "line": v.threshold, "verdict": v.verdict})
    return out


def alone_verdicts(rows: list[dict], method: str) -> dict[str, Verdict]:
    """The synergy label's verdicts on each modality's own representation (linear probe),
    where the method was probed there: does a single image already carry it?"""
    synergy = task_defs.reported_task("S")
    judged = {rep: judge(rows, method, Readout("S", synergy, "linear", "", rep)) for rep in ("modality1", "modality2")}
    return {rep: v for rep, v in judged.items() if v is not None}


def legend(columns: Iterable[Readout]) -> str:
    """What each verdict-table column reads, in words (a task's declared description)."""
    said = []
    for c in columns:
        if c.key == RECOVERABLE:
            said.append(f"{c.label}: the same synergy label read by an MLP probe (one hidden layer) on the same "
                        f"representation")
        else:
            said.append(f"{c.label}: {task_defs.TASKS[c.task].description or c.task}")
    return "; ".join(said) + "."
