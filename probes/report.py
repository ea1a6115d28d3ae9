"""Collect probed runs into summary.csv, a Figure-4-style chart, learning curves and report.md.

Following the paper's Figure 4, redundancy and uniqueness are read from runs
trained on unbiased pairs and synergy from runs trained on synergy-biased
pairs; a method with only one kind of run is read from what it has (and the
report says so).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import numpy as np

import comm_diag.trifeature_gen as tg
from comm_diag.outputs import check as check_output, claim

from comm_diag.comm.run_folder import (PROBES_BY_EPOCH, PROBES_CSV, PROBES_JSON, TrainingError, checkpoint_digest,
                                      read_config)

from .suite import PROBE_COLUMNS, REQUIRED_COLUMNS, write_csv
from .tasks import INTERACTIONS, TASKS, chance
from .verdict import RULE, Verdict, verdict



class ReportError(ValueError):
    """Nothing to report, or runs that cannot be read."""


def find_runs(paths: Iterable[Path | str], *, mix_datasets: bool = False) -> list[Path]:
    """Probed run folders (holding probes.csv) at or below the given paths.

    Refused, so that no mean looks more certain than it is: a run reached twice (it
    would count as two seeds), and runs trained on different datasets of one kind
    (unbiased or synergy-biased) unless ``mix_datasets``.
    """
    runs: list[Path] = []
    ids: dict[str, Path] = {}
    for p in map(Path, paths):
        if not p.exists():
            raise ReportError(f"{p} does not exist")
        found = [p] if (p / PROBES_CSV).is_file() else sorted(q.parent for q in p.rglob(PROBES_CSV))
        for run in found:
            if run.resolve() in {r.resolve() for r in runs}:
                raise ReportError(f"the run {run} is given twice: it would count as two seeds")
            ident = probed_identity(run)
            if ident is not None and ident in ids:
                raise ReportError(f"{run} and {ids[ident]} are the same run (one identity: a copy): "
                                  f"it would count as two seeds")
            if ident is not None:
                ids[ident] = run
            runs.append(run)
    if not runs:
        raise ReportError("no probed runs found (a run needs probes.csv: run `comm-diag probe RUN` first)")
    if not mix_datasets:
        by_data: dict[tuple[bool, str], list[Path]] = {}
        for run in runs:
            meta = _run_meta(run)
            by_data.setdefault((bool(meta["data"]["spec"]["synergy"]), meta["data"]["fingerprint"]), []).append(run)
        for biased in (False, True):
            groups = [g for (b, _), g in by_data.items() if b == biased]
            if len(groups) > 1:
                raise ReportError(f"the runs were trained on {len(groups)} different "
                                  f"{'synergy-biased' if biased else 'unbiased'} datasets (e.g. {groups[0][0]} and "
                                  f"{groups[1][0]}); report them separately, or pass --mix-datasets to pool them")
    return runs


def probed_identity(run: Path) -> Optional[str]:
    """The run's identity, after checking that its probes are of its own weights: probes.json
    names the run of config.json and the digest of the checkpoint it probed, which must
    still be the one on disk. None for runs written before 0.4 (no identity)."""
    meta = _run_meta(run)
    try:
        probed = json.loads((run / PROBES_JSON).read_text())
        if not isinstance(probed, dict):
            raise ValueError
    except (OSError, ValueError):
        raise ReportError(f"{run}/probes.json is missing or damaged: probe the run again") from None
    ident = meta.get("run_id")
    if ident is None:
        return None
    if probed.get("run_id") != ident:
        raise ReportError(f"{run}: its probes were not made on this run (probes.json names another run than "
                          f"config.json): probe it again")
    epoch = probed.get("epoch")
    try:
        digest = checkpoint_digest(run, epoch) if isinstance(epoch, int) else None
    except OSError:
        digest = None
    if digest is None or digest != probed.get("weights_sha256"):
        raise ReportError(f"{run}: the weights it was probed on are not the ones in checkpoints/ (changed or "
                          f"missing since): probe it again")
    return ident


PROBE_FILE_COLUMNS = set(REQUIRED_COLUMNS)  # files written before 0.2 lack the bits


def _run_meta(run: Path) -> dict:
    try:
        meta = read_config(run)
        meta["data"]["spec"]["synergy"], meta["data"]["fingerprint"], meta["train"]["epochs"]
    except TrainingError as e:
        raise ReportError(str(e)) from None
    except (OSError, ValueError, KeyError, TypeError):
        raise ReportError(f"{run} is not a readable run: its config.json is missing or damaged") from None
    return meta


def _read_rows(run: Path) -> tuple[list[dict], bool]:
    meta = _run_meta(run)
    with open(run / PROBES_CSV, newline="") as f:
        reader = csv.DictReader(f)
        missing = PROBE_FILE_COLUMNS - set(reader.fieldnames or ())
        if missing:
            raise ReportError(f"{run}/probes.csv lacks the columns {', '.join(sorted(missing))}: "
                              f"probe the run again (comm-diag probe {run})")
        rows = list(reader)
    try:
        for r in rows:
            r["seed"] = int(r["seed"])
            r["balanced_accuracy"] = float(r["balanced_accuracy"])
            r["auroc"] = float(r["auroc"]) if r["auroc"] else None
            for k in ("bits", "bits_fraction"):
                r[k] = float(r[k]) if r.get(k) else None
    except (TypeError, ValueError):
        raise ReportError(f"{run}/probes.csv holds a value that is not a number: probe the run again") from None
    unfinished = unfinished_epoch(run, meta)
    if unfinished is not None:
        raise ReportError(f"{run} is unfinished (probed at epoch {unfinished} of {meta['train']['epochs']}): "
                          f"finish it with `comm-diag train --resume` and probe it again")
    return rows, bool(meta["data"]["spec"]["synergy"])


def unfinished_epoch(run: Path, meta: dict) -> Optional[int]:
    """The epoch a run's probes.json was written at, if before the run's last epoch; else None."""
    try:
        probed = json.loads((run / PROBES_JSON).read_text())["epoch"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ReportError(f"{run}/probes.json is missing or damaged: probe the run again") from None
    return probed if probed < meta["train"]["epochs"] else None


def summary_rows(runs: Sequence[Path]) -> tuple[list[dict], dict[str, str]]:
    """The Figure-4 rows of all runs (R, U from unbiased trainings, S from synergy
    trainings when a method has both), and a note per method on where they came from."""
    by_method: dict[str, dict[bool, list[dict]]] = {}
    for run in runs:
        rows, biased = _read_rows(run)
        for r in rows:
            base = r["method"].removesuffix("@init")
            by_method.setdefault(base, {}).setdefault(biased, []).append(r)
    out, notes = [], {}
    for method, kinds in by_method.items():
        if True in kinds and False in kinds:
            out += [r for r in kinds[False] if r["task"] != "synergy"]
            out += [r for r in kinds[True] if r["task"] == "synergy"]
            notes[method] = "R, U from unbiased training; S from synergy-biased training"
        else:
            biased = next(iter(kinds))
            out += kinds[biased]
            notes[method] = f"all tasks from {'synergy-biased' if biased else 'unbiased'} training only"
    return out, notes


def verdicts(rows: list[dict], probe: str = "linear", representation: str = "fused") -> dict[str, dict[str, Verdict]]:
    """method -> interaction (R, U, S) -> Verdict, from the fused representation."""
    def scores(method: str, task: str) -> list[float]:
        return [r["balanced_accuracy"] for r in rows if r["method"] == method and r["task"] == task
                and r["probe"] == probe and r["representation"] == representation]
    methods = sorted({r["method"] for r in rows if not r["method"].endswith("@init")})
    out = {}
    for m in methods:
        out[m] = {}
        for key, task in INTERACTIONS.items():
            s = scores(m, task)
            if s:
                out[m][key] = verdict(s, scores(f"{m}@init", task), chance(task))
    return out


def _fmt(v: Verdict) -> str:
    sd = f" ±{v.std:.1f}" if v.n_seeds > 1 else ""
    return f"{v.mean:.1f}{sd}"


def figure4(rows: list[dict], path: Path, probe: str = "linear") -> Path:
    """Bar chart like the paper's Figure 4: R, U, S per method, sd error bars, dashed chance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    keep = [r for r in rows if r["probe"] == probe and r["representation"] == "fused"
            and r["task"] in INTERACTIONS.values()]
    df = pd.DataFrame(keep)
    label = {v: k for k, v in INTERACTIONS.items()}
    df["interaction"] = df["task"].map(label)
    order = [k for k in INTERACTIONS if k in set(df["interaction"])]
    fig, ax = plt.subplots(figsize=(2.2 + 1.4 * len(order) * max(1, df["method"].nunique()) / 3, 3.6))
    sns.barplot(df, x="interaction", y="balanced_accuracy", hue="method", order=order, errorbar="sd",
                ax=ax, palette="deep")
    for i, k in enumerate(order):
        c = chance(INTERACTIONS[k])
        ax.hlines(c, i - 0.45, i + 0.45, colors="k", linestyles="dashed", linewidth=1)
    ax.set_ylim(0, 100)
    ax.set_ylabel("balanced accuracy (%)")
    ax.set_xlabel("")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title("linear probe on the fused representation (dashed: chance)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def learning_curves(runs: Sequence[Path], path: Path, probe: str = "linear") -> Optional[Path]:
    """Probe accuracy against epochs, for runs probed every epoch; None if none were."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    frames = []
    for run in runs:
        p = run / PROBES_BY_EPOCH
        if p.is_file():
            df = pd.read_csv(p)
            frames.append(df)
    if not frames:
        return None
    df = pd.concat(frames)
    df = df[(df["probe"] == probe) & (df["representation"] == "fused")]
    tasks = [t for t in TASKS if t in set(df["task"])]
    # one line per method (mean over seeds, band: 95% CI when there are several)
    g = sns.relplot(df, x="epoch", y="balanced_accuracy", hue="method", col="task", col_order=tasks,
                    kind="line", marker="o", height=2.6, aspect=1.0, facet_kws={"ylim": (0, 100)})
    for ax, task in zip(g.axes.flat, tasks):
        ax.axhline(chance(task), color="k", linestyle="--", linewidth=1)
    g.savefig(path, dpi=120)
    plt.close(g.figure)
    return path


def write_report(runs: Sequence[Path], out: Path | str, title: str = "comm-diag report",
                 lead: Optional[Callable[[dict], Sequence[str]]] = None,
                 tail: Optional[Callable[[dict], Sequence[str]]] = None) -> dict:
    """summary.csv, figure4.png, learning_curves.png (if any), report.md in ``out``. The
    report is composed once, in memory: ``lead(result)`` and ``tail(result)`` are markdown
    lines right after the title (check's conclusion) and after the tables (a study's
    expectations), composed from the same rows and verdicts as the tables."""
    out = Path(out)
    rows, notes = summary_rows(runs)  # every run read (or refused) before anything is written
    if not any(not r["method"].endswith("@init") for r in rows):
        raise ReportError("the runs hold no probe results of a trained model")
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "summary.csv", rows, PROBE_COLUMNS)
    fig = figure4(rows, out / "figure4.png")
    curves = learning_curves(runs, out / "learning_curves.png")
    ver = verdicts(rows)
    recoverable = {m: v["S"] for m, v in verdicts(rows, probe="mlp").items() if "S" in v}
    result = {"rows": rows, "verdicts": ver, "recoverable": recoverable, "notes": notes}
    first = list(lead(result)) if lead else []
    lines = [f"# {title}", "", *([*first, ""] if first else []), f"comm-diag {tg.__version__}. Runs: {len(runs)}.", "",
             "Linear probe (class-weighted logistic regression) on the fused representation, balanced "
             "accuracy in % on the unbiased test pairs (mean ± std over seeds). "
             "R: shape (shared), U: texture of x1, S: synergy label, fused into the representation. "
             "S recoverable: the same synergy label read by an MLP probe (one hidden layer) on the same "
             "representation. In brackets: the same architecture at random initialisation.", "",
             "| method | R | U | S (fused, linear) | S recoverable (MLP) | verdict R | verdict U | verdict S fused | "
             "verdict S recoverable | seeds | source |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for m, vs in ver.items():
        both = {**vs, **({"S+": recoverable[m]} if m in recoverable else {})}
        cells = [f"{_fmt(both[k])} [{both[k].control:.1f}]" if k in both else "–" for k in ("R", "U", "S", "S+")]
        verd = [both[k].verdict if k in both else "–" for k in ("R", "U", "S", "S+")]
        n = max((v.n_seeds for v in vs.values()), default=0)
        lines.append(f"| {m} | {' | '.join(cells)} | {' | '.join(verd)} | {n} | {notes.get(m, '')} |")
    lines += ["", SYNERGY_LEVELS]
    syn = [r for r in rows if r["task"] == "synergy" and r["probe"] == "linear" and r["auroc"] is not None
           and r["representation"] in ("fused", "modality1", "modality2") and not r["method"].endswith("@init")]
    if syn:
        lines += ["", "Synergy by representation (balanced accuracy / AUROC, mean over seeds): "
                  "a synergy present only in the fused representation is the signature of fusion.", "",
                  "| method | fused | modality 1 alone | modality 2 alone |", "|---|---|---|---|"]
        for m in sorted({r["method"] for r in syn}):
            cell = []
            for rep in ("fused", "modality1", "modality2"):
                s = [r for r in syn if r["method"] == m and r["representation"] == rep]
                cell.append(f"{np.mean([r['balanced_accuracy'] for r in s]):.1f} / "
                            f"{np.mean([r['auroc'] for r in s]):.1f}" if s else "–")
            lines.append(f"| {m} | {' | '.join(cell)} |")
    lines += information_panel(rows)
    sections = list(tail(result)) if tail else []
    lines += [*([""] + sections if sections else []), "", f"Verdict rule: {RULE}", "",
              f"![Figure 4]({fig.name})"]
    if curves:
        lines += ["", f"![learning curves]({curves.name})"]
    lines += ["", "All scores: `summary.csv` (columns " + ",".join(PROBE_COLUMNS) + ")."]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return result


SYNERGY_LEVELS = ("Synergy is read at two levels. **Fused into the representation** (the paper's sense): a linear "
                  "probe on the fused representation separates the synergy label, so the representation itself "
                  "computed it. **Recoverable from it**: an MLP probe on the same representation separates it, so "
                  "the information is there but may be computed by the probe (under synergy-biased training "
                  "texture(x1) predicts colour(x2), so a method that keeps both attributes lets an MLP compute "
                  "their agreement without having fused anything). Each level gets the same verdict rule against "
                  "its own random-initialisation control.")


def information_panel(rows: list[dict], probe: str = "linear", representation: str = "fused") -> list[str]:
    """Markdown lines: per method and task, the probe's lower bound on I(Z; T) in bits and the
    fraction of the task's exact interaction bits (the dataset's PID) it reaches."""
    keep = [r for r in rows if r["probe"] == probe and r["representation"] == representation
            and r.get("bits") is not None and not r["method"].endswith("@init")]
    if not keep:
        return []
    tasks = [t for t in TASKS if any(r["task"] == t for r in keep)]
    lines = ["", f"Information in bits ({probe} probe, {representation} representation, mean over seeds): the "
             "lower bound I(Z; T) >= H(T) - CE(T | Z) from the probe's probabilities calibrated to the label "
             "frequencies, and in brackets the fraction of the task's exact interaction bits in the test law "
             "(PID of the dataset: shape 3.32 bits redundant, texture 3.32 unique, synergy label 0.469 "
             "synergistic with the defaults).", "",
             "| method | " + " | ".join(tasks) + " |", "|---|" + "---|" * len(tasks)]
    for m in sorted({r["method"] for r in keep}):
        cells = []
        for t in tasks:
            sel = [r for r in keep if r["method"] == m and r["task"] == t]
            frac = [r["bits_fraction"] for r in sel if r.get("bits_fraction") is not None]
            cells.append(f"{np.mean([r['bits'] for r in sel]):.2f} [{100 * np.mean(frac):.0f}%]" if sel and frac
                         else (f"{np.mean([r['bits'] for r in sel]):.2f}" if sel else "–"))
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return lines


REPORT_RECORD = "report.json"  # marks a folder as a report (``comm_diag.outputs``)


def report(paths: Sequence[Path | str], out: Path | str, *, mix_datasets: bool = False) -> dict:
    """``comm-diag report``: every probed run at or below ``paths`` into the report folder
    ``out``, claimed like every output (``comm_diag.outputs``: absent, empty, or a report
    already; never a user's folder, a run or a dataset), marked by OUT/report.json (the
    runs it reads, their identities, the package version). Returns ``write_report``'s result."""
    check_output(out, "report")  # before the runs are read: a refused folder costs nothing
    runs = find_runs(paths, mix_datasets=mix_datasets)
    summary_rows(runs)  # every run's probe table read (or refused) before the folder is claimed
    with claim(out, "report") as out:
        out.mkdir(parents=True, exist_ok=True)
        (out / REPORT_RECORD).write_text(json.dumps({
            "package_version": tg.__version__, "runs": [str(r.resolve()) for r in runs],
            "run_ids": [_run_meta(r).get("run_id") for r in runs]}, indent=2))
        return write_report(runs, out)
