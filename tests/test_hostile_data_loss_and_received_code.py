"""Hostile inputs that attack data (found in the second hardening round): data loss (what counts as empty, replacing only what a manifest
lists, links, leftovers, report folders), code execution from received files (pickles,
method names in configs), results that are not what they say, tracebacks turned into one
line. Rows: (id, argv, expected exit code, message fragment, disk check), on the world of
tests/hostile_world.py and a few plugin runs of this module's own."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import comm_diag.trifeature_gen as tg
from comm_diag.cli import app
from comm_diag.comm.config import preset
from comm_diag.comm.train import train
from comm_diag.probes.measure.suite import probe_run

from hostile_world import EVIL_MODULE, PLUGIN, TINY, EvilPickle, absent, fill, intact
from test_hostile_bad_arguments import CASES

runner = CliRunner()

@pytest.fixture(scope="module")
def world2(world, tiny_dataset):
    """More artefacts for round 2: plugin runs, a probed copy, a report."""
    w = world["world"] / "round2"
    w.mkdir()
    (w / "plugin.py").write_text(PLUGIN)
    cfg = preset("smoke").replace(epochs=1, batch_size=32)
    for cls in ("Good", "Features3D", "FeaturesNaN"):
        train(cfg.replace(method=f"{w / 'plugin.py'}:{cls}"), tiny_dataset, w / f"run-{cls}")
    probe_run(w / "run-Good", data=tiny_dataset, method=f"{w / 'plugin.py'}:Good")
    return {**world, "plugin": w / "plugin.py", "w2": w}


def _copy_run(w: dict, t: Path, name: str = "run", to: str = "run") -> Path:
    shutil.copytree(w[name] if name in w else w["w2"] / name, t / to, symlinks=True)
    return t / to


def _edit_config(run: Path, edit) -> Path:
    meta = json.loads((run / "config.json").read_text())
    edit(meta)
    (run / "config.json").write_text(json.dumps(meta))
    return run


def _sentinel(t: Path) -> Path:
    return t / "SENTINEL"


def _evil_checkpoint(run: Path, name: str, t: Path) -> Path:
    import torch

    torch.save({"model": {}, "epoch": 1, "payload": EvilPickle(_sentinel(t))}, run / "checkpoints" / name)
    return run


def _evil_config(w, t):
    (t / "evil.py").write_text(EVIL_MODULE)
    return _edit_config(_copy_run(w, t), lambda m: m["train"].update(method=f"{t / 'evil.py'}:Evil"))


def _dataset_copy(w, t, to="ds"):
    shutil.copytree(w["data"], t / to)
    return t / to


def _with_files(folder: Path, *rels: str) -> Path:
    for rel in rels:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text("mine")
    return folder


def _changed_pixels(w, t):
    ds = _dataset_copy(w, t)
    path = ds / "images" / "test.npy"
    arr = np.load(path)
    arr[0] = 255 - arr[0]
    np.save(path, arr)
    manifest = json.loads((ds / "manifest.json").read_text())
    manifest["sha256"]["images/test.npy"] = tg.io.file_sha256(path)  # the hash rewritten to match
    (ds / "manifest.json").write_text(json.dumps(manifest))
    return ds


def _reweighted(w, t):
    import torch

    run = _copy_run(w, t)
    path = run / "checkpoints" / "epoch_001.pt"
    state = torch.load(path, weights_only=True)
    key = next(iter(state["model"]))
    state["model"][key] = state["model"][key] + 1.0  # same run, same epoch, other weights than were probed
    torch.save(state, path)
    return run


def _foreign_probes(w, t):
    run = _copy_run(w, t)
    for f in ("probes.csv", "probes.json"):
        shutil.copy(w["run_other_data"] / f, run / f)
    return run


def _link(target: Path, t: Path, name: str = "link") -> Path:
    (t / name).symlink_to(target, target_is_directory=True)
    return t / name


def _torn_log(w, t):
    run = _copy_run(w, t, "unfinished")
    with open(run / "log.csv", "a") as f:
        f.write("1,2")  # what a kill during a row's write leaves
    return run


def _before_first_epoch_of(run: Path) -> Path:
    for name in ("epoch_001.pt", "last.pt"):
        (run / "checkpoints" / name).unlink()
    (run / "probes.csv").unlink()
    return run


def _before_first_epoch(w, t):
    return _before_first_epoch_of(_copy_run(w, t))


def _old_beside(w, t, *, out: bool, user_file: bool = False):
    old = _dataset_copy(w, t, ".ds.old")
    if user_file:
        _with_files(old, "notes.txt")
    if out:
        _dataset_copy(w, t, "ds")
    return t / "ds"


MAKERS = {
    "dotfiles": lambda w, t: _with_files(t / "home", ".bashrc", ".ssh/id_rsa", ".config/x"),
    "git-only": lambda w, t: _with_files(t / "repo", ".git/HEAD"),
    "git-only-dot": lambda w, t: Path(str(_with_files(t / "repo", ".git/HEAD")) + "/."),
    "venv-only": lambda w, t: _with_files(t / "env", ".venv/bin/python"),
    "ds-notes": lambda w, t: _with_files(_dataset_copy(w, t), "notes.txt"),
    "ds-venv": lambda w, t: _with_files(_dataset_copy(w, t), ".venv/bin/python"),
    "ds-png-notes": lambda w, t: _with_files(_dataset_copy(w, t), "images/notes.txt"),
    "ds-bad-manifest": lambda w, t: (_dataset_copy(w, t) / "manifest.json").write_text("{not json") and t / "ds",
    "ds-clean": lambda w, t: _dataset_copy(w, t),
    "link-to-ds": lambda w, t: _link(_dataset_copy(w, t), t),
    "link-to-run": lambda w, t: _link(w["run"], t),
    "link-to-user": lambda w, t: _link(w["user"], t),
    "partial-marked": lambda w, t: _with_files(t / ".ds.partial-x1", ".comm-diag-partial") and t / "ds",
    "partial-unmarked": lambda w, t: _with_files(t / ".ds.partial-x2", "mine.txt") and t / "ds",
    "old-only": lambda w, t: _old_beside(w, t, out=False),
    "old-beside": lambda w, t: _old_beside(w, t, out=True),
    "old-user": lambda w, t: _old_beside(w, t, out=True, user_file=True),
    "user-report": lambda w, t: _with_files(t / "rep", "report.md", "summary.csv"),
    "evil-last": lambda w, t: _evil_checkpoint(_copy_run(w, t), "last.pt", t),
    "evil-epoch": lambda w, t: _evil_checkpoint(_copy_run(w, t), "epoch_001.pt", t),
    "evil-config": _evil_config,
    "evil-config-init": lambda w, t: _before_first_epoch_of(_evil_config(w, t)),  # resumed from config.json
    "evil-sweep": lambda w, t: (t / "q").mkdir() or (t / "q" / "sweep.json").write_text(json.dumps(
        {"experiment": "quickstart", "name": "smoke", "data": {},
         "train_config": {"method": f"{(t / 'evil.py').write_text(EVIL_MODULE) and t / 'evil.py'}:Evil"}})) and t / "q",
    "extra-checkpoint": lambda w, t: shutil.copy(w["run"] / "checkpoints" / "epoch_001.pt",
                                                 _copy_run(w, t) / "checkpoints" / "epoch_099.pt") and t / "run",
    "foreign-checkpoint": lambda w, t: shutil.copy(w["run_other_data"] / "checkpoints" / "epoch_001.pt",
                                                   _copy_run(w, t) / "checkpoints" / "epoch_001.pt") and t / "run",
    "junk-checkpoint-names": lambda w, t: _with_files(_copy_run(w, t), "checkpoints/epoch_abc.pt",
                                                      "checkpoints/.DS_Store", "checkpoints/epoch_1.pt"),
    "changed-pixels": _changed_pixels,
    "run-copy": lambda w, t: _copy_run(w, t, to="copy"),
    "reweighted": _reweighted,
    "foreign-probes": _foreign_probes,
    "config-list": lambda w, t: (_copy_run(w, t) / "config.json").write_text("[]") and t / "run",
    "config-not-json": lambda w, t: (_copy_run(w, t) / "config.json").write_text('{"train": ') and t / "run",
    "config-no-train": lambda w, t: _edit_config(_copy_run(w, t), lambda m: m.pop("train")),
    "config-epochs-text": lambda w, t: _edit_config(_copy_run(w, t), lambda m: m["train"].update(epochs="one")),
    "config-d-mismatch": lambda w, t: _edit_config(_copy_run(w, t), lambda m: m["train"].update(d=48)),
    "torn-log": _torn_log,
    "before-first-epoch": _before_first_epoch,
    "plugin-run": lambda w, t: _copy_run(w, t, "run-Good"),
}


def report_folder(w, t):
    from comm_diag.probes.report.render import report

    report([w["run"]], t / "rep")
    return t / "rep"


MAKERS["report-folder"] = report_folder
MAKERS["link-to-run-as-parent"] = lambda w, t: _link(w["run"], t)


def unchanged(*rels):
    """The files the case made (or the world's) still hold what they held."""
    return lambda w, t: all((t / r).read_text() == "mine" for r in rels) and intact(w, t)


def no_sentinel(w, t):
    return not _sentinel(t).exists() and intact(w, t)


def seed_of(path):
    return lambda w, t: json.loads((t / path / "manifest.json").read_text())["spec"]["seed"] == 3


def run_has(key, value):
    return lambda w, t: json.loads((t / "r" / "config.json").read_text())["train"][key] == value


P = "{plugin}"
TRAIN2 = ["train", "--data", "{data}", "--preset", "smoke", "--batch-size", "32"]
CASES_2 = [
    # --- 1. data loss: a folder is empty only if it has no entry at all
    ("gen-over-dotfiles", ["generate", *TINY, "--out", "{make:dotfiles}"], 1, "did not write",
     unchanged("home/.bashrc", "home/.ssh/id_rsa", "home/.config/x")),
    ("gen-force-over-dotfiles", ["generate", *TINY, "--force", "--out", "{make:dotfiles}"], 1, "did not write",
     unchanged("home/.bashrc", "home/.ssh/id_rsa")),
    ("gen-over-git-only", ["generate", *TINY, "--out", "{make:git-only}"], 1, "did not write",
     unchanged("repo/.git/HEAD")),
    ("gen-over-dot-of-git-folder", ["generate", *TINY, "--out", "{make:git-only-dot}"], 1, "did not write",
     unchanged("repo/.git/HEAD")),
    ("train-over-venv-only", [*TRAIN2, "--out", "{make:venv-only}"], 1, "did not write", unchanged("env/.venv/bin/python")),
    ("quickstart-over-git-only", ["quickstart", "--preset", "smoke", "--out", "{make:git-only}"], 1, "did not write",
     unchanged("repo/.git/HEAD")),
    # --- replacing removes only a dataset whose every file its manifest lists
    ("gen-force-dataset-with-notes", ["generate", *TINY, "--force", "--out", "{make:ds-notes}"], 1,
     "manifest does not list (notes.txt)", unchanged("ds/notes.txt")),
    ("gen-force-dataset-with-venv", ["generate", *TINY, "--force", "--out", "{make:ds-venv}"], 1,
     "manifest does not list (.venv)", unchanged("ds/.venv/bin/python")),
    ("gen-force-dataset-with-nested-file", ["generate", *TINY, "--force", "--out", "{make:ds-png-notes}"], 1,
     "images/notes.txt", unchanged("ds/images/notes.txt")),
    ("gen-force-unreadable-manifest", ["generate", *TINY, "--force", "--out", "{make:ds-bad-manifest}"], 1,
     "manifest.json cannot be read", lambda w, t: (t / "ds" / "images" / "train.npy").is_file()),
    ("gen-force-clean-dataset", ["generate", *TINY, "--seed", "3", "--force", "--out", "{make:ds-clean}"], 0, "wrote",
     lambda w, t: seed_of("ds")(w, t) and not (t / ".ds.old").exists()),
    # --- paths are resolved before the rules apply
    ("gen-force-through-link", ["generate", *TINY, "--seed", "3", "--force", "--out", "{make:link-to-ds}"], 0, "wrote",
     lambda w, t: (t / "link").is_symlink() and seed_of("ds")(w, t)),
    ("gen-into-link-to-run", ["generate", *TINY, "--out", "{make:link-to-run}/data"], 1, "inside the run", intact),
    ("gen-force-link-to-user-folder", ["generate", *TINY, "--force", "--out", "{make:link-to-user}"], 1,
     "did not write", lambda w, t: (t / "link").is_symlink() and intact(w, t)),
    ("report-into-link-to-run", ["report", "{run}", "--out", "{make:link-to-run-as-parent}/rep"], 1, "inside the run",
     lambda w, t: not (w["run"] / "rep").exists()),
    # --- leftovers of a killed writer are cleared, and only comm-diag's
    ("gen-clears-marked-partial", ["generate", *TINY, "--out", "{make:partial-marked}"], 0, "wrote",
     lambda w, t: not (t / ".ds.partial-x1").exists() and (t / "ds" / "manifest.json").is_file()),
    ("gen-keeps-unmarked-partial", ["generate", *TINY, "--out", "{make:partial-unmarked}"], 0, "wrote",
     unchanged(".ds.partial-x2/mine.txt")),
    ("gen-restores-replaced-dataset", ["generate", *TINY, "--out", "{make:old-only}"], 1, "already holds a dataset",
     lambda w, t: (t / "ds" / "manifest.json").is_file() and not (t / ".ds.old").exists()),
    ("gen-force-clears-old", ["generate", *TINY, "--force", "--out", "{make:old-beside}"], 0, "wrote",
     lambda w, t: not (t / ".ds.old").exists()),
    ("gen-force-old-with-user-file", ["generate", *TINY, "--force", "--out", "{make:old-user}"], 1,
     "not comm-diag's to delete", unchanged(".ds.old/notes.txt")),
    # --- report claims its folder like every writer
    ("report-over-user-report", ["report", "{run}", "--out", "{make:user-report}"], 1, "did not write",
     unchanged("rep/report.md", "rep/summary.csv")),
    ("report-into-dataset", ["report", "{run}", "--out", "{data}"], 1, "holds a comm-diag dataset, not a report", intact),
    ("report-into-run", ["report", "{run}", "--out", "{run}"], 1, "holds a comm-diag run, not a report", intact),
    ("report-into-report-again", ["report", "{run}", "--out", "{make:report-folder}"], 0, "wrote",
     lambda w, t: (t / "rep" / "report.json").is_file() and (t / "rep" / "report.md").is_file()),
    # --- 2. received files never run code
    ("probe-pickle-in-checkpoint", ["probe", "{make:evil-epoch}"], 1, "holds objects other than tensors", no_sentinel),
    ("resume-pickle-in-last", [*TRAIN2, "--epochs", "1", "--resume", "--out", "{make:evil-last}"], 1,
     "holds objects other than tensors", no_sentinel),
    ("probe-config-names-code", ["probe", "{make:evil-config}"], 1, "never imports code named by a file", no_sentinel),
    ("resume-config-names-code", [*TRAIN2, "--epochs", "1", "--resume", "--out", "{make:evil-config-init}"], 1,
     "other settings", no_sentinel),
    ("quickstart-sweep-names-code", ["quickstart", "--preset", "smoke", "--out", "{make:evil-sweep}"], 1,
     "holds another experiment", no_sentinel),
    ("probe-plugin-run-without-method", ["probe", "{make:plugin-run}"], 1, "give it yourself with --method", intact),
    ("probe-plugin-run-other-method", ["probe", "{make:plugin-run}", "--method", f"{P}:Features3D"], 1,
     "give it yourself with --method", intact),
    ("probe-plugin-run-with-method", ["probe", "{make:plugin-run}", "--method", f"{P}:Good"], 0, "wrote",
     # labelled by its class's name, never by the path of its file
     lambda w, t: {r["method"] for r in csv.DictReader(open(t / "run" / "probes.csv"))} == {"Good", "Good@init"}),
    # --- 3. results that are what they say: identities where parts meet
    ("probe-extra-checkpoint", ["probe", "{make:extra-checkpoint}"], 1, "past the run's 1 epochs", intact),
    ("probe-foreign-checkpoint", ["probe", "{make:foreign-checkpoint}"], 1, "not written by this run", intact),
    ("probe-junk-checkpoint-names", ["probe", "{make:junk-checkpoint-names}"], 0, "wrote",
     unchanged("run/checkpoints/epoch_abc.pt")),
    ("probe-changed-pixels", ["probe", "{run}", "--data", "{make:changed-pixels}"], 1, "different dataset", intact),
    ("report-copied-run", ["report", "{run}", "{make:run-copy}", "--out", "{t}/rep"], 1, "are the same run",
     absent("rep")),
    ("report-weights-changed", ["report", "{make:reweighted}", "--out", "{t}/rep"], 1,
     "not the ones in checkpoints", absent("rep")),
    ("report-probes-of-other-run", ["report", "{make:foreign-probes}", "--out", "{t}/rep"], 1,
     "probes were not made on this run", absent("rep")),
    ("train-seed-twice", [*TRAIN2, "--seed", "1", "--set", "seed=5", "--out", "{t}/r"], 1, "both set seed", absent("r")),
    ("train-method-twice", [*TRAIN2, "--method", "comm", "--set", "method=cross", "--out", "{t}/r"], 1,
     "both set method", absent("r")),
    ("train-set-seed", [*TRAIN2, "--set", "seed=5", "--out", "{t}/r"], 0, "trained", run_has("seed", 5)),
    ("train-set-method", [*TRAIN2, "--set", "method=cross", "--out", "{t}/r"], 0, "trained", run_has("method", "cross")),
    ("train-plugin-exits", [*TRAIN2, "--method", f"{P}:ExitsInStep", "--out", "{t}/r"], 1, "raised SystemExit",
     absent("r")),
    ("train-plugin-exits-later", [*TRAIN2, "--method", f"{P}:ExitsLater", "--out", "{t}/r"], 1,
     "step() raised SystemExit", lambda w, t: not (t / "r" / "checkpoints" / "epoch_001.pt").exists()),
    ("train-plugin-returns-tensor", [*TRAIN2, "--method", f"{P}:ReturnsTensor", "--out", "{t}/r"], 1,
     "must return a dict", absent("r")),
    ("train-plugin-raises", [*TRAIN2, "--method", f"{P}:Raises", "--out", "{t}/r"], 1, "boom in step", absent("r")),
    ("check-plugin-exits", ["check", f"{P}:ExitsInStep", "--preset", "smoke", "--no-controls", "--out", "{t}/c"], 1,
     "raised SystemExit", absent("c")),
    ("probe-plugin-3d-features", ["probe", "{w2}/run-Features3D", "--method", f"{P}:Features3D"], 1,
     "Features3D: representation 'fused' must be a", intact),
    ("probe-plugin-nan-features", ["probe", "{w2}/run-FeaturesNaN", "--method", f"{P}:FeaturesNaN"], 1,
     "FeaturesNaN: representation 'fused' holds non-finite", intact),
    # --- 4. one line, never a traceback
    ("probe-config-list", ["probe", "{make:config-list}"], 1, "not a comm-diag run config", intact),
    ("probe-config-not-json", ["probe", "{make:config-not-json}"], 1, "config.json is not valid JSON", intact),
    ("probe-config-no-train", ["probe", "{make:config-no-train}"], 1, "not a comm-diag run config", intact),
    ("probe-config-epochs-text", ["probe", "{make:config-epochs-text}"], 1, "epochs must be an int, got 'one'", intact),
    ("probe-config-d-mismatch", ["probe", "{make:config-d-mismatch}"], 1, "does not fit the run's config.json", intact),
    ("report-config-not-json", ["report", "{make:config-not-json}", "--out", "{t}/rep"], 1, "is not valid JSON",
     absent("rep")),
    ("resume-after-torn-log-row", [*TRAIN2, "--epochs", "2", "--resume", "--out", "{make:torn-log}"], 0, "trained",
     lambda w, t: (t / "run" / "checkpoints" / "epoch_002.pt").is_file() and
     all(len(r) == len(next(csv.reader(open(t / "run" / "log.csv")))) for r in csv.reader(open(t / "run" / "log.csv")))),
    ("resume-before-first-epoch", [*TRAIN2, "--epochs", "1", "--resume", "--out", "{make:before-first-epoch}"], 0,
     "trained", lambda w, t: (t / "run" / "checkpoints" / "epoch_001.pt").is_file()),
    ("gen-huge-seed", ["generate", *TINY, "--seed", str(2**40), "--out", "{t}/ds"], 1, "seed must be >= 0 and at most",
     absent("ds")),
    ("train-huge-seed", [*TRAIN2, "--seed", str(2**40), "--out", "{t}/r"], 1, "seed must be >= 0 and at most",
     absent("r")),
    ("quickstart-no-methods", ["quickstart", "--preset", "smoke", "--methods", "", "--out", "{t}/q"], 1,
     "name at least one method", absent("q")),
]


@pytest.mark.parametrize("case", CASES_2, ids=[c[0] for c in CASES_2])
def test_hostile_data_loss__exit_message_and_disk(case, world2, tmp_path):
    _, argv, code, message, disk = case
    r = runner.invoke(app, [fill(a, world2, tmp_path, MAKERS) for a in argv])
    out = r.output.replace("\n", " ")
    assert r.exit_code == code, r.output
    assert message in out and ("error:" in r.output) == (code == 1), r.output
    assert "Traceback" not in r.output and (r.exception is None or isinstance(r.exception, SystemExit)), \
        repr(r.exception)
    assert disk(world2, tmp_path), f"disk not as promised after {argv}"


def test_hostile_data_loss__every_row_is_a_new_input():
    # an id used twice, or one of round 1's, would let a row shadow another unnoticed
    ids = [c[0] for c in CASES_2]
    assert len(ids) == len(set(ids)) and not set(ids) & {c[0] for c in CASES}
