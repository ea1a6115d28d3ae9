"""The world the hostile-input tables point at (tests/test_hostile_bad_arguments*.py): a dataset, a
finished and probed run, an unfinished run, a run on other data, user folders and files,
and the disk checks the tables' rows name. Built once per session (conftest's ``world``)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np

import comm_diag.trifeature_gen as tg
from comm_diag.comm.config import preset
from comm_diag.comm.train import train
from comm_diag.probes.measure.suite import probe_run

TINY = ["--size", "32", "--train-pairs", "64", "--probe-pairs", "64", "--test-pairs", "32"]
EXAMPLE = str(Path(__file__).resolve().parents[1] / "examples" / "late_fusion_simclr.py") + ":LateFusionSimCLR"


def build_world(w: Path, tiny_dataset: tg.Dataset) -> dict:
    """Artefacts the hostile commands point at (never modified by a case), in ``w``."""
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
            record = json.loads((run / "probes.json").read_text())
            record.pop("sha256")  # as a probes.json of 0.4 or earlier, which recorded no table digest
            (run / "probes.json").write_text(json.dumps(record))
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


def fill(arg: str, world: dict, tmp: Path, makers: dict) -> str:
    """A table row's argument with its placeholders filled: ``{make:NAME}`` by what
    ``makers[NAME](world, tmp)`` builds, the rest from the world and ``{t}`` (the test's folder)."""
    if "{make:" in arg:
        start = arg.index("{make:")
        end = arg.index("}", start)
        made = makers[arg[start + len("{make:"):end]](world, tmp)
        return arg[:start] + str(made) + arg[end + 1:]
    return arg.format(t=tmp, **world)


def assert_handled(r, code: int, message: str, disk, world: dict, tmp: Path, argv) -> None:
    """A hostile case's verdict: the exit code, ``message`` in one ``error:`` line exactly when
    it fails, no traceback or "unexpected" (a bug), and the disk as ``disk`` promises."""
    out = " ".join(r.output.split())
    assert r.exit_code == code, r.output
    assert message in out and ("error:" in r.output) == (code == 1), r.output
    assert "Traceback" not in r.output and "unexpected" not in r.output, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert disk(world, tmp), f"disk not as promised after {argv}"


def absent(*keys):
    return lambda w, t: all(not (t / k).exists() for k in keys)


def intact(w, t):
    return (w["user"] / "notes.txt").read_text() == "mine" and (w["run"] / "probes.csv").is_file() \
        and (w["data"] / "manifest.json").is_file()


def no_tmp(w, t):
    return not list(t.rglob("*.tmp")) and not list(w["world"].rglob("*.tmp"))


# round 2: a user's plugin file (good and misbehaving methods), a module that acts on import,
# and an object that acts when unpickled
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


class EvilPickle:
    """Pickled into a checkpoint: unpickling it without weights_only would create the file."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))
