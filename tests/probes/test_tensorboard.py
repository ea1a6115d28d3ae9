"""--tensorboard: a run's loss terms, lr, throughput and probe curves as TensorBoard events,
read back from the event files (TFRecord framing, tensorboardX's Event protobuf)."""

from __future__ import annotations

import csv
import struct
from pathlib import Path

import pytest

import comm_diag.api as cd

pytest.importorskip("tensorboardX")


def read_events(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] of every scalar in the folder's event files."""
    from tensorboardX.proto import event_pb2

    scalars: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        at = 0
        while at < len(data):  # record: uint64 length, uint32 crc, payload, uint32 crc
            (length,) = struct.unpack("<Q", data[at:at + 8])
            event = event_pb2.Event.FromString(data[at + 12:at + 12 + length])
            at += 16 + length
            for v in event.summary.value:
                scalars.setdefault(v.tag, []).append((event.step, v.simple_value))
    return scalars


def test_tensorboard_holds_every_loss_term_and_probe_curve(tiny_dataset, tmp_path):
    run = cd.train(tiny_dataset.root, tmp_path / "run", method="cross_self", preset="smoke", epochs=2,
                   progress="off", tensorboard=True)
    log = list(csv.DictReader(open(run / "log.csv")))
    events = read_events(run / "tensorboard")
    terms = [k for k in log[0] if k not in ("epoch", "step", "global_step", "lr", "pairs_per_s")]
    assert {"loss", "cross", "self_1", "self_2"} <= set(terms)
    for term in terms:  # every step of every term, as log.csv has it
        assert [s for s, _ in events[f"loss/{term}"]] == [int(r["global_step"]) for r in log]
        assert [v for _, v in events[f"loss/{term}"]] == pytest.approx([float(r[term]) for r in log], rel=1e-6)
    assert [v for _, v in events["train/lr"]] == pytest.approx([float(r["lr"]) for r in log], rel=1e-6)
    assert len(events["train/pairs_per_s"]) == len(log)

    # probed every epoch through a study's job: the probe curves join the loss curves
    from comm_diag.probes.report import tensorboard

    cd.probe(run, every=1, progress="off")
    events = read_events(tensorboard.export(run))
    by_epoch = [r for r in csv.DictReader(open(run / "probes_by_epoch.csv")) if r["method"] == "cross_self"]
    curve = events["probe/linear/fused/redundancy"]
    assert [s for s, _ in curve] == [int(r["epoch"]) for r in by_epoch if r["task"] == "redundancy"
                                     and r["representation"] == "fused"]
    assert [v for _, v in curve] == pytest.approx([float(r["balanced_accuracy"]) for r in by_epoch
                                                   if r["task"] == "redundancy" and r["representation"] == "fused"],
                                                  abs=1e-4)
    assert not list(run.glob(".tensorboard.*"))  # the staging folder took the name


def test_an_export_replaces_only_its_own_files_and_clears_a_killed_staging_folder(tiny_dataset, tmp_path):
    """0.8 deleted RUN/tensorboard/ whole (a user's notes in it too) and left the staging
    folder of an export killed midway for good."""
    from comm_diag.errors import OutputError
    from comm_diag.probes.report import tensorboard

    run = cd.train(tiny_dataset.root, tmp_path / "run", method="cross", preset="smoke", epochs=1,
                   progress="off", tensorboard=True)
    first = sorted(p.name for p in (run / "tensorboard").iterdir())
    killed = run / (tensorboard.STAGING + "killed")  # as an export killed before its rename leaves it
    killed.mkdir()
    (killed / "events.out.tfevents.1.host").write_bytes(b"")
    tensorboard.export(run)  # replaces its own export
    assert not killed.exists() and len(list((run / "tensorboard").iterdir())) == len(first)

    (run / "tensorboard" / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="did not write"):
        tensorboard.export(run)
    assert (run / "tensorboard" / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in (run / "tensorboard").iterdir()) == sorted(first + ["notes.txt"])
