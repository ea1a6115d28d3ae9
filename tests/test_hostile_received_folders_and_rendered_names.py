"""Hostile inputs that attack through what is received (found in the third hardening round): received folders that would make comm-diag write or read outside
them, a user's file named like a lock, rendered names that are markup or formulas, impossible
scores and duplicated names, inputs nested or typed to raise tracebacks. Rows: (id, argv,
expected exit code, message fragment, disk check), on the world of tests/hostile_world.py;
each ``{make:NAME}`` builds its hostile folder in the test's own temporary folder."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from comm_diag.cli import app
from comm_diag.comm.run_folder import PROBES_CSV, PROBES_JSON
from comm_diag.trifeature_gen.io import file_sha256

from hostile_world import TINY, absent, assert_handled, fill, intact
from test_hostile_bad_arguments import CASES
from test_hostile_data_loss_and_received_code import CASES_2

runner = CliRunner()
SENTINEL_TEXT = "the user's own file\n"
DEEP = "[" * 50000 + "]" * 50000


def _run_copy(w: dict, t: Path) -> Path:
    shutil.copytree(w["run"], t / "run", symlinks=True)
    return t / "run"


def _sentinel(t: Path) -> Path:
    (t / "SENTINEL").write_text(SENTINEL_TEXT)
    return t / "SENTINEL"


def sentinel_free_probe_ok(w, t) -> bool:
    """The stray file was never read as epoch 1's weights: the run was probed at its real epoch."""
    return json.loads((t / "run" / PROBES_JSON).read_text())["epoch"] == 1 and intact(w, t)


def sentinel_kept(w, t) -> bool:
    return (t / "SENTINEL").read_text() == SENTINEL_TEXT and intact(w, t)


def _rewrite_probes(run: Path, edit) -> Path:
    """probes.csv edited and its digest in probes.json rewritten to match: what a careful
    forger would send (the checks must be on the content, not only on the digest)."""
    with open(run / PROBES_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    rows = edit(rows)
    with open(run / PROBES_CSV, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    record = json.loads((run / PROBES_JSON).read_text())
    record["sha256"][PROBES_CSV] = file_sha256(run / PROBES_CSV)
    (run / PROBES_JSON).write_text(json.dumps(record))
    return run


def _method(name: str):
    return lambda rows: [{**r, "method": name + ("@init" if r["method"].endswith("@init") else "")} for r in rows]


def _score(value: str):
    return lambda rows: [{**r, "balanced_accuracy": value} if i == 0 else r for i, r in enumerate(rows)]


def _link_tmp(w, t):
    run = _run_copy(w, t)
    for p in run.glob("probes.*"):
        p.unlink()
    os.symlink(_sentinel(t), run / "probes.csv.tmp")
    return run


def _link_json(w, t):
    run = _run_copy(w, t)
    (run / PROBES_JSON).unlink()
    os.symlink(_sentinel(t), run / PROBES_JSON)
    return run


def _link_log(w, t):
    run = _run_copy(w, t)
    (run / "log.csv").unlink()
    os.symlink(_sentinel(t), run / "log.csv")
    return run


def _link_checkpoints(w, t):
    run = _run_copy(w, t)
    shutil.move(run / "checkpoints", t / "elsewhere")
    os.symlink(t / "elsewhere", run / "checkpoints")
    _sentinel(t)
    return run


def _user_lock(w, t):
    (t / ".mydata.lock").write_text("notes\n")
    return t / "mydata"


def _deep(name: str):
    def make(w, t):
        if name == "manifest":
            shutil.copytree(w["data"], t / "ds")
            (t / "ds" / "manifest.json").write_text(DEEP)
            return t / "ds"
        run = _run_copy(w, t)
        (run / name).write_text(DEEP)
        return run
    return make


def _by_epoch_without_score(w, t):
    run = _run_copy(w, t)
    with open(run / PROBES_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    with open(run / "probes_by_epoch.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["epoch", *(k for k in rows[0] if k != "balanced_accuracy")],
                                extrasaction="ignore")
        writer.writeheader()
        writer.writerows({**r, "epoch": 1} for r in rows)
    record = json.loads((run / PROBES_JSON).read_text())
    record["sha256"]["probes_by_epoch.csv"] = file_sha256(run / "probes_by_epoch.csv")  # a careful forger
    (run / PROBES_JSON).write_text(json.dumps(record))
    return run


def _edited_unhashed(w, t):
    run = _run_copy(w, t)
    lines = (run / PROBES_CSV).read_text().splitlines()
    cells = lines[1].split(",")
    cells[5] = "99.0000"  # balanced_accuracy, raised by hand; probes.json left as it was
    (run / PROBES_CSV).write_text("\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n")
    return run


def _dataset_edit(edit):
    """A copy of the dataset with its manifest (or a file of it) edited and every hash rewritten
    to match: the reader must catch the shape, not only the digest."""
    def make(w, t):
        ds = t / "ds"
        shutil.copytree(w["data"], ds)
        manifest = json.loads((ds / "manifest.json").read_text())
        edit(ds, manifest)
        for rel in manifest["sha256"]:
            manifest["sha256"][rel] = file_sha256(ds / rel)
        (ds / "manifest.json").write_text(json.dumps(manifest))
        return ds
    return make


def _bom(run: Path) -> Path:
    """probes.csv saved with a byte-order mark (as a spreadsheet saves it), its digest rewritten."""
    (run / PROBES_CSV).write_bytes(b"\xef\xbb\xbf" + (run / PROBES_CSV).read_bytes())
    record = json.loads((run / PROBES_JSON).read_text())
    record["sha256"][PROBES_CSV] = file_sha256(run / PROBES_CSV)
    (run / PROBES_JSON).write_text(json.dumps(record))
    return run


def _binary_probes(w, t):
    run = _bom(_run_copy(w, t))
    (run / PROBES_CSV).write_bytes(bytes(range(256)) * 4)
    record = json.loads((run / PROBES_JSON).read_text())
    record["sha256"][PROBES_CSV] = file_sha256(run / PROBES_CSV)
    (run / PROBES_JSON).write_text(json.dumps(record))
    return run


def _stray_checkpoint(w, t):
    run = _run_copy(w, t)
    (run / "checkpoints" / "epoch_0001.pt").write_bytes(b"not a checkpoint")
    return run


def _loop(w, t):
    os.symlink(t / "a", t / "b")
    os.symlink(t / "b", t / "a")
    return t / "a"


MAKERS = {
    "link-tmp": _link_tmp,
    "link-json": _link_json,
    "link-log": _link_log,
    "link-checkpoints": _link_checkpoints,
    "user-lock": _user_lock,
    "script-name": lambda w, t: _rewrite_probes(_run_copy(w, t), _method("<script>alert(1)</script>")),
    "formula-name": lambda w, t: _rewrite_probes(_run_copy(w, t), _method('=cmd|" /C calc"!A0')),
    "nan-score": lambda w, t: _rewrite_probes(_run_copy(w, t), _score("nan")),
    "inf-score": lambda w, t: _rewrite_probes(_run_copy(w, t), _score("inf")),
    "huge-score": lambda w, t: _rewrite_probes(_run_copy(w, t), _score("1e9")),
    "row-twice": lambda w, t: _rewrite_probes(_run_copy(w, t), lambda rows: rows + rows[:1]),
    "edited-unhashed": _edited_unhashed,
    "deep-manifest": _deep("manifest"),
    "deep-config": _deep("config.json"),
    "deep-probes-json": _deep(PROBES_JSON),
    "by-epoch-no-score": _by_epoch_without_score,
    "pid-wrong-shape": _dataset_edit(lambda ds, m: m.update(pid={"test": "x"})),
    "counts-wrong-shape": _dataset_edit(lambda ds, m: m.update(counts={"x": 1})),
    "mapping-three": _dataset_edit(lambda ds, m: m.update(mapping=m["mapping"][:3])),
    "test-pairs-header-only": _dataset_edit(lambda ds, m: (ds / "pairs" / "test.csv").write_text(
        (ds / "pairs" / "test.csv").read_text().splitlines()[0] + "\n")),
    "loop": _loop,
    "sweep-nan-epochs": lambda w, t: (t / "q").mkdir() or (t / "q" / "sweep.json").write_text(
        '{"experiment": "quickstart", "name": "smoke", "train_config": {"epochs": NaN}, "data": {}}') and t / "q",
    "bom-probes": lambda w, t: _rewrite_probes(_run_copy(w, t), lambda rows: rows) and _bom(t / "run"),
    "binary-probes": _binary_probes,
    "bom-pairs": _dataset_edit(lambda ds, m: (ds / "pairs" / "test.csv").write_bytes(
        b"\xef\xbb\xbf" + (ds / "pairs" / "test.csv").read_bytes())),
    "bad-label": _dataset_edit(lambda ds, m: (ds / "images" / "test.csv").write_text(
        (ds / "images" / "test.csv").read_text().replace("red", "scarlet", 1))),
    "stray-checkpoint": _stray_checkpoint,
    "plugin-folder": lambda w, t: (t / "pkg").mkdir() or t / "pkg",
}


def _report_html_escaped(w, t) -> bool:
    page = (t / "rep" / "report.html").read_text()
    return "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page


def _summary_neutralised(w, t) -> bool:
    cells = [r["method"] for r in csv.DictReader(open(t / "rep" / "summary.csv"))]
    return cells and all(not c.startswith("=") for c in cells) and any(c.startswith("'=cmd") for c in cells)


CASES_3 = [
    # --- security: nothing is written or read through a link in a received folder
    ("probe-tmp-name-is-link", ["probe", "{make:link-tmp}"], 1, "is a symbolic link", sentinel_kept),
    ("probe-json-is-link", ["probe", "{make:link-json}"], 1, "is a symbolic link", sentinel_kept),
    ("probe-checkpoints-is-link", ["probe", "{make:link-checkpoints}"], 1, "is a symbolic link", sentinel_kept),
    ("report-run-with-link", ["report", "{make:link-json}", "--out", "{t}/rep"], 1, "is a symbolic link",
     lambda w, t: sentinel_kept(w, t) and absent("rep")(w, t)),
    ("report-html-escaped", ["report", "{make:script-name}", "--out", "{t}/rep"], 0, "report", _report_html_escaped),
    ("report-csv-formula", ["report", "{make:formula-name}", "--out", "{t}/rep"], 0, "report", _summary_neutralised),
    # --- data loss
    ("resume-through-linked-log", ["train", "--data", "{data}", "--preset", "smoke", "--epochs", "1",
                                   "--batch-size", "32", "--resume", "--out", "{make:link-log}"], 1,
     "is a symbolic link", sentinel_kept),
    ("generate-keeps-users-lock-named-file", ["generate", *TINY, "--out", "{make:user-lock}"], 0, "",
     lambda w, t: (t / ".mydata.lock").read_text() == "notes\n" and (t / "mydata" / "manifest.json").is_file()),
    # --- results that cannot lie
    ("report-nan-score", ["report", "{make:nan-score}", "--out", "{t}/rep"], 1, "a score is in [0, 100]",
     absent("rep")),
    ("report-inf-score", ["report", "{make:inf-score}", "--out", "{t}/rep"], 1, "a score is in [0, 100]",
     absent("rep")),
    ("report-huge-score", ["report", "{make:huge-score}", "--out", "{t}/rep"], 1, "a score is in [0, 100]",
     absent("rep")),
    ("report-row-twice", ["report", "{make:row-twice}", "--out", "{t}/rep"], 1, "more than once", absent("rep")),
    ("report-edited-probes", ["report", "{make:edited-unhashed}", "--out", "{t}/rep"], 1,
     "is not the file its probes.json records", absent("rep")),
    ("probe-twice-the-same-probe", ["probe", "{run}", "--probe", "linear,linear"], 1, "given twice", intact),
    ("quickstart-method-twice", ["quickstart", "--preset", "smoke", "--methods", "cross,cross", "--out", "{t}/q"], 1,
     "'cross' is given twice", absent("q")),
    ("ablate-dose-no-methods", ["ablate", "dose", "--preset", "smoke", "--methods", "", "--out", "{t}/a"], 1,
     "name at least one method", absent("a")),
    ("calibrate-reference-twice", ["calibrate", "--references", "factors_outer,factors_outer", "--out", "{t}/c"], 1,
     "given twice", absent("c")),
    ("generate-aliasing-period", ["generate", *TINY, "--period", "1e300", "--out", "{t}/ds"], 1,
     "texture period must be from 2 px", absent("ds")),
    # --- one line, never a traceback
    ("info-deep-manifest", ["info", "{make:deep-manifest}"], 1, "nested too deeply", intact),
    ("probe-deep-config", ["probe", "{make:deep-config}"], 1, "nested too deeply", intact),
    ("report-deep-probes-json", ["report", "{make:deep-probes-json}", "--out", "{t}/rep"], 1, "damaged",
     absent("rep")),
    ("info-pid-wrong-shape", ["info", "{make:pid-wrong-shape}"], 1, "its pid.test must map tasks", intact),
    ("info-counts-wrong-shape", ["info", "{make:counts-wrong-shape}"], 1, "its counts.images must map", intact),
    ("probe-mapping-of-three", ["probe", "{run}", "--data", "{make:mapping-three}"], 1,
     "mapping is not a one-to-one map", intact),
    ("probe-test-pairs-header-only", ["probe", "{run}", "--data", "{make:test-pairs-header-only}"], 1,
     "pairs/test.csv holds no pair", intact),
    ("generate-out-is-a-link-loop", ["generate", *TINY, "--out", "{make:loop}"], 1, "is a loop of symbolic links",
     intact),
    ("report-out-is-a-link-loop", ["report", "{run}", "--out", "{make:loop}"], 1, "is a loop of symbolic links",
     intact),
    ("generate-name-of-250-characters", ["generate", *TINY, "--out", "{t}/" + "n" * 250], 0, "",
     lambda w, t: (t / ("n" * 250) / "manifest.json").is_file()),
    ("report-reads-a-byte-order-mark", ["report", "{make:bom-probes}", "--out", "{t}/rep"], 0, "report",
     lambda w, t: (t / "rep" / "report.md").is_file()),
    ("report-binary-probes-csv", ["report", "{make:binary-probes}", "--out", "{t}/rep"], 1,
     "probes.csv is not a text table", absent("rep")),
    ("info-pairs-with-a-byte-order-mark", ["info", "{make:bom-pairs}"], 0, "mapping", intact),
    ("info-unknown-colour", ["info", "{make:bad-label}"], 1, "'scarlet' is not a color", intact),
    ("probe-stray-checkpoint-name", ["probe", "{make:stray-checkpoint}"], 0, "", sentinel_free_probe_ok),
    ("train-plugin-path-is-a-folder", ["train", "--data", "{data}", "--preset", "smoke", "--method",
                                       "{make:plugin-folder}:Cls", "--out", "{t}/r"], 1, "is a folder: name the file",
     absent("r")),
    ("quickstart-sweep-json-nan-epochs", ["quickstart", "--preset", "smoke", "--methods", "cross", "--out",
                                          "{make:sweep-nan-epochs}"], 1, "sweep.json is damaged: epochs must be",
     lambda w, t: sorted(p.name for p in (t / "q").iterdir()) == ["sweep.json"]),
    ("report-by-epoch-without-score", ["report", "{make:by-epoch-no-score}", "--out", "{t}/rep"], 1,
     "lacks the columns balanced_accuracy", absent("rep")),
]


@pytest.mark.parametrize("case", CASES_3, ids=[c[0] for c in CASES_3])
def test_hostile_received__exit_message_and_disk(case, world, tmp_path):
    _, argv, code, message, disk = case
    r = runner.invoke(app, [fill(a, world, tmp_path, MAKERS) for a in argv])
    assert_handled(r, code, message, disk, world, tmp_path, argv)


def test_hostile_received__every_row_is_a_new_input():
    ids = [c[0] for c in CASES_3]
    assert len(ids) == len(set(ids)) and not set(ids) & {c[0] for c in CASES + CASES_2}
