"""The report's figures: Figure 4 (what each method captured, with the verdict line) and the
learning curves. Labels come from the tasks (R, U1, U2, S), never from column names; methods
are shown by their display names, each in one colour in every figure of every report."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from comm_diag.comm.methods.registry import DISPLAY_NAMES, display_name
from comm_diag.outputs import write_file

from comm_diag.probes.measure.readouts import RECOVERABLE, Readout, readouts
from comm_diag.probes.measure.table import ProbeTable, control_of, select
from comm_diag.probes.measure.tasks import chance, interaction_of, short_name, task_names
from comm_diag.probes.measure.verdict import verdict

S_RECOVERABLE = "S recoverable\n(MLP)"  # the MLP probe's synergy group


def new_figure(**kwargs):
    """A matplotlib Figure that belongs to nobody's pyplot: no backend is chosen or changed
    (0.4 switched the process to Agg, and a notebook's plt.show() afterwards showed nothing),
    nothing is left open; ``fig.savefig`` renders it."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def method_colours(labels: Sequence[str]) -> dict:
    """label -> its colour, the same in every figure: a built-in always takes its own colour of
    seaborn's "deep" palette (CoMM blue, Cross orange, Cross+Self green, ...), any other label
    (a plugin, a study's variant) the remaining ones in the order of its name."""
    import seaborn as sns

    palette = sns.color_palette("deep", 10)
    builtin = {name: palette[i] for i, name in enumerate(DISPLAY_NAMES)}
    rest = palette[len(builtin):] + palette[:len(builtin)]  # beyond five others, colours repeat
    others = sorted({label for label in labels if label not in builtin})
    return {label: builtin.get(label) or rest[others.index(label) % len(rest)] for label in labels}


def save(fig, path: Path, **kwargs) -> Path:
    """``fig`` as ``path`` (PNG) and beside it as SVG (vector, for a paper): both written
    through ``write_file``. Returns ``path``."""
    for target in (path, path.with_suffix(".svg")):
        write_file(target, lambda p: fig.savefig(p, format=target.suffix[1:], **kwargs))
    return path


def _groups(rows: list[dict]) -> list[tuple[str, str, str]]:
    """(label, task, probe) of each bar group: every task read by the linear probe on the fused
    representation, then synergy read by the MLP probe (recoverable) when it was probed."""
    table = ProbeTable.of(rows)

    def label(r: Readout) -> str:
        if r.key == RECOVERABLE:
            return S_RECOVERABLE
        return short_name(r.task) + (" fused\n(linear)" if interaction_of(r.task) == "S" else "")
    return [(label(r), r.task, r.probe) for r in readouts()
            if table.trained(task=r.task, probe=r.probe, representation=r.representation)]


def figure4(rows: list[dict], path: Path, plumbing: bool = False) -> Path:
    """Bars like the paper's Figure 4: per task (R, U1, U2, S fused; S recoverable from the
    MLP probe) and method, the mean balanced accuracy over seeds (error bar: the verdict's
    95% interval, ``verdict.INTERVAL``), the same architecture at random initialisation as a
    marker on its bar, the verdict line max(chance, init) + 5 as a short black line over it,
    a star where captured (never at a ``plumbing`` preset), and chance dashed."""
    groups = _groups(rows)
    methods = ProbeTable.of(rows).methods()
    colours = method_colours(methods)
    width = 0.8 / max(1, len(methods))
    fig = new_figure(figsize=(3.0 + 0.5 * len(groups) * max(2, len(methods)), 3.8))
    ax = fig.subplots()

    def picked(method: str, task: str, probe: str) -> list[dict]:
        return select(rows, method=method, task=task, probe=probe, representation="fused")
    for g, (label, task, probe) in enumerate(groups):
        for i, m in enumerate(methods):
            mine = picked(m, task, probe)
            if not mine:
                continue
            x = g - 0.4 + width * (i + 0.5)
            name = display_name(m)
            init = [r["balanced_accuracy"] for r in picked(control_of(m), task, probe)]
            v = verdict([r["balanced_accuracy"] for r in mine], init, chance(task), ses=[r.get("ba_se") for r in mine])
            # the error bar is the verdict's own 95% interval (verdict.INTERVAL)
            ax.bar(x, v.mean, width * 0.92, yerr=v.ci95 if v.ci95 > 0 else None, capsize=2,
                   color=colours[m], label=name if name not in ax.get_legend_handles_labels()[1] else None)
            ax.hlines(v.threshold, x - width * 0.46, x + width * 0.46, colors="k", linewidth=1.6,
                      label="verdict line: max(chance, init) + 5" if g == 0 and i == 0 else None)
            if v.verdict == "captured" and not plumbing:  # above the bar and its error bar
                ax.plot(x, min(98.0, v.high + 3), marker="*",
                        markersize=6, color="k", linestyle="none",
                        label="captured" if "captured" not in ax.get_legend_handles_labels()[1] else None)
            if init:
                ax.plot(x, np.mean(init), marker="D", markersize=4, markerfacecolor="white", markeredgecolor="k",
                        linestyle="none", label="random init" if g == 0 and i == 0 else None)
        ax.hlines(chance(task), g - 0.45, g + 0.45, colors="grey", linestyles="dashed", linewidth=1,
                  label="chance" if g == 0 else None)
    ax.set_xticks(range(len(groups)), [label for label, _, _ in groups])
    ax.set_ylim(0, 100)
    ax.set_ylabel("balanced accuracy (%)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    ax.set_title("fused representation: linear probe (R, U, S fused) and MLP probe (S recoverable)", fontsize=8)
    fig.tight_layout()
    return save(fig, path, dpi=150)


def learning_curves(frames: Sequence, path: Path, probe: str = "linear",
                    reference: Sequence[dict] = ()) -> Optional[Path]:
    """Probe accuracy against epochs (pandas frames of probes_by_epoch.csv), one panel per
    task, one line per method (mean over seeds; band: 95% CI when there are several),
    chance dashed, ``reference`` (rows {task, epoch, balanced_accuracy}: the authors'
    published curve) dotted black; None when no run was probed during training."""
    if not frames:
        return None
    import pandas as pd
    import seaborn as sns
    from matplotlib.ticker import MaxNLocator

    df = pd.concat(frames)
    df = df[(df["probe"] == probe) & (df["representation"] == "fused")]
    tasks = [t for t in task_names() if t in set(df["task"])]
    if not tasks:
        return None
    methods = sorted(set(df["method"]))
    palette = {display_name(m): c for m, c in method_colours(methods).items()}
    df = df.assign(method=df["method"].map(display_name))
    # constrained layout keeps the legend next to the panels (tight_layout left a wide gap)
    fig = new_figure(figsize=(2.9 * len(tasks) + 1.6, 3.4), layout="constrained")
    axes = fig.subplots(1, len(tasks), sharey=True, squeeze=False)[0]
    for ax, task in zip(axes, tasks):
        sns.lineplot(df[df["task"] == task], x="epoch", y="balanced_accuracy", hue="method",
                     hue_order=[display_name(m) for m in methods], palette=palette, marker="o", ax=ax,
                     legend=ax is axes[0])
        ax.axhline(chance(task), color="grey", linestyle="--", linewidth=1, label="chance")
        ref = sorted((r["epoch"], r["balanced_accuracy"]) for r in select(reference, task=task))
        if ref:
            ax.plot(*zip(*ref), color="black", linestyle=":", marker="x", markersize=4, linewidth=1.2,
                    label="CoMM as published")
        ax.set_ylim(0, 100)
        ax.set_title(f"{short_name(task)}: {task}", fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"balanced accuracy (%), {probe} probe" if ax is axes[0] else "")
    seen: dict = {}  # one legend for the figure: every line of every panel, once
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    fig.legend(list(seen.values()), list(seen), loc="outside right center", fontsize=8, frameon=False)
    return save(fig, path, dpi=120)
