"""A study's or a report's result, typed: built once (``summary.summarize``; a study adds its
lead, expectations and outputs, ``check`` its conclusion) and consumed by every output
(report.md, summary.csv, the figures, the command's tables, the conclusions) through its
fields and methods, which loop over the declared ``readouts()``: no output names a task or
an interaction letter, or filters rows, by hand.

Scripts written against 0.8 read it as the dict it was, its field names as keys: it is a
read-only mapping of its fields too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

from comm_diag.comm.runtime import is_gpu
from comm_diag.probes.measure.readouts import RECOVERABLE, Readout, alone_verdicts, readouts
from comm_diag.probes.measure.table import ProbeTable
from comm_diag.probes.measure.verdict import Verdict


@dataclass(frozen=True)
class StudyResult(Mapping):
    rows: ProbeTable  # the Figure-4 rows (each task from the training it declares), with their controls
    notes: dict[str, str]  # method -> where its rows came from
    verdicts: dict[str, dict[str, Verdict]]  # method -> readout key -> verdict (linear probe)
    s_recoverable: dict[str, Verdict]  # method -> the MLP probe's synergy verdict
    epochs: ProbeTable  # the rows probed during training (learning curves)
    runs: int
    presets: tuple[str, ...]
    train_epochs: tuple[int, ...]
    published_comparable: bool = False  # runs of the paper's preset on the paper's data
    lead: tuple[str, ...] = ()  # a study's opening lines
    expectations: tuple[tuple[str, Optional[bool]], ...] = ()  # (sentence, held?)
    outputs: dict = field(default_factory=dict)  # a study's own results ("dose", "readings")
    device: str = "cpu"  # where the runs' features were extracted and probed (the runs' device, resolved)
    label: Optional[str] = None  # check: the user's method
    conclusion: Optional[str] = None  # check: what its verdicts say

    def levels(self, method: str) -> dict[str, Verdict]:
        """The method's verdicts by readout key: R, U, U2, S (fused, linear probe), any task
        added, and S recoverable (MLP)."""
        rec = {RECOVERABLE: self.s_recoverable[method]} if method in self.s_recoverable else {}
        return {**self.verdicts.get(method, {}), **rec}

    def columns(self) -> list[Readout]:
        """The readouts some method has a verdict for, in declared order: a verdict table's columns."""
        keys = {k for m in self.verdicts for k in self.levels(m)}
        return [r for r in readouts() if r.key in keys]

    def alone(self, method: str) -> dict[str, Verdict]:
        """The synergy label's verdicts on each modality's own representation, where probed."""
        return alone_verdicts(self.rows, method)

    @property
    def on_gpu(self) -> bool:
        return is_gpu(self.device)

    def with_(self, **changes) -> "StudyResult":
        return dataclasses.replace(self, **changes)

    # a read-only mapping of the fields, for scripts of 0.8
    def __getitem__(self, key: str) -> Any:
        if key not in self._names():
            raise KeyError(key)
        value = getattr(self, key)
        return list(value) if isinstance(value, (ProbeTable, tuple)) else value  # as 0.8's lists

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    @classmethod
    def _names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))
