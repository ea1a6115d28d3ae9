"""The fourth table of hostile inputs (#51), grouped by the mechanism each case attacks, not
by the round that found it: what a received folder may hold, names that must not collide or
overflow, studies that would compare unlike things, and writers that must replace only what
they wrote. Rows are generated per mechanism (every kind of entry x every file a reader
opens x every command that reads it), then run in-process on the world of
tests/hostile_world.py; an alarm turns a hang (a FIFO read) into a failure, not a stuck suite.
Rows: (id, argv, expected exit code, message fragment, disk check)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

import comm_diag.trifeature_gen as tg
from comm_diag.cli import app

from hostile_world import TINY, assert_handled, fill, intact
from test_hostile_bad_arguments import CASES
from test_hostile_data_loss_and_received_code import CASES_2
from test_hostile_received_folders_and_rendered_names import CASES_3

runner = CliRunner()
OUTSIDE_TEXT = "a user's file outside the folder\n"

# -- mechanism 1: a received folder is regular files of bounded size, or it is refused --------
KINDS = {  # how the entry is made -> what the refusal says
    "symlink": "is a symbolic link",
    "hardlink": "is a hard link",
    "fifo": "is not a regular file",
    "socket": "is not a regular file",
    "oversize": "GB, more than a comm-diag",
}
RUN_FILES = ("config.json", "log.csv", "probes.json", "probes.csv", "checkpoints/epoch_001.pt")
DATA_FILES = ("manifest.json", "images/train.npy", "pairs/test.csv")
# the issue's own examples (tested in tests/test_received_folders.py), not new cases
FROM_THE_ISSUE = {("fifo", "checkpoints/epoch_001.pt", "probe"), ("fifo", "probes.json", "report"),
                  ("fifo", "log.csv", "resume"), ("hardlink", "log.csv", "resume")}
OVERSIZE = {".json": 300 * 2**20, ".csv": 3 * 2**30, ".pt": 17 * 2**30, ".npy": 65 * 2**30}


def _outside(t: Path) -> Path:
    p = t / "outside.txt"
    if not p.exists():
        p.write_text(OUTSIDE_TEXT)
    return p


def _plant(folder: Path, rel: str, kind: str, t: Path) -> None:
    """Replace ``folder/rel`` by an entry of ``kind`` (creating it where the folder had none)."""
    p = folder / rel
    p.unlink(missing_ok=True)
    if kind == "symlink":
        os.symlink(_outside(t), p)
    elif kind == "hardlink":
        os.link(_outside(t), p)
    elif kind == "fifo":
        os.mkfifo(p)
    elif kind == "socket":
        s = socket.socket(socket.AF_UNIX)
        short = Path("/tmp") / f"cd-sock-{os.getpid()}-{abs(hash(str(p))) % 10**8}"
        s.bind(str(short))  # a socket path has at most ~107 bytes: bound short, then moved in
        s.close()
        shutil.move(str(short), p)
    else:  # sparse: that size, no disk
        with open(p, "wb") as f:
            f.truncate(OVERSIZE[p.suffix])


def _run_entry(kind: str, rel: str, source: str):
    def make(w, t):
        run = t / "run"
        shutil.copytree(w[source], run)
        _plant(run, rel, kind, t)
        return run
    return make


def _data_entry(kind: str, rel: str):
    def make(w, t):
        ds = t / "ds"
        shutil.copytree(w["data"], ds)
        _plant(ds, rel, kind, t)
        return ds
    return make


def outside_kept(w, t) -> bool:
    p = t / "outside.txt"
    return (not p.exists() or p.read_text() == OUTSIDE_TEXT) and intact(w, t) and not (t / "rep").exists()


MAKERS: dict = {}
RECEIVED = []
for kind, said in KINDS.items():
    for rel in RUN_FILES:
        for command in ("probe", "report", "resume"):
            if (kind, rel, command) in FROM_THE_ISSUE:
                continue
            name = f"{command}-{kind}-{rel.replace('/', '-')}"
            source = "unfinished" if command == "resume" else "run"
            MAKERS[name] = _run_entry(kind, rel, source)
            argv = {"probe": ["probe", f"{{make:{name}}}"],
                    "report": ["report", f"{{make:{name}}}", "--out", "{t}/rep"],
                    "resume": ["train", "--resume", "--out", f"{{make:{name}}}", "--data", "{data}"]}[command]
            RECEIVED.append((f"received-run-{name}", argv, 1, said, outside_kept))
    for rel in DATA_FILES:
        for command in ("info", "train"):
            name = f"data-{command}-{kind}-{rel.replace('/', '-')}"
            MAKERS[name] = _data_entry(kind, rel)
            argv = {"info": ["info", f"{{make:{name}}}"],
                    "train": ["train", "--data", f"{{make:{name}}}", "--preset", "smoke", "--out", "{t}/r"]}[command]
            RECEIVED.append((f"received-{name}", argv, 1, said,
                             lambda w, t: outside_kept(w, t) and not (t / "r").exists()))

# -- mechanism 2: names are bytes on disk; a long name in a multi-byte script must not overflow
# the 255-byte limit of the lock and partial-folder names beside it ------------------------------
LONG_NAMES = {"accented": "é" * 120, "cjk": "日" * 80, "emoji": "😀" * 60, "mixed": "aé日😀" * 24}
NAMES = [(f"names-generate-{script}-240-bytes", ["generate", *TINY, "--out", "{t}/" + name], 0, "wrote",
          lambda w, t, name=name: (t / name / "manifest.json").is_file() and not list(t.glob(".*")))
         for script, name in LONG_NAMES.items()]
NAMES.append(("names-report-cjk-240-bytes", ["report", "{run}", "--out", "{t}/" + "報" * 80], 0, "report",
              lambda w, t: (t / ("報" * 80) / "report.md").is_file() and not list(t.glob(".*"))))

# -- mechanism 3: a study compares its two datasets' scores, so they must be one world ------------
UNLIKE = {"size": {"size": 40}, "renderer": {"renderer": "authors"}, "seed": {"seed": 7},
          "shared-attribute": {"shared": "color", "unique": "texture", "synergy_src": "texture",
                               "synergy_tgt": "shape"}}


def _synergy_twin(change: dict):
    def make(w, t):
        spec = tg.load(w["data"]).spec.to_dict()
        return tg.generate(tg.DatasetSpec(**{**spec, **change, "synergy": True}), t / "twin")
    return make


STUDIES = []
for what, change in UNLIKE.items():
    MAKERS[f"twin-{what}"] = _synergy_twin(change)
    field = next(iter(change))
    for command in (["check", "cross"], ["ablate", "loss"]):
        STUDIES.append((f"study-{command[0]}-datasets-differ-in-{what}",
                        [*command, "--preset", "smoke", "--data", "{data}", "--data", f"{{make:twin-{what}}}",
                         "--out", "{t}/s"], 1, f"differ in {field}", lambda w, t: not (t / "s").exists()))

# -- mechanism 4: a writer replaces only what it wrote -------------------------------------------


def _tensorboard_with_notes(w, t):
    run = t / "run"
    shutil.copytree(w["unfinished"], run)
    (run / "tensorboard").mkdir()
    (run / "tensorboard" / "notes.txt").write_text("mine")
    return run


MAKERS["tensorboard-notes"] = _tensorboard_with_notes
WRITERS = [
    ("writer-tensorboard-export-keeps-a-users-file",
     ["train", "--resume", "--out", "{make:tensorboard-notes}", "--data", "{data}", "--tensorboard", "--preset",
      "smoke", "--batch-size", "32", "--epochs", "2"], 1, "did not write",
     lambda w, t: (t / "run" / "tensorboard" / "notes.txt").read_text() == "mine"
     and not (t / "run" / "checkpoints" / "epoch_002.pt").exists()),  # refused before training
]
if importlib.util.find_spec("tensorboardX") is None:  # the refusal needs the export to run
    WRITERS = []

CASES_4 = RECEIVED + NAMES + STUDIES + WRITERS


def _hang(signum, frame):
    raise TimeoutError("the command hung (a read of a FIFO or a device?)")


@pytest.mark.parametrize("case", CASES_4, ids=[c[0] for c in CASES_4])
def test_hostile_by_mechanism__exit_message_and_disk(case, world, tmp_path):
    _, argv, code, message, disk = case
    argv = [fill(a, world, tmp_path, MAKERS) for a in argv]
    old = signal.signal(signal.SIGALRM, _hang)
    signal.alarm(120)
    try:
        r = runner.invoke(app, argv)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert_handled(r, code, message, disk, world, tmp_path, argv)


def test_hostile_by_mechanism__at_least_100_new_cases_none_repeated():
    ids = [c[0] for c in CASES_4]
    assert len(ids) >= 100 and len(ids) == len(set(ids))
    assert not set(ids) & {c[0] for c in CASES + CASES_2 + CASES_3}
