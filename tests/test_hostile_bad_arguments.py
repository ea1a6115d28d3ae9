"""Hostile and careless inputs, as a table: each command must end with one `error:` line and
exit code 1 (no traceback), say what is wrong, and leave the disk as stated.

Rows: (id, argv with {placeholders}, expected exit code, message fragment, disk check).
Placeholders are filled from a small world of real artefacts built once per module:
a dataset, a finished and probed run, an unfinished run, user folders and files.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from comm_diag.cli import app
from comm_diag.outputs import exclusive, lock_path

from hostile_world import EXAMPLE, TINY, absent, damaged_copy, intact, no_tmp

runner = CliRunner()
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
