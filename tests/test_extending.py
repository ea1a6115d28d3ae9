"""Extending comm-diag: a new method, a new task, a new study, and a dataset of three
modalities, each added in one place and run end to end on tiny data.

Where each lands (what a contributor edits):
- a method: one file (its class and its ``Settings``); a built-in also adds one line to
  ``comm/methods/registry.py::METHODS``. Nothing in config, CLI, sweeps or reports.
- a fusion for CoMM: one entry in ``comm/fusion.py::FUSIONS``.
- a task: one entry in ``trifeature_gen/tasks.py::TASKS`` (label rule, classes,
  interaction, PID atom, training data). PID, probes, sweeps and reports follow.
- a study: one ``Study`` value; one entry in ``probes/studies/registry.py::STUDIES`` makes it a
  ``comm-diag ablate NAME`` choice.
- a dataset of n modalities: a ``Dataset`` subclass overriding the interface.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import comm_diag.trifeature_gen as tg
from comm_diag.cli import app
from comm_diag.comm.config import preset
from comm_diag.comm.methods import METHODS, CoMM, load_class, resolve
from comm_diag.comm.methods.comm_model import CoMMSettings
from comm_diag.comm.run_folder import load_run
from comm_diag.comm.train import train
from comm_diag.probes.studies import pipeline
from comm_diag.probes.studies import registry as studies
from comm_diag.probes.measure.features import extract
from comm_diag.probes.measure.suite import probe_run
from comm_diag.probes.measure.tasks import task_names
from comm_diag.probes.studies.pipeline import StudySettings
from comm_diag.probes.studies.registry import Expectation, Study
from comm_diag.probes.studies.sweep import Variant

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- a new method

@dataclass(frozen=True)
class DetachedSettings(CoMMSettings):
    detach_alone: bool = True  # the n masked terms do not train the encoders


class DetachedCoMM(CoMM):
    """CoMM whose single-modality embeddings are detached in the masked terms: its one
    new setting is declared, defaulted and checked by the class, nowhere else."""

    Settings = DetachedSettings

    def step(self, xs, augment):
        views = [self.embed_view(xs, augment)[1] for _ in range(2)]
        if self.settings.detach_alone:
            views = [{k: (v if k == "fused" else v.detach()) for k, v in view.items()} for view in views]
        return self.comm_terms(views)


def test_a_new_method_is_one_class_with_its_settings(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.setitem(METHODS, "detached", DetachedCoMM)  # the built-in's one registry line
    cfg = resolve(preset("smoke").replace(method="detached", detach_alone="false", epochs=1))
    assert cfg.method_settings["detach_alone"] is False and cfg.method_settings["fusion"] == "transformer"
    with pytest.raises(ValueError, match="does not use cross_term"):
        resolve(preset("smoke").replace(method="detached", cross_term="heads"))
    run = train(cfg, tiny_dataset, tmp_path / "run")
    saved = json.loads((run / "config.json").read_text())["train"]
    assert saved["detach_alone"] is False
    model, _ = load_run(run)
    assert isinstance(model, DetachedCoMM) and model.settings.detach_alone is False
    # the CLI takes its choices from the registry: nothing else was edited
    r = CliRunner().invoke(app, ["train", "--data", str(tiny_dataset.root), "--preset", "smoke", "--method",
                                 "detached", "--set", "detach_alone=true", "--out", str(tmp_path / "cli")])
    assert r.exit_code == 0, r.output
    assert load_class("detached") is DetachedCoMM
    listed = CliRunner().invoke(app, ["methods"])
    assert listed.exit_code == 0 and "detached" in listed.output and "detach_alone" in listed.output


# ----------------------------------------------------------------------------- a new fusion

class MeanFusion(torch.nn.Module):
    """Mean of the modalities' pooled features, projected to d (a masked modality is left out)."""

    uses_tokens = False

    @classmethod
    def for_encoders(cls, channels, d, heads):
        return cls(channels[0], d)

    def __init__(self, channels, d):
        super().__init__()
        self.proj = torch.nn.Linear(channels, d)

    def readouts(self, pooled, keeps):
        out = []
        for keep in keeps:
            kept = [x for x, k in zip(pooled, keep or [True] * len(pooled)) if k]
            out.append(self.proj(torch.stack(kept).mean(0)))
        return out


def test_a_new_fusion_is_one_entry(tiny_dataset, tmp_path, monkeypatch):
    from comm_diag.comm import fusion

    monkeypatch.setitem(fusion.FUSIONS, "mean", MeanFusion)
    run = train(preset("smoke").replace(fusion="mean", epochs=1), tiny_dataset, tmp_path / "run")
    model, _ = load_run(run)
    assert isinstance(model.fusion, MeanFusion) and model.converters is None
    with pytest.raises(ValueError, match="infmasking masks the fusion's tokens"):
        resolve(preset("smoke").replace(method="infmasking", fusion="mean"))


# ----------------------------------------------------------------------------- a new task

NEW_TASK = """
import comm_diag.trifeature_gen.tasks as T
# the one entry: redundancy read from x2's shape instead of x1's
T.TASKS["redundancy2"] = T.Task("redundancy2", "R", "redundant", T._attribute("shared", 2), T._values("shared"),
                                "unbiased", reported=False)

import csv, sys
import comm_diag.trifeature_gen as tg
from comm_diag.comm.config import preset
from comm_diag.comm.train import train
from comm_diag.probes.measure.suite import probe_run
from comm_diag.probes.measure.tasks import tasks_after

out = sys.argv[1]
tg.generate(tg.DatasetSpec(size=32, train_pairs=256, probe_pairs=256, test_pairs=128), out + "/data")
ds = tg.load(out + "/data")
pid = ds.manifest["pid"]["test"]["redundancy2"]
run = train(preset("smoke").replace(epochs=1), ds, out + "/run")
probe_run(run, tasks=tasks_after("unbiased"), representations=("fused",), every=1)  # learning curves too
import json
from comm_diag.probes.measure.tasks import task_labels
same = all((task_labels(ds, s)["redundancy2"] == task_labels(ds, s)["redundancy"]).all() for s in ("probe_train", "test"))
csv_row = next(r for r in csv.DictReader(open(run / "probes.csv")) if r["task"] == "redundancy2")
json_row = next(r for r in json.load(open(run / "probes.json"))["rows"] if r["task"] == "redundancy2")
# the verdict tables: the report's and the command's, one column each
from rich.console import Console
from comm_diag import tables
from comm_diag.probes.report.render import write_report
from comm_diag.probes.report.runs import find_runs
result = write_report(find_runs([run]), out + "/rep")
md = open(out + "/rep/report.md").read()
console = Console(width=200, record=True)
console.print(tables.verdicts(result))
console.print(tables.check(result, "comm"))  # check's own table: one row per reading
text = console.export_text()
in_tables = "R2" in result.verdicts["comm"] and "| verdict R2 |" in md and " R2 " in text \
    and any(line.startswith("│ R2 ") for line in text.splitlines())
# the report's legend, the learning-speed table and the conclusion name it too
in_legend = "R2: redundancy2" in md
from comm_diag.probes.studies.pipeline import curve_means, expectation_lines
from comm_diag.probes.studies.registry import STUDIES
speed = expectation_lines(STUDIES["loss"], [], {"comm": curve_means(result.epochs)["comm"]})
in_speed = any(line.startswith("| variant |") and " R2 " in line for line in speed)
from comm_diag.probes.report.conclusions import conclude
from comm_diag.probes.measure.readouts import verdicts
unmarked = verdicts(result.rows)["comm"]  # the smoke preset's verdicts say "plumbing check"; the rule's own
in_conclusion = "redundancy2 (R2)" in " ".join(conclude(unmarked, "comm"))
print(round(pid["redundant"], 3), same, csv_row["balanced_accuracy"], round(json_row["balanced_accuracy"], 4),
      in_tables, in_legend, in_speed, in_conclusion)
"""


def test_a_new_task_is_one_entry(tmp_path):
    """Added before anything reads the registry, exactly as an edit to tasks.py would be."""
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(NEW_TASK), str(tmp_path)], capture_output=True,
                       text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    redundant, same_labels, in_csv, in_json, in_verdict_tables, *in_words = r.stdout.split()[-8:]
    assert float(redundant) == pytest.approx(np.log2(10), abs=0.01)  # the exact PID: x2's shape is x1's
    # its rule reached the labels: on pairs that always share their shape they are redundancy's
    assert same_labels == "True"
    assert float(in_csv) == pytest.approx(float(in_json), abs=1e-4)  # one score in both probe files
    assert in_verdict_tables == "True"  # its verdict: a column of report.md's and of the tables, a row of check's
    # 0.8's legend, learning-speed table and conclusion knew R, U, U2 and S only
    assert in_words == ["True", "True", "True"], dict(zip(("legend", "learning speed", "conclusion"), in_words))


# ----------------------------------------------------------------------------- a new study

TEMPERATURE = Study(
    name="temperature",
    description="CoMM at two InfoNCE temperatures",
    variants=(Variant("t0.1", {"method": "comm", "temperature": 0.1}),
              Variant("t0.5", {"method": "comm", "temperature": 0.5})),
    expectations=(Expectation("both temperatures read redundancy above chance",
                              lambda m: m.mean("t0.1", "R") > 10 and m.mean("t0.5", "R") > 10),),
)


def test_a_new_study_is_one_value(tiny_dataset, tiny_synergy_dataset, tmp_path, monkeypatch):
    settings = StudySettings(preset="smoke", data=(tiny_dataset.root, tiny_synergy_dataset.root), epochs=1)
    result = pipeline.run(TEMPERATURE, tmp_path / "study", settings)
    assert set(result["verdicts"]) >= {"t0.1", "t0.5"}
    record = json.loads((tmp_path / "study" / "expectations.json").read_text())
    assert record["study"] == "temperature" and record["methods"] == ["t0.1", "t0.5"]
    assert [e["text"] for e in record["expectations"]] == ["both temperatures read redundancy above chance"]
    temps = {json.loads((run / "config.json").read_text())["train"]["temperature"]
             for run in (tmp_path / "study" / "runs").iterdir()}
    assert temps == {0.1, 0.5}
    assert "## Expected pattern: CoMM at two InfoNCE temperatures" in \
        (tmp_path / "study" / "report.md").read_text()
    # one STUDIES entry makes it a command-line study
    monkeypatch.setitem(studies.STUDIES, "temperature", TEMPERATURE)
    r = CliRunner().invoke(app, ["ablate", "temperature", "--list", "--preset", "smoke"])
    assert r.exit_code == 0 and "temperature=0.5" in r.output, r.output


# ----------------------------------------------------------------------------- a study over a data setting

BIASING = Study(
    name="biasing",
    description="CoMM trained on pairs that obey the synergy mapping always or half the time",
    variants=(Variant("p1", {"method": "comm"}), Variant("p05", {"method": "comm", "synergy_prob": 0.5})),
)


def test_a_study_can_vary_a_dataset_setting(tmp_path):
    """A dataset setting in a variant is a study axis: that variant gets datasets of its own
    (generated with the study's seed: the same images, probe and test pairs), is trained and
    probed on them, and reaches the report under its own name."""
    assert Variant("p05", {"share_prob": 0.5}).data == {"share_prob": 0.5}
    with pytest.raises(ValueError, match="size is not a dataset setting a study can vary"):
        Variant("big", data={"size": 128})
    out = tmp_path / "study"
    result = pipeline.run(BIASING, out, StudySettings(preset="smoke", epochs=1))
    assert set(result["verdicts"]) >= {"p1", "p05"}
    trained_on = {}
    for run in (out / "runs").iterdir():
        meta = json.loads((run / "config.json").read_text())
        trained_on[run.name] = tg.load(meta["data"]["path"])
    half, full = trained_on["p05-synergy-seed0"], trained_on["p1-synergy-seed0"]
    assert half.spec.synergy_prob == 0.5 and full.spec.synergy_prob == 1.0
    assert half.root == out / "data" / "synergy_prob=0.5" / "synergy"
    # the training law differs (every pair obeys the mapping: a constant label, 0 bits; half of
    # them: a label that varies); what the probes are fitted and scored on does not
    train_bits = [ds.manifest["pid"]["train"]["synergy"]["mutual_information"] for ds in (half, full)]
    assert train_bits[0] > 0.5 and train_bits[1] == pytest.approx(0.0, abs=1e-9)
    for f in ("images/train.npy", "images/test.npy", "pairs/probe_train.csv", "pairs/test.csv"):
        assert half.manifest["sha256"][f] == full.manifest["sha256"][f], f
    labels = {r["method"] for r in csv.DictReader(open(out / "summary.csv"))}
    assert {"p1", "p05"} <= labels
    shown = {r["run"]: r["data"] for r in pipeline.describe_plan(BIASING, out, StudySettings(preset="smoke"))}
    assert shown["p05-synergy-seed0"] == "synergy_prob=0.5/synergy" and shown["p1-synergy-seed0"] == "synergy"
    with pytest.raises(ValueError, match="cannot run on a dataset given with --data"):
        pipeline.study_jobs(BIASING, tmp_path / "other", StudySettings(preset="smoke", data=(full.root,)))


# ----------------------------------------------------------------------------- n = 3 modalities

class ThreeViews(tg.Dataset):
    """Trifeature pairs plus a third modality: x1 upside down (a test-only dataset)."""

    n_modalities = 3

    def modality(self, pair_set, i):
        if i < 2:
            return super().modality(pair_set, i)
        images, index = super().modality(pair_set, 0)
        return np.ascontiguousarray(images[:, ::-1]), index

    def factors_of(self, pair_set, i):
        return super().factors_of(pair_set, i if i < 2 else 0)  # x1 upside down has x1's factors


@pytest.mark.parametrize("method", ["comm", "cross"])
def test_three_modalities_flow_end_to_end(method, tiny_dataset, tmp_path):
    three = ThreeViews(**{f.name: getattr(tiny_dataset, f.name) for f in fields(tiny_dataset)})
    assert [x.shape[0] for x in three.samples("test", np.arange(4))] == [4, 4, 4]
    run = train(preset("smoke").replace(method=method, epochs=1), three, tmp_path / "run")
    log = list(csv.DictReader(open(run / "log.csv")))
    if method == "comm":
        assert {"masked_1", "masked_2", "masked_3"} <= set(log[0])  # one term per modality
    model, meta = load_run(run)
    assert meta["data"]["n_modalities"] == 3 and model.n_modalities == 3
    feats = extract(model, three, "test")
    assert set(feats) == {"fused", "modality1", "modality2", "modality3"}
    assert all(f.shape[0] == three.n_samples("test") and np.isfinite(f).all() for f in feats.values())
    assert not torch.equal(torch.from_numpy(feats["modality1"]), torch.from_numpy(feats["modality3"]))
    # probed on the dataset object itself (a subclass is not reloaded by path): every task, every
    # representation, the third modality's included; a 2-modality dataset is refused for this model
    rows = probe_run(run, data=three, representations=("fused", "modality3"))
    assert {(r["task"], r["representation"]) for r in rows if r["method"] == method} == \
        {(t, rep) for t in task_names() for rep in ("fused", "modality3")}
    with pytest.raises(ValueError, match="takes 3 modalities"):
        extract(model, tiny_dataset, "test")
    if method == "comm":  # the known-answer references read every modality (calibration)
        from comm_diag.probes.studies.calibrate import REFERENCES

        assert REFERENCES["factors_concat"].build(three, "test", 0).shape[1] == 90  # 3 x 30 one-hot codes
        assert REFERENCES["factors_outer"].build(three, "test", 0).shape[1] == 3 * 900  # every two modalities


# ----------------------------------------------------------------------------- a momentum teacher

def test_a_momentum_teacher_method_is_one_file_and_runs_through_check(tmp_path):
    """examples/byol.py: its EMA target moves in ``after_step`` (the loop's hook), never by
    gradients; ``check`` trains, probes and reports it with its own setting changed."""
    from comm_diag.probes.studies.check import check

    out = tmp_path / "check"
    result = check(f"{ROOT / 'examples' / 'byol.py'}:LateFusionBYOL", out, controls=(), preset="smoke",
                   settings={"momentum": 0.5}, progress="off", workers=1)
    assert set(result["verdicts"]["LateFusionBYOL"]) == {"R", "U", "U2", "S"}
    assert "LateFusionBYOL" in (out / "report.md").read_text()
    run = out / "runs" / "LateFusionBYOL-unbiased-seed0"
    assert json.loads((run / "config.json").read_text())["train"]["momentum"] == 0.5  # the method's own setting
    w0, w1 = (torch.load(run / "checkpoints" / f"epoch_00{e}.pt", weights_only=True)["model"] for e in (0, 1))
    name = next(k for k in w0 if k.startswith("target_encoders.") and k.endswith("weight"))
    online = name.replace("target_encoders.", "encoders.")
    assert torch.equal(w0[name], w0[online])  # the teacher starts as the student
    assert not torch.equal(w1[name], w0[name])  # the EMA moved it...
    assert not torch.equal(w1[name], w1[online])  # ...towards the student, not onto it (momentum 0.5)
