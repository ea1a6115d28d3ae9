"""Hostile and careless inputs, as a table: each command must end with one `error:` line and
exit code 1 (no traceback), say what is wrong, and leave the disk as stated.

Rows: (id, argv with {placeholders}, expected exit code, message fragment, disk check).
Placeholders are filled from a small world of real artefacts built once per module:
a dataset, a finished and probed run, an unfinished run, user folders and files.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import comm_diag.trifeature_gen as tg
from comm_diag.cli import app
from comm_diag.comm.config import preset
from comm_diag.comm.train import train
from comm_diag.outputs import exclusive, lock_path
from comm_diag.probes.suite import probe_run

runner = CliRunner()
TINY = ["--size", "32", "--train-pairs", "64", "--probe-pairs", "64", "--test-pairs", "32"]
EXAMPLE = str(Path(__file__).resolve().parents[1] / "examples" / "late_fusion_simclr.py") + ":LateFusionSimCLR"


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_dataset):
    """Artefacts the hostile commands point at (never modified by a case)."""
    w = tmp_path_factory.mktemp("world")
    cfg = preset("smoke").replace(epochs=1, batch_size=32)
    train(cfg, tiny_dataset, w / "run")
    probe_run(w / "run", data=tiny_dataset)
    train(cfg.replace(epochs=2), tiny_dataset, w / "unfinished")
    for name in ("epoch_002.pt", "last.pt"):  # as if killed during epoch 2
        (w / "unfinished" / "checkpoints" / name).unlink(missing_ok=True)
    other = w / "other-data"
    tg.generate(tg.DatasetSpec(**{**tiny_dataset.spec.to_dict(), "seed": 5}), other)
    train(cfg.replace(seed=1), other, w / "run-other-data")
    probe_run(w / "run-other-data", data=other)
    (w / "a-file").write_text("not a folder")
    (w / "user").mkdir()
    (w / "user" / "notes.txt").write_text("mine")
    return {"data": tiny_dataset.root, "run": w / "run", "unfinished": w / "unfinished",
            "run_other_data": w / "run-other-data", "file": w / "a-file", "user": w / "user", "world": w}


def damaged_copy(world: dict, tmp: Path, what: str) -> Path:
    """A copy of the dataset (or run) with one kind of damage, hashes kept valid where it matters."""
    if what.startswith("run:"):
        run = tmp / "run"
        shutil.copytree(world["run"], run)
        if what == "run:no-auroc":  # the file of an older or foreign writer, without the auroc column
            rows = list(csv.DictReader(open(run / "probes.csv")))
            with open(run / "probes.csv", "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=[k for k in rows[0] if k != "auroc"], extrasaction="ignore")
                w.writeheader()
                w.writerows(rows)
        elif what == "run:truncated-checkpoint":
            p = run / "checkpoints" / "last.pt"
            p.write_bytes(p.read_bytes()[:200])
        elif what == "run:empty-checkpoint":
            (run / "checkpoints" / "last.pt").write_bytes(b"")
        return run
    ds = tmp / "ds"
    shutil.copytree(world["data"], ds)
    manifest = json.loads((ds / "manifest.json").read_text())
    if what == "manifest-list":
        (ds / "manifest.json").write_text("[]")
    elif what == "manifest-not-json":
        (ds / "manifest.json").write_text("{not json")
    elif what == "manifest-no-sha256":
        del manifest["sha256"]
        (ds / "manifest.json").write_text(json.dumps(manifest))
    elif what in ("pair-out-of-range", "float-images"):
        if what == "pair-out-of-range":
            path = ds / "pairs" / "test.csv"
            lines = path.read_text().splitlines()
            cells = lines[1].split(",")
            cells[0] = "99999"
            path.write_text("\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n")
            rel = "pairs/test.csv"
        else:
            path = ds / "images" / "test.npy"
            np.save(path, np.load(path).astype(np.float32))
            rel = "images/test.npy"
        manifest["sha256"][rel] = tg.io.file_sha256(path)  # a valid hash: the check must be on the content
        (ds / "manifest.json").write_text(json.dumps(manifest))
    return ds


def absent(*keys):
    return lambda w, t: all(not (t / k).exists() for k in keys)


def intact(w, t):
    return (w["user"] / "notes.txt").read_text() == "mine" and (w["run"] / "probes.csv").is_file() \
        and (w["data"] / "manifest.json").is_file()


def no_tmp(w, t):
    return not list(t.rglob("*.tmp")) and not list(w["world"].rglob("*.tmp"))


TRAIN = ["train", "--data", "{data}", "--preset", "smoke"]
CASES = [
    # --- generate: impossible sizes refused up front, outputs never clobber what is not theirs
    ("gen-huge-size", ["generate", "--size", "100000", "--out", "{t}/ds"], "need about", absent("ds")),
    ("gen-huge-views", ["generate", "--views", "100000", "--out", "{t}/ds"], "need about", absent("ds")),
    ("gen-huge-test-pairs", ["generate", *TINY[:2], "--test-pairs", "100000000000000000000", "--out", "{t}/ds"],
     "test-pairs must be at most", absent("ds")),
    ("gen-zero-pairs", ["generate", *TINY, "--train-pairs", "0", "--out", "{t}/ds"], "train-pairs must be >= 1",
     absent("ds")),
    ("gen-negative-seed", ["generate", *TINY, "--seed", "-1", "--out", "{t}/ds"], "seed must be >= 0", absent("ds")),
    ("gen-nan-prob", ["generate", *TINY, "--share-prob", "nan", "--out", "{t}/ds"], "share-prob must be in [0, 1]",
     absent("ds")),
    ("gen-shared-in-synergy", ["generate", *TINY, "--synergy-attrs", "shape:color", "--out", "{t}/ds"],
     "cannot take part in the synergy", absent("ds")),
    ("gen-out-under-file", ["generate", *TINY, "--out", "{file}/ds"], "is a file, not a folder", intact),
    ("gen-out-is-file", ["generate", *TINY, "--out", "{file}"], "is a file, not a folder", intact),
    ("gen-force-user-folder", ["generate", *TINY, "--force", "--out", "{user}"], "did not write", intact),
    ("gen-over-dataset", ["generate", *TINY, "--out", "{data}"], "already holds a dataset", intact),
    ("gen-force-over-run", ["generate", *TINY, "--force", "--out", "{run}"], "holds a comm-diag run", intact),
    ("gen-inside-dataset", ["generate", *TINY, "--out", "{data}/more"], "inside the dataset", intact),
    ("gen-inside-run", ["generate", *TINY, "--out", "{run}/data"], "inside the run", intact),
    # --- info / reading datasets: damage is named, never a traceback
    ("info-on-file", ["info", "{file}"], "not a folder", intact),
    ("info-manifest-list", ["info", "{damaged:manifest-list}"], "not a comm-diag dataset manifest", intact),
    ("info-manifest-not-json", ["info", "{damaged:manifest-not-json}"], "not valid JSON", intact),
    ("info-manifest-no-sha256", ["info", "{damaged:manifest-no-sha256}"], "'sha256' entry is missing", intact),
    ("info-pair-out-of-range", ["info", "{damaged:pair-out-of-range}"], "indexes images outside", intact),
    ("train-float-images", [*TRAIN[:2], "{damaged:float-images}", "--preset", "smoke", "--out", "{t}/r"],
     "holds float32 pixels", absent("r")),
    # --- train: every setting checked before the first byte
    ("train-epochs-negative", [*TRAIN, "--epochs", "-1", "--out", "{t}/r"], "epochs must be >= 1", absent("r")),
    ("train-batch-zero", [*TRAIN, "--batch-size", "0", "--out", "{t}/r"], "batch-size must be >= 2", absent("r")),
    ("train-temperature-nan", [*TRAIN, "--temperature", "nan", "--out", "{t}/r"], "temperature must be a finite",
     absent("r")),
    ("train-lr-zero", [*TRAIN, "--lr", "0", "--out", "{t}/r"], "lr must be > 0", absent("r")),
    ("train-seed-negative", [*TRAIN, "--seed", "-1", "--out", "{t}/r"], "seed must be >= 0", absent("r")),
    ("train-width-zero", [*TRAIN, "--width", "0", "--out", "{t}/r"], "width must be in (0, 4]", absent("r")),
    ("train-fusion-for-cross", [*TRAIN, "--method", "cross", "--fusion", "linear", "--out", "{t}/r"],
     "does not use fusion", absent("r")),
    ("train-temperature-for-cross", [*TRAIN, "--method", "cross", "--temperature", "0.2", "--out", "{t}/r"],
     "does not use temperature", absent("r")),
    ("train-precision", [*TRAIN, "--precision", "fp16", "--out", "{t}/r"], "unknown precision", absent("r")),
    ("train-aug", [*TRAIN, "--aug1", "sepia", "--out", "{t}/r"], "unknown augmentation 'sepia'", absent("r")),
    ("train-crop-min", [*TRAIN, "--crop-min", "1.5", "--out", "{t}/r"], "crop-min must be in (0, 1]", absent("r")),
    ("train-set-unknown", [*TRAIN, "--set", "colour=red", "--out", "{t}/r"], "--set takes KEY=VALUE", absent("r")),
    ("train-set-bad-type", [*TRAIN, "--set", "d=wide", "--out", "{t}/r"], "--set d: expected int", absent("r")),
    ("train-out-is-dataset", [*TRAIN, "--out", "{data}"], "holds a comm-diag dataset, not a run", intact),
    ("train-out-inside-dataset", [*TRAIN, "--out", "{data}/run"], "inside the dataset", intact),
    ("train-out-is-user-folder", [*TRAIN, "--out", "{user}"], "did not write", intact),
    ("train-over-finished-run", [*TRAIN, "--epochs", "1", "--batch-size", "32", "--out", "{run}"],
     "already holds a run", intact),
    ("train-resume-other-seed", [*TRAIN, "--epochs", "1", "--batch-size", "32", "--seed", "1", "--resume",
                                 "--out", "{damaged:run:copy}"], "seed: 0 there, 1 now", no_tmp),
    ("train-resume-truncated", [*TRAIN, "--epochs", "1", "--batch-size", "32", "--resume",
                                "--out", "{damaged:run:truncated-checkpoint}"], "not a readable checkpoint", no_tmp),
    ("train-resume-empty", [*TRAIN, "--epochs", "1", "--batch-size", "32", "--resume",
                            "--out", "{damaged:run:empty-checkpoint}"], "not a readable checkpoint", no_tmp),
    # --- probe / report: nothing looks more certain than it is
    ("probe-unfinished", ["probe", "{unfinished}"], "is unfinished: trained 1 of 2 epochs", intact),
    ("probe-unknown-probe", ["probe", "{run}", "--probe", "svm"], "unknown probe 'svm'", intact),
    ("report-same-run-twice", ["report", "{run}", "{run}", "--out", "{t}/rep"], "given twice", absent("rep")),
    ("report-mixed-datasets", ["report", "{run}", "{run_other_data}", "--out", "{t}/rep"],
     "different unbiased datasets", absent("rep")),
    ("report-no-auroc-column", ["report", "{damaged:run:no-auroc}", "--out", "{t}/rep"], "lacks the columns auroc",
     absent("rep")),
    ("report-out-inside-run", ["report", "{run}", "--out", "{run}/rep"], "inside the run", intact),
    # --- sweeps: settings validated before any dataset or sweep.json is written
    ("quickstart-epochs", ["quickstart", "--preset", "smoke", "--epochs", "-1", "--out", "{t}/q"],
     "epochs must be >= 1", absent("q")),
    ("quickstart-seeds", ["quickstart", "--preset", "smoke", "--seeds", "-1", "--out", "{t}/q"],
     "seeds must be distinct non-negative", absent("q")),
    ("check-epochs", ["check", EXAMPLE, "--preset", "smoke", "--epochs", "0", "--out", "{t}/c"],
     "epochs must be >= 1", absent("c")),
    ("ablate-epochs", ["ablate", "loss", "--preset", "smoke", "--epochs", "0", "--out", "{t}/a"],
     "epochs must be >= 1", absent("a")),
    ("quickstart-into-dataset", ["quickstart", "--preset", "smoke", "--out", "{data}"], "not an experiment", intact),
    ("calibrate-reference", ["calibrate", "--preset", "smoke", "--references", "bogus", "--out", "{t}/c"],
     "unknown reference 'bogus'", absent("c")),
    ("calibrate-seeds", ["calibrate", "--preset", "smoke", "--seeds", "x", "--out", "{t}/c"],
     "seeds must look like", absent("c")),
]


def fill(arg: str, world: dict, tmp: Path) -> str:
    if arg.startswith("{damaged:"):
        what = arg[len("{damaged:"):-1]
        return str(damaged_copy(world, tmp, what) if what != "run:copy" else damaged_copy(world, tmp, "run:fine"))
    return arg.format(t=tmp, **{k: v for k, v in world.items()})


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_hostile_input__one_line_error_and_disk_as_promised(case, world, tmp_path):
    _, argv, message, disk = case
    r = runner.invoke(app, [fill(a, world, tmp_path) for a in argv])
    out = r.output.replace("\n", " ")
    assert r.exit_code == 1, r.output
    assert "error:" in r.output and message in out, r.output
    assert "Traceback" not in r.output and isinstance(r.exception, SystemExit), repr(r.exception)  # nothing uncaught
    assert disk(world, tmp_path), f"disk not as promised after {argv}"


def test_hostile_input__every_command_that_takes_input_is_in_the_table():
    # a new command (or one whose cases were dropped) must bring its hostile inputs with it
    commands = {c.name or c.callback.__name__ for c in app.registered_commands}
    assert commands - {"methods"} == {argv[0] for _, argv, _, _ in CASES}  # methods takes no input


@pytest.mark.parametrize("command", ["generate", "train"])
def test_hostile_input__second_writer_of_a_folder_is_refused(command, world, tmp_path):
    out = tmp_path / "busy"
    argv = ["generate", *TINY, "--out", str(out)] if command == "generate" else \
        ["train", "--data", str(world["data"]), "--preset", "smoke", "--batch-size", "32", "--out", str(out)]
    with exclusive(lock_path(out)):  # another comm-diag process holds the folder (flock: per open file)
        r = runner.invoke(app, argv)
    assert r.exit_code == 1 and "being written by another comm-diag process" in r.output, r.output
    assert not out.exists() and not lock_path(out).exists()  # and the lock file went with its holder


def _limited(argv: list[str], max_bytes: int, cwd: Path) -> subprocess.CompletedProcess:
    """The CLI in a process that may write no file larger than max_bytes (a full disk, as
    `ulimit -f` makes one): writes fail with EFBIG (Python ignores SIGXFSZ)."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return subprocess.run([sys.executable, "-m", "comm_diag.cli", *argv], cwd=cwd, capture_output=True, text=True,
                          preexec_fn=limit, timeout=300)


def test_hostile_input__full_disk_during_generate_and_train(world, tmp_path):
    r = _limited(["generate", "--size", "64", "--out", str(tmp_path / "ds")], 3_000_000, tmp_path)
    assert r.returncode == 1 and "error: input/output failed" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert list(tmp_path.iterdir()) == []  # no dataset, no temporary folder, no lock file
    r = _limited(["train", "--data", str(world["data"]), "--preset", "smoke", "--batch-size", "32",
                  "--out", str(tmp_path / "run")], 100_000, tmp_path)
    assert r.returncode == 1 and "error: input/output failed" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not list(tmp_path.rglob("*.tmp"))


# ============================================================================= round 2
# Rows: (id, argv, expected exit code, message fragment, disk check). Classes: data loss
# (what counts as empty, replacing only what a manifest lists, links, leftovers, report
# folders), code execution from received files (pickles, method names in configs),
# results that are not what they say (identities of runs, checkpoints, datasets; --set
# against options; a plugin's sys.exit), and tracebacks turned into one line.

PLUGIN = '''
import sys
from comm_diag.comm.methods import Cross


class Good(Cross):
    pass


class ExitsInStep(Cross):
    def step(self, xs, augment):
        sys.exit(0)


class ExitsLater(Cross):
    calls = 0

    def step(self, xs, augment):
        type(self).calls += 1
        if type(self).calls > 2:  # the trial step and the first training step pass
            sys.exit(0)
        return super().step(xs, augment)


class ReturnsTensor(Cross):
    def step(self, xs, augment):
        return super().step(xs, augment)["loss"]


class Raises(Cross):
    def step(self, xs, augment):
        raise RuntimeError("boom in step")


class Features3D(Cross):  # fine on the trial's 4 pairs, 3-D on a probe batch
    def fuse(self, encoded):
        return {k: (v[:, None, :] if v.shape[0] > 8 else v) for k, v in super().fuse(encoded).items()}


class FeaturesNaN(Cross):
    def fuse(self, encoded):
        return {k: (v * float("nan") if v.shape[0] > 8 else v) for k, v in super().fuse(encoded).items()}
'''

EVIL_MODULE = '''
from pathlib import Path
Path(__file__).with_name("SENTINEL").touch()  # what a hostile plugin would do on import
from comm_diag.comm.methods import Cross


class Evil(Cross):
    pass
'''


class _Evil:
    """Pickled into a checkpoint: unpickling it without weights_only would create the file."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


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

    torch.save({"model": {}, "epoch": 1, "payload": _Evil(_sentinel(t))}, run / "checkpoints" / name)
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
    from comm_diag.probes.report import report

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
     lambda w, t: (t / "run" / "probes.csv").is_file()),
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


def fill2(arg: str, world: dict, tmp: Path) -> str:
    if "{make:" in arg:
        start = arg.index("{make:")
        end = arg.index("}", start)
        made = MAKERS[arg[start + len("{make:"):end]](world, tmp)
        return arg[:start] + str(made) + arg[end + 1:]
    return arg.format(t=tmp, **world)


@pytest.mark.parametrize("case", CASES_2, ids=[c[0] for c in CASES_2])
def test_hostile_input_round2__exit_message_and_disk(case, world2, tmp_path):
    _, argv, code, message, disk = case
    r = runner.invoke(app, [fill2(a, world2, tmp_path) for a in argv])
    out = r.output.replace("\n", " ")
    assert r.exit_code == code, r.output
    assert message in out and ("error:" in r.output) == (code == 1), r.output
    assert "Traceback" not in r.output and (r.exception is None or isinstance(r.exception, SystemExit)), \
        repr(r.exception)
    assert disk(world2, tmp_path), f"disk not as promised after {argv}"


def test_hostile_input_round2__table_covers_at_least_40_new_inputs():
    assert len(CASES_2) >= 40 and not {c[0] for c in CASES_2} & {c[0] for c in CASES}
