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


def select(rows: Iterable[dict], **criteria) -> list[dict]:
    """The rows whose columns equal every given value (``select(rows, method="comm",
    probe="linear")``); a tuple or set as a value means any of its members."""
    def ok(row: dict, value, column: str) -> bool:
        return row.get(column) in value if isinstance(value, (tuple, set, frozenset)) else row.get(column) == value
    return [r for r in rows if all(ok(r, v, k) for k, v in criteria.items())]


def readout_rows(rows: Iterable[dict], method: str, readout: Readout) -> list[dict]:
    """The method's rows (one per seed) on a readout."""
    return select(rows, method=method, task=readout.task, probe=readout.probe, representation=readout.representation)


def scores(rows: Iterable[dict], method: str, readout: Readout) -> list[float]:
    """The method's balanced accuracies (one per seed) on a readout."""
    return [r["balanced_accuracy"] for r in readout_rows(rows, method, readout)]


def judge(rows: list[dict], method: str, readout: Readout) -> Verdict | None:
    """The verdict rule on a readout: the method's scores (with their test-pair errors)
    against its random-init control and the task's chance; None where it was not probed."""
    mine = readout_rows(rows, method, readout)
    if not mine:
        return None
    return verdict([r["balanced_accuracy"] for r in mine], scores(rows, f"{method}@init", readout),
                   chance(readout.task), ses=[r.get("ba_se") for r in mine])


def verdicts(rows: list[dict], probe: str = "linear") -> dict[str, dict[str, Verdict]]:
    """method -> readout key -> Verdict, for the readouts of ``probe`` (linear: R, U, U2, S;
    mlp: S recoverable)."""
    methods = sorted({r["method"] for r in rows if not r["method"].endswith("@init")})
    out: dict[str, dict[str, Verdict]] = {}
    for m in methods:
        judged = {r.key: judge(rows, m, r) for r in readouts() if r.probe == probe}
        out[m] = {k: v for k, v in judged.items() if v is not None}
    return out


def with_verdicts(rows: list[dict], plumbing: bool = False) -> list[dict]:
    """Every row with the verdict of its (method, task, probe, representation) over seeds,
    that verdict's 95% interval (low, high) and its line, max(chance, random init) + margin
    (``verdict.RULE``); a random-initialisation row (``METHOD@init``) is a control and gets none.
    ``plumbing``: the runs are of a plumbing preset, and every verdict is ``verdict.PLUMBING``."""
    judged: dict[tuple, Verdict] = {}  # one verdict per (method, task, probe, representation), not per seed
    out = []
    for r in rows:
        if r["method"].endswith("@init"):
            out.append({**r, "low": None, "high": None, "line": None, "verdict": ""})
            continue
        key = (r["method"], r["task"], r["probe"], r["representation"])
        if key not in judged:
            judged[key] = judge(rows, r["method"], Readout("", *key[1:3], "", key[3]))
        v = as_plumbing(judged[key]) if plumbing else judged[key]
        out.append({**r, "low": v.low, "high": v.high, "line": v.threshold, "verdict": v.verdict})
    return out


def levels_of(result: dict, method: str) -> dict[str, Verdict]:
    """The method's verdicts by readout key: R, U, U2, S (fused, linear probe) and S
    recoverable (MLP)."""
    rec = result.get("s_recoverable", {})
    return {**result["verdicts"][method], **({RECOVERABLE: rec[method]} if method in rec else {})}


def alone_verdicts(rows: list[dict], method: str) -> dict[str, Verdict]:
    """The synergy label's verdicts on each modality's own representation (linear probe),
    where the method was probed there: does a single image already carry it?"""
    synergy = task_defs.reported_task("S")
    judged = {rep: judge(rows, method, Readout("S", synergy, "linear", "", rep)) for rep in ("modality1", "modality2")}
    return {rep: v for rep, v in judged.items() if v is not None}


def table_readouts(result: dict) -> list[Readout]:
    """The readouts some method of the result has a verdict for, in declared order: the
    columns of a verdict table."""
    keys = {k for m in result["verdicts"] for k in levels_of(result, m)}
    return [r for r in readouts() if r.key in keys]
