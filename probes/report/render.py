"""A summarized result (``summary.summarize``) written out: summary.csv, Figure 4, the
learning curves, report.md and report.html; and ``report``, the command that claims the
folder, reads the runs and renders them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

import comm_diag.trifeature_gen as tg
from comm_diag.comm.methods.registry import display_name
from comm_diag.outputs import check as check_output, claim, write_file

from comm_diag.probes.measure.readouts import legend, with_verdicts
from comm_diag.probes.measure.suite import write_csv
from comm_diag.probes.measure.table import ProbeTable, known, select
from comm_diag.probes.measure.tasks import reported_task, task_names
from comm_diag.probes.measure.optimum import TOLERANCE
from comm_diag.probes.measure.verdict import RULE, Verdict, over_seeds, with_interval
from comm_diag.probes.report.conclusions import plumbing_note, plumbing_only
from comm_diag.probes.report.figures import figure4, learning_curves
from comm_diag.probes.report.html_page import html_page, md_cell
from comm_diag.probes.report.published import METHOD, fidelity_lines, published_curve
from comm_diag.probes.report.runs import find_runs, run_meta
from comm_diag.probes.report.result import StudyResult
from comm_diag.probes.report.summary import SUMMARY_COLUMNS, summarize


def _fmt(v: Verdict) -> str:
    return with_interval(v.mean, v.ci95, v.n_seeds)


def unconverged_lines(rows: Sequence[dict]) -> list[str]:
    """A warning naming every probe row whose logistic fits did not all reach the stated
    optimum (``probes.measure.optimum``); nothing when they all did."""
    bad = select(rows, converged=lambda c: c is False)
    if not bad:
        return []
    names = sorted({f"{r['method']} {r['task']} ({r['probe']}, {r['representation']}, seed {r['seed']})" for r in bad})
    return ["", f"**Not converged:** {len(bad)} probe row(s) did not reach the stated optimum (max |gradient| <= "
            f"{TOLERANCE:g}); their scores are reported but not at the optimum: {md_cell(', '.join(names))}. "
            f"probes.json records each fit's iterations and final gradient."]


def markdown_lines(result: StudyResult, title: str, lead: Sequence[str] = (), tail: Sequence[str] = (),
                   figures: Sequence[str] = ()) -> list[str]:
    """The report as markdown lines (pure): the title, ``lead`` (check's conclusion), the
    verdict table, synergy by representation, the information panel, ``tail`` (a study's
    expectations and sections), the verdict rule and ``figures`` (file names)."""
    rows, ver, notes = result.rows, result.verdicts, result.notes
    n = max((v.n_seeds for vs in ver.values() for v in vs.values()), default=1)
    smoke = plumbing_note(result.presets, result.train_epochs)
    columns = result.columns()
    lines = [f"# {title}", "", *([*smoke, ""] if smoke else []), *([*lead, ""] if lead else []),
             f"comm-diag {tg.__version__}. Runs: {result.runs}.", "",
             "Linear probe (class-weighted logistic regression) on the fused representation, balanced "
             f"accuracy in % on the unbiased test pairs ({'mean ' + over_seeds(n) if n > 1 else 'one seed'}, ± the "
             "95% interval of the verdict rule below). " + legend(columns)
             + " In brackets: max(chance, the same architecture at random initialisation).",
             "", "| method | " + " | ".join(c.label for c in columns) + " | "
             + " | ".join(f"verdict {c.label}" for c in columns) + " | seeds | source |",
             "|---|" + "---|" * (2 * len(columns) + 2)]
    for m, vs in ver.items():
        both = result.levels(m)
        cells = [f"{_fmt(both[c.key])} [{both[c.key].control:.1f}]" if c.key in both else "–" for c in columns]
        verd = [both[c.key].verdict if c.key in both else "–" for c in columns]
        seeds = max((v.n_seeds for v in vs.values()), default=0)
        lines.append(f"| {md_cell(display_name(m))} | {' | '.join(cells)} | {' | '.join(verd)} | {seeds} | "
                     f"{md_cell(notes.get(m, ''))} |")
    lines += ["", SYNERGY_LEVELS]
    syn = rows.trained(task=reported_task("S"), probe="linear", auroc=known,
                       representation=("fused", "modality1", "modality2"))
    if syn:
        lines += ["", f"Synergy by representation (balanced accuracy / AUROC, "
                  f"{'mean ' + over_seeds(n) if n > 1 else 'one seed'}): "
                  "synergy read from the fused representation and from neither modality alone is what the "
                  "fusion adds; the verdict table says whether each reading clears its line.", "",
                  "| method | fused | modality 1 alone | modality 2 alone |", "|---|---|---|---|"]
        for m in sorted({r["method"] for r in syn}):
            cell = []
            for rep in ("fused", "modality1", "modality2"):
                s = select(syn, method=m, representation=rep)
                cell.append(f"{np.mean([r['balanced_accuracy'] for r in s]):.1f} / "
                            f"{np.mean([r['auroc'] for r in s]):.1f}" if s else "–")
            lines.append(f"| {md_cell(display_name(m))} | {' | '.join(cell)} |")
    lines += information_panel(rows, n_seeds=n)
    lines += unconverged_lines(rows)
    lines += [*([""] + list(tail) if tail else []), "", f"Verdict rule: {RULE}"]
    for name in figures:
        lines += ["", f"![{Path(name).stem.replace('_', ' ')}]({name})"]
    lines += ["", "All scores: `summary.csv` (columns " + ",".join(SUMMARY_COLUMNS) + "; line and verdict: the rule "
              "above applied to that row's method, task, probe and representation over seeds)."]
    return lines


def render(result: StudyResult, out: Path | str, title: str = "comm-diag report", lead: Sequence[str] = (),
           tail: Sequence[str] = ()) -> dict:
    """Write a summarized result (``summarize``) to ``out``: summary.csv, figure4.png,
    learning_curves.png (runs probed during training), report.md and report.html (one page,
    figures inline). Returns ``result``."""
    import pandas as pd

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plumbing = plumbing_only(result.presets)
    write_csv(out / "summary.csv", with_verdicts(result.rows, plumbing), SUMMARY_COLUMNS)
    figures = [figure4(result.rows, out / "figure4.png", plumbing).name]
    # runs of the paper preset on its data are compared with the authors' published curve (published.py)
    paper = result.published_comparable and bool(result.epochs.select(method=METHOD))
    reference = published_curve() if paper else ()
    if paper:
        lead = [*fidelity_lines(list(result.epochs)), "", *lead]
    curves = learning_curves([pd.DataFrame(list(result.epochs))] if result.epochs else [],
                             out / "learning_curves.png", reference=reference)
    figures += [curves.name] if curves else []
    text = "\n".join(markdown_lines(result, title, lead, tail, figures)) + "\n"
    write_file(out / "report.md", text)
    write_file(out / "report.html", html_page(text, out, title))
    return result


def write_report(runs: Sequence[Path], out: Path | str, title: str = "comm-diag report") -> StudyResult:
    """``render(summarize(runs), out, title)``: the report of some probed runs."""
    return render(summarize(runs), out, title)


SYNERGY_LEVELS = ("Synergy is read at two levels. **Fused into the representation** (the paper's sense): a linear "
                  "probe on the fused representation separates the synergy label, so the representation itself "
                  "computed it. **Recoverable from it**: an MLP probe on the same representation separates it, so "
                  "the information is there but may be computed by the probe (under synergy-biased training "
                  "texture(x1) predicts colour(x2), so a method that keeps both attributes lets an MLP compute "
                  "their agreement without having fused anything). Each level gets the same verdict rule against "
                  "its own random-initialisation control.")


def information_panel(rows: Iterable[dict], probe: str = "linear", representation: str = "fused",
                      n_seeds: int = 1) -> list[str]:
    """Markdown lines: per method and task, the probe's lower bound on I(Z; T) in bits and the
    fraction of the task's exact interaction bits (the dataset's PID) it reaches."""
    keep = ProbeTable.of(rows).trained(probe=probe, representation=representation, bits=known)
    if not keep:
        return []
    tasks = [t for t in task_names() if select(keep, task=t)]
    exact = {}  # task -> its exact bits, as the probe rows record them (bits / fraction)
    for r in select(keep, bits_fraction=bool):
        exact.setdefault(r["task"], r["bits"] / r["bits_fraction"])
    stated = ", ".join(f"{t} {exact[t]:.3g}" for t in tasks if t in exact)
    lines = ["", f"Information in bits ({probe} probe, {representation} representation, "
             f"{'mean ' + over_seeds(n_seeds) if n_seeds > 1 else 'one seed'}): the lower bound I(Z; T) >= "
             "H(T) - CE(T | Z) from the probe's probabilities calibrated on its held-out probe split (a temperature "
             "and one offset per class; never on test), and in "
             "brackets the fraction of the task's exact interaction bits in the test law (the dataset's PID"
             + (f": {stated} bits" if stated else "") + ").", "",
             "| method | " + " | ".join(tasks) + " |", "|---|" + "---|" * len(tasks)]
    for m in sorted({r["method"] for r in keep}):
        cells = []
        for t in tasks:
            sel = select(keep, method=m, task=t)
            frac = [r["bits_fraction"] for r in select(sel, bits_fraction=known)]
            cells.append(f"{np.mean([r['bits'] for r in sel]):.2f} [{100 * np.mean(frac):.0f}%]" if sel and frac
                         else (f"{np.mean([r['bits'] for r in sel]):.2f}" if sel else "–"))
        lines.append(f"| {md_cell(display_name(m))} | " + " | ".join(cells) + " |")
    return lines


REPORT_RECORD = "report.json"  # marks a folder as a report (``comm_diag.outputs``)


def report(paths: Sequence[Path | str], out: Path | str, *, mix_datasets: bool = False) -> StudyResult:
    """``comm-diag report``: every probed run at or below ``paths`` into the report folder
    ``out``, claimed like every output (``comm_diag.outputs``: absent, empty, or a report
    already; never a user's folder, a run or a dataset), marked by OUT/report.json (the
    runs it reads, their identities, the package version). Returns ``write_report``'s result."""
    check_output(out, "report")  # before the runs are read: a refused folder costs nothing
    runs = find_runs(paths, mix_datasets=mix_datasets)
    result = summarize(runs)  # every run's probe tables read (or refused) before the folder is claimed
    with claim(out, "report") as out:
        out.mkdir(parents=True, exist_ok=True)
        write_file(out / REPORT_RECORD, json.dumps({
            "package_version": tg.__version__, "runs": [str(r.resolve()) for r in runs],
            "run_ids": [run_meta(r).get("run_id") for r in runs]}, indent=2))
        return render(result, out)
