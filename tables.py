"""The tables the command prints (rich): pure functions of a result, one per kind of result.

Cells fold instead of ending in an ellipsis, so that in a narrow terminal or a notebook's
80 columns no two rows become the same text.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

from rich import table as rich_table
from rich.text import Text

from comm_diag.comm.methods.registry import display_name
from comm_diag.probes.report.conclusions import plumbing_only
from comm_diag.probes.measure.readouts import RECOVERABLE
from comm_diag.probes.measure.table import select
from comm_diag.probes.measure.tasks import NAMES, chance
from comm_diag.probes.measure.verdict import MARGIN, over_seeds, with_interval


class Table(rich_table.Table):
    """A rich table whose cells break between words: in a terminal too narrow for it, each
    column is made as wide as the longest word of its cells (then of its header) while there
    is room, so 'redundancy' or 'inconclusive' moves whole to the next line instead of being
    cut; only a word that cannot fit folds."""

    def add_column(self, *args, **kwargs) -> None:
        kwargs.setdefault("overflow", "fold")
        super().add_column(*args, **kwargs)
        self.columns[-1].header_word = _longest_word(args[0] if args else "")
        self.columns[-1].cell_word = 0

    def add_row(self, *cells, **kwargs) -> None:
        super().add_row(*cells, **kwargs)
        for column, cell in zip(self.columns, cells):  # add_row makes the columns of a header-less table
            column.cell_word = max(getattr(column, "cell_word", 0), _longest_word(cell))
            column.header_word = getattr(column, "header_word", 0)

    def _calculate_column_widths(self, console, options) -> list[int]:
        """rich's widths when the table fits; else every column gets one character, then the
        columns the longest word of their cells and header, shortest first while there is
        room, then the narrowest columns their full width while there is room, then
        what is left one character at a time to the column furthest from its full width
        (rich's own last resort narrows every column evenly, cutting words)."""
        natural = [self._measure_column(console, options, c).maximum for c in self.columns]
        if sum(natural) <= options.max_width:
            return super()._calculate_column_widths(console, options)
        pads = [self._get_padding_width(c._index) for c in self.columns]
        widths = [p + 1 for p in pads]
        room = options.max_width - sum(widths)
        # each column's longest word, of its cells or its header, shortest first: a short
        # header ("seed") is never folded one letter a line to give a long cell its width
        need = [max(getattr(c, "cell_word", 0), getattr(c, "header_word", 0)) for c in self.columns]
        for i in sorted(range(len(widths)), key=lambda i: need[i]):
            extra = need[i] + pads[i] - widths[i]
            if 0 < extra <= room:
                widths[i], room = widths[i] + extra, room - extra
        while room > 0:  # words longer than the room: a character at a time to the furthest from its word
            short = {i: need[i] + pads[i] - widths[i] for i in range(len(widths)) if need[i] + pads[i] > widths[i]}
            if not short:
                break
            i = max(short, key=short.get)
            widths[i], room = widths[i] + 1, room - 1
        for i in sorted(range(len(widths)), key=lambda i: natural[i]):  # narrow columns whole, as rich does
            if 0 < natural[i] - widths[i] <= room:
                widths[i], room = natural[i], room - (natural[i] - widths[i])
        while room > 0 and any(w < n for w, n in zip(widths, natural)):
            i = max(range(len(widths)), key=lambda i: natural[i] - widths[i])
            widths[i], room = widths[i] + 1, room - 1
        return widths


def _longest_word(cell) -> int:
    """The width of the longest word of a cell (markup stripped), 0 for anything not text."""
    from rich.text import Text

    if not isinstance(cell, (str, Text)):
        return 0
    plain = Text.from_markup(cell).plain if isinstance(cell, str) else cell.plain
    return max((len(w) for w in plain.split()), default=0)


def _table(title: str, columns: Iterable[str], right: Iterable[str] = (), **kwargs) -> Table:
    t = Table(title=title, **kwargs)
    right = set(right)
    for c in columns:
        t.add_column(c, justify="right" if c in right else "left")
    return t


def dataset(manifest: dict) -> list[Table]:
    """``comm-diag info``: the dataset's settings and counts, and its PID table."""
    spec = manifest["spec"]
    t = Table(title="dataset", show_header=False)
    t.add_row("size", f"{spec['size']} px (texture period {manifest['texture_period_px']:.2f} px)")
    t.add_row("seed", str(spec["seed"]))
    t.add_row("train set", "synergy-biased" if spec["synergy"] else "unbiased")
    t.add_row("roles", f"shared={spec['shared']}  unique={spec['unique']}  "
                       f"synergy={spec['synergy_src']}(x1)->{spec['synergy_tgt']}(x2)")
    t.add_row("share-prob / synergy-prob", f"{spec['share_prob']} / {spec['synergy_prob']}"
              + (f" (train pairs: share-prob {spec['train_share_prob']})" if spec.get("train_share_prob") is not None
                 else ""))
    t.add_row("mapping", ", ".join(f"{a}->{b}" for a, b in manifest["mapping"]))
    c = manifest["counts"]
    t.add_row("images", ", ".join(f"{k} {v}" for k, v in c["images"].items()))
    t.add_row("pairs", ", ".join(f"{k} {v}" for k, v in c["pairs"].items()))
    t.add_row("synergy positive rate", ", ".join(f"{k} {v:.3f}" for k, v in c["synergy_positive_rate"].items()))
    pid = _table("partial information decomposition, bits (H: H(T), I: I(T; X1, X2))",
                 ("set", "task", "H", "I", "R", "U1", "U2", "S"), right=("H", "I", "R", "U1", "U2", "S"))
    for split, tasks in manifest["pid"].items():
        for task, v in tasks.items():
            pid.add_row(split, task, *(f"{v[k]:.3f}" for k in ("entropy", "mutual_information", "redundant",
                                                               "unique1", "unique2", "synergistic")))
    return [t, pid]


def probe_rows(rows: list[dict]) -> Table:
    """``comm-diag probe``: balanced accuracy per model and probe, every task probed."""
    tasks = list(dict.fromkeys(r["task"] for r in rows))  # every task probed, in the run's order
    t = _table("balanced accuracy (%), fused representation", ["method", *tasks], right=tasks)
    for m in dict.fromkeys(r["method"] for r in rows):
        for pr in sorted({r["probe"] for r in rows}):
            cells = {r["task"]: r["balanced_accuracy"] for r in select(rows, method=m, representation="fused",
                                                                        probe=pr)}
            t.add_row(f"{m} ({pr})", *(f"{cells[k]:.1f}" if k in cells else "-" for k in tasks))
    return t


def verdicts(result: dict) -> Table:
    """A study's or a report's verdicts per method, one column per readout it has
    (``probes.measure.readouts``: R, U, U2, S fused, S recoverable, and any task added)."""
    columns = result.columns()
    labels = [c.label for c in columns]
    t = _table("fused representation, balanced accuracy % \\[max(chance, random init)]: linear probe; S "
               "recoverable: MLP probe" + _plumbing(result), ("method", *labels), right=labels)
    for m in result.verdicts:
        both = result.levels(m)
        t.add_row(display_name(m), *(f"{both[c.key].mean:.1f} [{both[c.key].control:.1f}] {both[c.key].verdict}"
                                     if c.key in both else "-" for c in columns))
    return t


def _plumbing(result: dict) -> str:
    """A table title's warning when its verdicts come from the smoke preset."""
    return " - smoke preset: a plumbing check, not a measurement" if plumbing_only(result.presets) else ""


def dose(result: dict) -> Table:
    """The dose-response study: one row per method and level."""
    cols = ("method", "interaction", "level", "dose bits", "balanced acc. %", "bits", "ceiling", "floor (init)",
            "verdict")
    t = _table("dose-response: linear probe, fused representation, unbiased test pairs", cols, right=cols[2:-1])
    for r in result.outputs["dose"]:
        t.add_row(r["method"], r["interaction"], f"{r['level']:g}", f"{r['dose_bits']:.2f}",
                  with_interval(r["balanced_accuracy"], r["ci95"], r["seeds"]), f"{r['bits']:.2f}",
                  f"{r['ceiling_bits']:.2f}",
                  "-" if r["init_balanced_accuracy"] is None else f"{r['init_balanced_accuracy']:.1f}", r["verdict"])
    return t


def study(result: dict) -> Table:
    """The table of a study's result: its dose table if it has one, else the verdicts."""
    return dose(result) if result.outputs.get("dose") else verdicts(result)


def expectations(result: dict) -> list[Text]:
    """A study's expected patterns, one line each: held, did not hold, or not measured."""
    none = "not compared (plumbing check only)" if plumbing_only(result.presets) else "not compared"
    mark = {True: ("held", "green"), False: ("did not hold", "red"), None: (none, "yellow")}
    return [Text.assemble(mark[ok], f": {text}") for text, ok in result.expectations]


def check(result: dict, label: str) -> Table:
    """``comm-diag check``: the user's method against its controls, per interaction."""
    others = [m for m in result.verdicts if m != label]
    cols = ("", label, "line", "init / chance", *(["controls (same budget)"] if others else []), "verdict")
    t = _table("fused representation, balanced accuracy % (± 95% interval): linear probe, S recoverable: MLP probe; "
               f"init / chance: the same architecture at random initialisation / chance; line: the larger + "
               f"{MARGIN:g}" + _plumbing(result), cols, right=cols[1:4])
    mine = result.levels(label)
    for c in result.columns():  # every readout: R, U, U2, S fused, any task added, S recoverable
        v = mine.get(c.key)
        if v is None:
            continue
        theirs = [f"{display_name(m)} {result.levels(m)[c.key].mean:.1f}" for m in others if c.key in result.levels(m)]
        t.add_row(_row_name(c), with_interval(v.mean, v.ci95, v.n_seeds), f"{v.threshold:.1f}",
                  ("-" if v.init is None else f"{v.init:.1f}") + f" / {chance(c.task):.1f}",
                  *([", ".join(theirs) or "-"] if others else []), v.verdict)
    return t


def _row_name(c) -> str:
    """A readout's row in check's table: the interaction's name for the task that stands for
    it (redundancy, uniqueness, synergy fused), else its column label (U2, a task added)."""
    if c.key == RECOVERABLE:
        return "synergy recoverable"
    if c.key in NAMES:
        return NAMES[c.key] + (" fused" if c.key == "S" else "")
    return c.label


def lead(result: dict) -> list[str]:
    """A study's opening paragraphs in words (quickstart's conclusion), as the terminal shows
    them: the report's lead without its headings and markdown emphasis."""
    return [line.replace("**", "") for line in result.lead if line and not line.startswith("#")]


def calibration(rows: list[dict], n_seeds: int) -> Table:
    """``comm-diag calibrate``: each reference and level, measured against its known answer."""
    t = _table(f"calibration: balanced accuracy % ({'mean ' if n_seeds > 1 else ''}{over_seeds(n_seeds)}, ± 95% interval) "
               f"[line], bits [fraction of the exact PID bits]",
               ("reference", "level", "measured", "bits", "verdict", "expected", ""))
    for r in rows:
        expected = {True: "captured", False: "not captured", None: "(not asserted)"}[r["expected"]]
        frac = f" [{100 * r['bits_fraction']:.0f}%]" if r["bits_fraction"] is not None else ""
        t.add_row(r["reference"], r["level"], f"{with_interval(r['balanced_accuracy'], r['ci95'], r['seeds'])} "
                  f"[{r['line']:.0f}]", f"{r['bits']:.2f}{frac}", r["verdict"], expected,
                  "ok" if r["ok"] else "MISMATCH")
    return t


def studies(registry: dict) -> Table:
    """``comm-diag ablate --list-studies``."""
    t = _table("studies", ("name", "runs per seed and dataset", "what it compares"),
               right=("runs per seed and dataset",))
    for s in registry.values():
        t.add_row(s.name, f"{len(s.variants)} (+{len(s.extra)} with --extra)", s.description)
    return t


def plan(title: str, rows: list[dict]) -> Table:
    """``comm-diag ablate --list``: the runs of a study."""
    t = _table(title, ("#", "run", "variant", "seed", "data", "changes from the preset"))
    for row in rows:
        t.add_row(*(str(row[k]) for k in ("index", "run", "variant", "seed", "data", "changes")))
    return t


def summary(cls: type) -> str:
    """A method's one-paragraph description: the first paragraph of its docstring."""
    first = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())
    return first[:-1] + "." if first.endswith(":") else first  # a paragraph that introduces a formula


def own_settings(cls: type) -> str:
    return ", ".join(f"{f.name}={f.default}" for f in dataclasses.fields(cls.Settings)) or "none of its own"


def methods() -> list:
    """``comm-diag methods``: the table of built-in and installed methods, then each one's own
    settings and where plugins register (a list of things to print)."""
    from comm_diag.comm.methods import METHODS, load_class
    from comm_diag.comm.methods.plugins import ENTRY_POINT_GROUP, PluginError, installed

    t = Table(title="methods")
    for c in ("name", "source", "what it is"):
        t.add_column(c)
    settings = {}
    for name, cls in METHODS.items():
        t.add_row(name, "built-in", summary(cls))
        settings[name] = own_settings(cls)
    for name, value in installed().items():
        if name in METHODS:  # load_class resolves a name to the built-in first
            t.add_row(name, f"plugin {value}", Text(f"never used: the built-in {name!r} has this name; rename "
                                                    f"the entry point, or give {value} as the method", "yellow"))
            continue
        try:
            cls = load_class(name)
            t.add_row(name, f"plugin {value}", summary(cls))
            settings[name] = own_settings(cls)
        except PluginError as e:
            t.add_row(name, f"plugin {value}", Text(f"cannot load: {e}", "red"))
    lines = [t, "Each method's own settings, with their defaults (--set NAME=VALUE changes one):"]
    lines += [f"  {name}: {text}" for name, text in settings.items()]
    return lines + [f"Plugins register in the {ENTRY_POINT_GROUP!r} entry-point group; any class can also be given "
                  f"as path/to/file.py:ClassName or package.module:ClassName."]
