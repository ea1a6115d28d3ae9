"""Collect probed runs into summary.csv, a Figure-4-style chart, learning curves and report.md.

Following the paper's Figure 4, redundancy and uniqueness are read from runs
trained on unbiased pairs and synergy from runs trained on synergy-biased
pairs; a method with only one kind of run is read from what it has (and the
report says so).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

import comm_diag.trifeature_gen as tg
from comm_diag.comm.methods.registry import display_name
from comm_diag.comm.run_folder import (PROBES_BY_EPOCH, PROBES_CSV, PROBES_JSON, TrainingError, checkpoint_digest,
                                       read_config)
from comm_diag.outputs import OutputError, check as check_output, claim, no_links, read_json, write_file
from comm_diag.trifeature_gen.io import file_sha256

from comm_diag.probes.conclusions import plumbing_note
from comm_diag.probes.figures import figure4, learning_curves
from comm_diag.probes.html_page import html_page, md_cell
from comm_diag.probes.published import METHOD, fidelity, fidelity_line, published_curve
from comm_diag.probes.suite import PROBE_COLUMNS, REQUIRED_COLUMNS, write_csv
from comm_diag.probes.readouts import levels_of, select, table_readouts, verdicts, with_verdicts
from comm_diag.probes.tasks import TASKS, get_task
from comm_diag.probes.verdict import RULE, Verdict, over_seeds, with_interval



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
            try:
                no_links(run, "run folder")
            except OutputError as e:
                raise ReportError(str(e)) from None
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
        probed = read_json(run / PROBES_JSON)
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
    recorded = probed.get("sha256")  # since 0.5: the probe tables themselves
    if recorded is not None:
        for name in (PROBES_CSV, PROBES_BY_EPOCH):
            now = file_sha256(run / name) if (run / name).is_file() else None
            if now != (recorded.get(name) if isinstance(recorded, dict) else "damaged"):
                raise ReportError(f"{run}/{name} is not the file its probes.json records (edited, copied in or "
                                  f"removed since probing): probe the run again")
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
    try:  # utf-8-sig: a byte-order mark (a spreadsheet's save) is not part of the first column's name
        with open(run / PROBES_CSV, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            missing = PROBE_FILE_COLUMNS - set(reader.fieldnames or ())
            if missing:
                raise ReportError(f"{run}/probes.csv lacks the columns {', '.join(sorted(missing))}: "
                                  f"probe the run again (comm-diag probe {run})")
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as e:
        raise ReportError(f"{run}/probes.csv is not a text table ({type(e).__name__}): probe the run again") from None
    try:
        for r in rows:
            r["seed"] = int(r["seed"])
            r["balanced_accuracy"] = float(r["balanced_accuracy"])
            r["auroc"] = float(r["auroc"]) if r["auroc"] else None
            for k in ("bits", "bits_fraction"):
                r[k] = float(r[k]) if r.get(k) else None
    except (TypeError, ValueError):
        raise ReportError(f"{run}/probes.csv holds a value that is not a number: probe the run again") from None
    for r in rows:  # a score no probe can give is a damaged file, never a verdict
        for k in ("balanced_accuracy", "auroc"):
            if r[k] is not None and not 0.0 <= r[k] <= 100.0:  # NaN fails too
                raise ReportError(f"{run}/probes.csv holds {k} = {r[k]} (a score is in [0, 100]): "
                                  f"the file is damaged; probe the run again")
        if r["bits"] is not None and not math.isfinite(r["bits"]):
            raise ReportError(f"{run}/probes.csv holds bits = {r['bits']}: the file is damaged; probe the run again")
    keys = [(r["method"], r["seed"], r["task"], r["probe"], r["representation"]) for r in rows]
    if len(set(keys)) < len(keys):
        twice = next(k for k in keys if keys.count(k) > 1)
        raise ReportError(f"{run}/probes.csv holds the row {'/'.join(map(str, twice))} more than once: it would "
                          f"count as several seeds; probe the run again")
    unfinished = unfinished_epoch(run, meta)
    if unfinished is not None:
        raise ReportError(f"{run} is unfinished (probed at epoch {unfinished} of {meta['train']['epochs']}): "
                          f"finish it with `comm-diag train --resume` and probe it again")
    return rows, bool(meta["data"]["spec"]["synergy"])


def unfinished_epoch(run: Path, meta: dict) -> Optional[int]:
    """The epoch a run's probes.json was written at, if before the run's last epoch; else None."""
    try:
        probed = read_json(run / PROBES_JSON)["epoch"]
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
        if True in kinds and False in kinds:  # each task from the training it declares (Figure 4)
            out += [r for r in kinds[False] if get_task(r["task"]).trained_on == "unbiased"]
            out += [r for r in kinds[True] if get_task(r["task"]).trained_on == "synergy"]
            notes[method] = "R, U from unbiased training; S from synergy-biased training"
        else:
            biased = next(iter(kinds))
            out += kinds[biased]
            notes[method] = f"all tasks from {'synergy-biased' if biased else 'unbiased'} training only"
    return out, notes


SUMMARY_COLUMNS = (*PROBE_COLUMNS, "line", "verdict")  # summary.csv: every row with its verdict


def _fmt(v: Verdict) -> str:
    return with_interval(v.mean, v.std, v.n_seeds)


def epoch_rows(runs: Sequence[Path]) -> list[dict]:
    """The rows of every run's probes_by_epoch.csv (runs probed during training), typed."""
    out = []
    for run in runs:
        path = run / PROBES_BY_EPOCH
        if path.is_file():
            try:
                with open(path, newline="", encoding="utf-8-sig") as f:
                    reader = csv.DictReader(f)
                    missing = {"epoch", *PROBE_FILE_COLUMNS} - set(reader.fieldnames or ())
                    rows = list(reader)
                    if missing:
                        raise ReportError(f"{path} lacks the columns {', '.join(sorted(missing))}: probe the run "
                                          f"again with --every")
                    typed = [{**r, "epoch": int(r["epoch"]), "balanced_accuracy": float(r["balanced_accuracy"])}
                             for r in rows]
            except (ValueError, UnicodeDecodeError, csv.Error) as e:
                if isinstance(e, ReportError):
                    raise
                raise ReportError(f"{path} holds a value that is not a number ({e}): probe the run again") from None
            if any(not 0.0 <= r["balanced_accuracy"] <= 100.0 for r in typed):
                raise ReportError(f"{path} holds a score outside [0, 100]: the file is damaged; probe the run again")
            out += typed
    return out


def summarize(runs: Sequence[Path]) -> dict:
    """Everything a report says, read from the runs (nothing written): the Figure-4 rows and
    where they came from ("rows", "notes"), the verdicts of the linear probe per method and
    interaction ("verdicts"), of the MLP probe on synergy ("recoverable"), and the rows
    probed during training ("epochs"). Every run is read (or refused) here."""
    rows, notes = summary_rows(runs)
    if not any(not r["method"].endswith("@init") for r in rows):
        raise ReportError("the runs hold no probe results of a trained model")
    recoverable = {m: v["S"] for m, v in verdicts(rows, probe="mlp").items() if "S" in v}  # the S+ readout
    presets = sorted({_run_meta(r)["train"].get("preset", "cpu") for r in runs})
    train_epochs = sorted({_run_meta(r)["train"]["epochs"] for r in runs})
    return {"rows": rows, "notes": notes, "verdicts": verdicts(rows), "recoverable": recoverable,
            "epochs": epoch_rows(runs), "runs": len(runs), "presets": presets, "train_epochs": train_epochs}


def markdown_lines(result: dict, title: str, lead: Sequence[str] = (), tail: Sequence[str] = (),
                   figures: Sequence[str] = ()) -> list[str]:
    """The report as markdown lines (pure): the title, ``lead`` (check's conclusion), the
    verdict table, synergy by representation, the information panel, ``tail`` (a study's
    expectations and sections), the verdict rule and ``figures`` (file names)."""
    rows, ver, notes = result["rows"], result["verdicts"], result["notes"]
    n = max((v.n_seeds for vs in ver.values() for v in vs.values()), default=1)
    smoke = plumbing_note(result.get("presets", []))
    columns = table_readouts(result)
    lines = [f"# {title}", "", *([*smoke, ""] if smoke else []), *([*lead, ""] if lead else []),
             f"comm-diag {tg.__version__}. Runs: {result['runs']}.", "",
             "Linear probe (class-weighted logistic regression) on the fused representation, balanced "
             f"accuracy in % on the unbiased test pairs ({'mean ± std ' + over_seeds(n) if n > 1 else 'one seed'}). "
             "R: shape (shared), U: texture of x1, U2: texture of x2, S: synergy label, fused into the "
             "representation. S recoverable: the same synergy label read by an MLP probe (one hidden layer) on "
             "the same representation. In brackets: max(chance, the same architecture at random initialisation).",
             "", "| method | " + " | ".join(c.label for c in columns) + " | "
             + " | ".join(f"verdict {c.label}" for c in columns) + " | seeds | source |",
             "|---|" + "---|" * (2 * len(columns) + 2)]
    for m, vs in ver.items():
        both = levels_of(result, m)
        cells = [f"{_fmt(both[c.key])} [{both[c.key].control:.1f}]" if c.key in both else "–" for c in columns]
        verd = [both[c.key].verdict if c.key in both else "–" for c in columns]
        seeds = max((v.n_seeds for v in vs.values()), default=0)
        lines.append(f"| {md_cell(display_name(m))} | {' | '.join(cells)} | {' | '.join(verd)} | {seeds} | "
                     f"{md_cell(notes.get(m, ''))} |")
    lines += ["", SYNERGY_LEVELS]
    syn = [r for r in rows if r["task"] == "synergy" and r["probe"] == "linear" and r["auroc"] is not None
           and r["representation"] in ("fused", "modality1", "modality2") and not r["method"].endswith("@init")]
    if syn:
        lines += ["", f"Synergy by representation (balanced accuracy / AUROC, "
                  f"{'mean ' + over_seeds(n) if n > 1 else 'one seed'}): "
                  "a synergy present only in the fused representation is the signature of fusion.", "",
                  "| method | fused | modality 1 alone | modality 2 alone |", "|---|---|---|---|"]
        for m in sorted({r["method"] for r in syn}):
            cell = []
            for rep in ("fused", "modality1", "modality2"):
                s = select(syn, method=m, representation=rep)
                cell.append(f"{np.mean([r['balanced_accuracy'] for r in s]):.1f} / "
                            f"{np.mean([r['auroc'] for r in s]):.1f}" if s else "–")
            lines.append(f"| {md_cell(display_name(m))} | {' | '.join(cell)} |")
    lines += information_panel(rows, n_seeds=n)
    lines += [*([""] + list(tail) if tail else []), "", f"Verdict rule: {RULE}"]
    for name in figures:
        lines += ["", f"![{Path(name).stem.replace('_', ' ')}]({name})"]
    lines += ["", "All scores: `summary.csv` (columns " + ",".join(SUMMARY_COLUMNS) + "; line and verdict: the rule "
              "above applied to that row's method, task, probe and representation over seeds)."]
    return lines


def render(result: dict, out: Path | str, title: str = "comm-diag report", lead: Sequence[str] = (),
           tail: Sequence[str] = ()) -> dict:
    """Write a summarized result (``summarize``) to ``out``: summary.csv, figure4.png,
    learning_curves.png (runs probed during training), report.md and report.html (one page,
    figures inline). Returns ``result``."""
    import pandas as pd

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "summary.csv", with_verdicts(result["rows"]), SUMMARY_COLUMNS)
    figures = [figure4(result["rows"], out / "figure4.png").name]
    # runs of the paper preset are compared with the authors' published curve (probes/published.py)
    paper = result.get("presets") == ["paper"] and any(r["method"] == METHOD for r in result["epochs"])
    reference = published_curve() if paper else ()
    if paper:
        lead = [fidelity_line(fidelity(result["epochs"])), "", *lead]
    curves = learning_curves([pd.DataFrame(result["epochs"])] if result["epochs"] else [],
                             out / "learning_curves.png", reference=reference)
    figures += [curves.name] if curves else []
    text = "\n".join(markdown_lines(result, title, lead, tail, figures)) + "\n"
    write_file(out / "report.md", text)
    write_file(out / "report.html", html_page(text, out, title))
    return result


def write_report(runs: Sequence[Path], out: Path | str, title: str = "comm-diag report") -> dict:
    """``render(summarize(runs), out, title)``: the report of some probed runs."""
    return render(summarize(runs), out, title)


SYNERGY_LEVELS = ("Synergy is read at two levels. **Fused into the representation** (the paper's sense): a linear "
                  "probe on the fused representation separates the synergy label, so the representation itself "
                  "computed it. **Recoverable from it**: an MLP probe on the same representation separates it, so "
                  "the information is there but may be computed by the probe (under synergy-biased training "
                  "texture(x1) predicts colour(x2), so a method that keeps both attributes lets an MLP compute "
                  "their agreement without having fused anything). Each level gets the same verdict rule against "
                  "its own random-initialisation control.")


def information_panel(rows: list[dict], probe: str = "linear", representation: str = "fused",
                      n_seeds: int = 1) -> list[str]:
    """Markdown lines: per method and task, the probe's lower bound on I(Z; T) in bits and the
    fraction of the task's exact interaction bits (the dataset's PID) it reaches."""
    keep = [r for r in rows if r["probe"] == probe and r["representation"] == representation
            and r.get("bits") is not None and not r["method"].endswith("@init")]
    if not keep:
        return []
    tasks = [t for t in TASKS if any(r["task"] == t for r in keep)]
    exact = {}  # task -> its exact bits, as the probe rows record them (bits / fraction)
    for r in keep:
        if r.get("bits_fraction"):
            exact.setdefault(r["task"], r["bits"] / r["bits_fraction"])
    known = ", ".join(f"{t} {exact[t]:.3g}" for t in tasks if t in exact)
    lines = ["", f"Information in bits ({probe} probe, {representation} representation, "
             f"{'mean ' + over_seeds(n_seeds) if n_seeds > 1 else 'one seed'}): the lower bound I(Z; T) >= "
             "H(T) - CE(T | Z) from the probe's probabilities calibrated to the label frequencies, and in "
             "brackets the fraction of the task's exact interaction bits in the test law (the dataset's PID"
             + (f": {known} bits" if known else "") + ").", "",
             "| method | " + " | ".join(tasks) + " |", "|---|" + "---|" * len(tasks)]
    for m in sorted({r["method"] for r in keep}):
        cells = []
        for t in tasks:
            sel = select(keep, method=m, task=t)
            frac = [r["bits_fraction"] for r in sel if r.get("bits_fraction") is not None]
            cells.append(f"{np.mean([r['bits'] for r in sel]):.2f} [{100 * np.mean(frac):.0f}%]" if sel and frac
                         else (f"{np.mean([r['bits'] for r in sel]):.2f}" if sel else "–"))
        lines.append(f"| {md_cell(display_name(m))} | " + " | ".join(cells) + " |")
    return lines


REPORT_RECORD = "report.json"  # marks a folder as a report (``comm_diag.outputs``)


def report(paths: Sequence[Path | str], out: Path | str, *, mix_datasets: bool = False) -> dict:
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
            "run_ids": [_run_meta(r).get("run_id") for r in runs]}, indent=2))
        return render(result, out)
