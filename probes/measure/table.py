"""The probe table: every probe row of some runs, trained models' rows beside their
random-initialisation controls, and the one way outputs pick rows from it.

A row is ``suite.PROBE_COLUMNS`` (method, seed, task, probe, representation, balanced
accuracy, ...). A control's method is its model's label with ``CONTROL_SUFFIX`` (the same
architecture at random initialisation, probed alike); nothing outside this module builds
or tests that suffix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator

CONTROL_SUFFIX = "@init"


def control_of(method: str) -> str:
    """The label of ``method``'s random-initialisation control."""
    return f"{method}{CONTROL_SUFFIX}"


def is_control(method: str) -> bool:
    """Whether a row's method label is a random-initialisation control."""
    return method.endswith(CONTROL_SUFFIX)


def model_of(method: str) -> str:
    """The trained model a label belongs to (a control's, or the label itself)."""
    return method.removesuffix(CONTROL_SUFFIX)


def _matches(row: dict, column: str, value: Any) -> bool:
    got = row.get(column)
    if callable(value):
        return bool(value(got))
    return got in value if isinstance(value, (tuple, set, frozenset)) else got == value


def select(rows: Iterable[dict], **criteria) -> list[dict]:
    """The rows whose columns match every criterion: a value (equal), a tuple or set (any
    of its members) or a function of the cell (``bits=known``)."""
    return [r for r in rows if all(_matches(r, k, v) for k, v in criteria.items())]


def known(value) -> bool:
    """A criterion: the cell holds a value (a probe that measured no bits leaves None)."""
    return value is not None


@dataclass(frozen=True)
class ProbeTable:
    """Every probe row of some runs (``rows``), trained and control alike."""

    rows: tuple[dict, ...] = ()

    @classmethod
    def of(cls, rows: "Iterable[dict] | ProbeTable") -> "ProbeTable":
        return rows if isinstance(rows, ProbeTable) else cls(tuple(rows))

    def __iter__(self) -> Iterator[dict]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]

    def __bool__(self) -> bool:
        return bool(self.rows)

    def select(self, **criteria) -> list[dict]:
        """Rows of trained models and controls alike (``select``)."""
        return select(self.rows, **criteria)

    def trained(self, **criteria) -> list[dict]:
        """The trained models' rows matching ``criteria`` (no control)."""
        return [r for r in self.select(**criteria) if not is_control(r["method"])]

    def methods(self, **criteria) -> list[str]:
        """The trained models' labels (sorted) having rows that match ``criteria``."""
        return sorted({r["method"] for r in self.trained(**criteria)})
