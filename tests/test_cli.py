"""CLI behaviour through Typer's CliRunner: exit codes, outputs, one-line errors."""

import csv
import json

import pytest
from typer.testing import CliRunner

import comm_diag.trifeature_gen as tg
from comm_diag.cli import app

runner = CliRunner()
TINY_ARGS = ["--size", "32", "--train-pairs", "64", "--probe-pairs", "64", "--test-pairs", "32"]


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_cli__version_and_help():
    r = run("--version")
    assert r.exit_code == 0 and tg.__version__ in r.output
    for cmd in ["generate", "info"]:
        r = run(cmd, "--help")
        assert r.exit_code == 0 and "Usage" in r.output


def test_cli__generate_synergy_then_info(tmp_path):
    out = tmp_path / "ds"
    r = run("generate", "--synergy", "--out", out, *TINY_ARGS)
    assert r.exit_code == 0, r.output
    m = json.loads((out / "manifest.json").read_text())
    assert m["spec"]["synergy"] is True and m["counts"]["synergy_positive_rate"]["train"] == 1.0
    r = run("info", out)
    assert r.exit_code == 0 and "synergy positive rate" in r.output and "0.469" in r.output


def test_cli__generate_preset_takes_a_training_presets_data_and_options_override_it(tmp_path):
    r = run("generate", "--preset", "smoke", "--test-pairs", "64", "--out", tmp_path / "s")
    assert r.exit_code == 0, r.output
    spec = json.loads((tmp_path / "s" / "manifest.json").read_text())["spec"]
    assert (spec["size"], spec["train_pairs"], spec["probe_pairs"], spec["test_pairs"]) == (32, 512, 512, 64)
    r = run("generate", "--preset", "huge", "--out", tmp_path / "h")
    assert r.exit_code == 1 and "unknown preset 'huge'; choose from" in r.output and not (tmp_path / "h").exists()


def test_cli__tables_fold_at_80_columns_and_lose_no_text(monkeypatch):
    """In a narrow terminal cells fold: every method's description is there in full."""
    import re

    from comm_diag import cli, tables
    from comm_diag.comm.methods import METHODS

    monkeypatch.setattr(cli.console, "width", 80)
    r = run("methods")
    assert r.exit_code == 0
    flat = re.sub(r"[\s│┃┆┇┊┋╎╏║]+", "", r.output)  # the cells' text, borders and line breaks removed
    for cls in METHODS.values():
        assert re.sub(r"\s+", "", tables.summary(cls)) in flat, cls.__name__
    assert "…" not in r.output


def test_cli__generate_png_and_custom_roles(tmp_path):
    out = tmp_path / "ds"
    r = run("generate", "--out", out, "--shared", "color", "--unique", "shape", "--synergy-attrs",
            "shape:texture", "--png", *TINY_ARGS)
    assert r.exit_code == 0, r.output
    assert len(list((out / "images" / "test").glob("*.png"))) == 200
    assert json.loads((out / "manifest.json").read_text())["roles"]["synergy"] == "shape:texture"


def test_cli__every_documented_setting_of_the_configs_is_an_option(tmp_path):
    # the options of generate and train are built from DatasetSpec's and TrainConfig's fields: a
    # new field with a help is a new option, with its default in the help, and reaches the run
    import dataclasses

    from comm_diag.comm.config import TrainConfig

    for cmd, cls, skip in (("generate", tg.DatasetSpec, {"synergy", "synergy_src", "synergy_tgt"}),
                           ("train", TrainConfig, {"decay_norms_and_biases"})):
        text = " ".join(run(cmd, "--help").output.split())
        for f in dataclasses.fields(cls):
            if "help" in f.metadata and f.name not in skip:
                assert "--" + f.name.replace("_", "-") in text, (cmd, f.name)
                assert " ".join(f.metadata["help"].split()[:3]) in text, (cmd, f.name)
    assert "Renders per test combination [1]." in " ".join(run("generate", "--help").output.split())
    r = run("generate", "--out", tmp_path / "ds", *TINY_ARGS, "--test-views", "2", "--train-fraction", "0.5")
    assert r.exit_code == 0, r.output
    spec = json.loads((tmp_path / "ds" / "manifest.json").read_text())["spec"]
    assert (spec["test_views"], spec["train_fraction"], spec["views"]) == (2, 0.5, tg.DatasetSpec.views)


@pytest.mark.parametrize("args, message", [
    (["--shared", "smell"], "unknown attribute 'smell'"),
    (["--synergy-attrs", "texture"], "SRC:TGT"),
    (["--synergy-attrs", "texture:taste"], "unknown attribute 'taste'"),
    (["--shared", "texture"], "both the shared and the unique"),
    (["--size", "20"], ">= 32"),
    (["--share-prob", "2"], "[0, 1]"),
])
def test_cli__generate_bad_input_is_one_line_error_and_no_dataset(tmp_path, args, message):
    out = tmp_path / "ds"
    r = run("generate", "--out", out, *TINY_ARGS, *args)
    assert r.exit_code == 1
    assert message in r.output and "Traceback" not in r.output
    assert not out.exists()


def test_cli__folder_with_user_files_is_never_replaced(tmp_path):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "x").write_text("x")
    for force in ([], ["--force"]):
        r = run("generate", "--out", out, *TINY_ARGS, *force)
        assert r.exit_code == 1 and "did not write" in r.output
    assert (out / "x").read_text() == "x"


def test_cli__info_on_damaged_dataset(tmp_path):
    out = tmp_path / "ds"
    assert run("generate", "--out", out, *TINY_ARGS).exit_code == 0
    (out / "images" / "train.npy").write_bytes(b"\x93NUMPY")
    r = run("info", out)
    assert r.exit_code == 1 and "sha256" in r.output and "Traceback" not in r.output
    r = run("info", tmp_path / "nowhere")
    assert r.exit_code == 1 and "not a folder" in r.output


# ----------------------------------------------------------------------------- train / probe / report / quickstart

def test_cli__train_probe_report(tmp_path):
    data = tmp_path / "ds"
    assert run("generate", "--out", data, *TINY_ARGS).exit_code == 0
    r = run("train", "--data", data, "--preset", "smoke", "--out", tmp_path / "run", "--batch-size", "32")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()
    r = run("probe", tmp_path / "run")
    assert r.exit_code == 0, r.output
    assert "comm@init" in r.output and (tmp_path / "run" / "probes.csv").is_file()
    r = run("report", tmp_path / "run", "--out", tmp_path / "rep")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "rep" / "report.md").is_file() and (tmp_path / "rep" / "summary.csv").is_file()


@pytest.mark.parametrize("args, message", [
    (["--method", "byol"], "choose from comm, cross, cross_self, infmasking, simclr"),
    (["--encoder", "vgg"], "choose from alexnet, alexnet_bn, resnet18, resnet50"),
    (["--fusion", "sum"], "choose from transformer, linear"),
    (["--preset", "huge"], "choose from cpu, paper, smoke"),
    (["--set", "image_size=64"], "image_size is not a setting: it is read from the dataset"),
    (["--batch-size", "100000"], "larger than the"),
    (["--resume"], "no checkpoint"),
    (["--device", "tpu"], "choose from auto, cpu, cuda"),
])
def test_cli__train_bad_input(tmp_path, args, message):
    data = tmp_path / "ds"
    assert run("generate", "--out", data, *TINY_ARGS).exit_code == 0
    r = run("train", "--data", data, "--preset", "smoke", "--out", tmp_path / "run", *args)
    assert r.exit_code == 1, r.output
    assert message in r.output.replace("\n", " ") and "Traceback" not in r.output


def test_cli__train_on_something_that_is_not_a_dataset(tmp_path):
    r = run("train", "--data", tmp_path, "--out", tmp_path / "run")
    assert r.exit_code == 1 and "manifest.json is missing" in r.output


def test_cli__probe_and_report_bad_input(tmp_path):
    r = run("probe", tmp_path)
    assert r.exit_code == 1 and "not a training run" in r.output
    r = run("report", tmp_path, "--out", tmp_path / "rep")
    assert r.exit_code == 1 and "no probed runs" in r.output
    r = run("quickstart", "--seeds", "0,x", "--out", tmp_path / "q")
    assert r.exit_code == 1 and "seeds must look like" in r.output


def test_cli__quickstart_smoke_end_to_end_and_rerun_skips(tmp_path, monkeypatch):
    """A plugin beside built-ins, as check takes it; the report opens by saying that smoke
    verdicts are a plumbing check, then concludes in words with advice for this machine."""
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # the example's relative path, as a user gives it
    out = tmp_path / "q"
    methods = "comm,cross,examples/clip_concat.py:ClipConcat"
    r = run("quickstart", "--preset", "smoke", "--out", out, "--methods", methods)
    assert r.exit_code == 0, r.output
    assert "ClipConcat: one trial step" in r.output and "plumbing check" in " ".join(r.output.split())
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert {r["method"] for r in rows} == {"comm", "cross", "ClipConcat", "comm@init", "cross@init",
                                          "ClipConcat@init"}
    assert {r["verdict"] for r in rows if "@" not in r["method"]} == {"plumbing check"}  # smoke claims nothing
    assert (out / "figure4.png").is_file() and (out / "figure4.svg").is_file()
    report = (out / "report.md").read_text()
    head = report.split("Verdict rule")[0]
    assert head.index("plumbing check") < head.index("## Conclusion") < head.index("| CoMM |")
    conclusion = head.split("## Conclusion")[1].split("comm-diag 0")[0]
    for name in ("CoMM", "Cross", "ClipConcat"):  # one sentence each, and no claim at a plumbing preset
        assert f"{name}: plumbing check only" in conclusion, name
    assert " captures " not in conclusion and "does not capture" not in conclusion
    assert "smoke preset, 1 epoch, one seed" in conclusion and "run --preset cpu" in conclusion
    record = json.loads((out / "quickstart.json").read_text())
    assert record["configs"]["ClipConcat"]["method"].endswith("examples/clip_concat.py:ClipConcat")
    r = run("quickstart", "--preset", "smoke", "--out", out, "--methods", methods)
    assert r.exit_code == 0 and r.output.count("skipped") == 6
    r = run("quickstart", "--preset", "smoke", "--out", tmp_path / "bad", "--methods", "comm,nowhere.py:X")
    assert r.exit_code == 1 and "no such file" in r.output and not (tmp_path / "bad").exists()


# ----------------------------------------------------------------------------- ablate

def test_cli__ablate_list_and_bad_input(tmp_path):
    r = run("ablate", "--list-studies")
    assert r.exit_code == 0 and all(s in r.output for s in ("loss", "fusion", "augment"))
    r = run("ablate", "augment", "--list", "--extra", "--seeds", "0,1")
    assert r.exit_code == 0 and "color_on_both" in r.output and "aug1=none" in r.output
    for args, msg in [(["nope"], "unknown study 'nope'; choose from loss, fusion, augment"),
                      (["loss", "--seeds", "1,x"], "seeds must look like"),
                      (["fusion", "--executor", "slurm"], "unknown executor"),
                      (["fusion", "--executor", "ray", "--together", "2"], "--together are for the local executor"),
                      (["fusion", "--together", "2", "--workers", "2"], "it takes --workers 1"),
                      ([], "name a study")]:
        r = run("ablate", *args, "--out", tmp_path / "a")
        assert r.exit_code == 1 and msg in r.output and "Traceback" not in r.output, r.output
    assert not (tmp_path / "a").exists()


def test_cli__ablate_dose_lists_one_dataset_per_level_and_guards_its_options(tmp_path, monkeypatch):
    from comm_diag import cli

    monkeypatch.setattr(cli.console, "width", 160)  # one line per run (at 80 columns the cells fold)
    r = run("ablate", "dose", "--list", "--interaction", "synergy,redundancy", "--levels", "0,0.5",
            "--methods", "comm,cross", "--out", tmp_path / "d")
    assert r.exit_code == 0, r.output
    for text in ("comm@synergy=0.5", "synergy_prob=0.5/synergy", "cross@redundancy=0", "train_share_prob=0.0/unbiased"):
        assert text in r.output, text
    assert "synergy_prob=0.5/unbiased" not in r.output  # a synergy level trains on its synergy set only
    for args, msg in [(["loss", "--levels", "0,1"], "levels is for the dose study, not for 'loss'"),
                      (["dose", "--levels", "0.5"], "levels must be at least two"),
                      (["dose", "--interaction", "uniqueness"], "unknown dose interaction 'uniqueness'"),
                      (["dose", "--methods", "nope"], "unknown method")]:
        r = run("ablate", *args, "--out", tmp_path / "a")
        assert r.exit_code == 1 and msg in r.output and "Traceback" not in r.output, r.output
    assert not (tmp_path / "a").exists()


def test_cli__ablate_fusion_runs_resumes_and_guards_its_folder(tmp_path, tiny_dataset, tiny_synergy_dataset):
    out = tmp_path / "fusion"
    common = ["--preset", "smoke", "--epochs", "1", "--data", tiny_dataset.root, "--data", tiny_synergy_dataset.root,
              "--out", out]
    r = run("ablate", "fusion", *common)
    assert r.exit_code == 0, r.output
    assert "linear fusion loses synergy" in r.output and (out / "report.md").is_file()
    r = run("ablate", "fusion", *common)
    assert r.exit_code == 0 and r.output.count("skipped") == 4
    r = run("ablate", "fusion", *common, "--only", "4")
    assert r.exit_code == 1 and "out of range" in r.output
    r = run("ablate", "loss", *common)
    assert r.exit_code == 1 and "holds another experiment" in r.output


# ----------------------------------------------------------------------------- check

EXAMPLE = "examples/late_fusion_simclr.py:LateFusionSimCLR"


def test_cli__check_example_method_with_controls(tmp_path, tiny_dataset, tiny_synergy_dataset, monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # the README's relative path works from the root
    out = tmp_path / "check"
    r = run("check", EXAMPLE, "--preset", "smoke", "--epochs", "1", "--data", tiny_dataset.root,
            "--data", tiny_synergy_dataset.root, "--out", out, "--require", "redundancy,synergy")
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert {r["method"] for r in rows} >= {"LateFusionSimCLR", "comm", "cross", "cross_self", "LateFusionSimCLR@init"}
    report = (out / "report.md").read_text()
    header = next(x for x in report.splitlines() if x.startswith("| method |")).split("|")
    line = next(x for x in report.splitlines() if x.startswith("| LateFusionSimCLR |")).split("|")
    cell = {h.strip(): c.strip() for h, c in zip(header, line)}
    # the conclusion opens with the method's own verdicts, as the table reads them
    verdicts = [cell[f"verdict {k}"] for k in ("R", "U", "S fused")]
    assert set(verdicts) == {"plumbing check"}  # a smoke check claims nothing, and says so
    assert "## Conclusion" in report and "LateFusionSimCLR: plumbing check only" in report and "figure4.png" in report
    # exit code 3 exactly when a required interaction is not captured, per the report's own verdicts
    missing = cell["verdict R"] != "captured" or cell["verdict S fused"] != "captured"
    assert r.exit_code == (3 if missing else 0), r.output
    assert ("required but not captured" in r.output) == missing


def test_cli__check_bad_methods_fail_in_one_line(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_text("from comm_diag.comm.methods import Method\nclass M(Method):\n    pass\n")
    for target, msg in [(f"{bad}:M", "does not implement the method interface: missing step"),
                        (f"{tmp_path}/none.py:M", "no such file"),
                        ("byol", "unknown method 'byol'")]:
        r = run("check", target, "--out", tmp_path / "c")
        assert r.exit_code == 1 and msg in r.output and "Traceback" not in r.output, r.output
    for args, msg in [(["--no-controls", "--controls", "comm,bogus"], "contradict each other"),
                      (["--controls", "comm,bogus"], "unknown control 'bogus'"),
                      (["--set", "proj_dim=8"], "does not use proj_dim"),  # cross has no settings of its own
                      (["--set", "method=comm"], "cannot change the method"),
                      (["--dose", "synergy", "--require", "synergy"], "a dose check has one per level"),
                      (["--dose", "uniqueness"], "unknown dose interaction 'uniqueness'")]:
        r = run("check", "cross", "--preset", "smoke", *args, "--out", tmp_path / "c")
        assert r.exit_code == 1 and msg in r.output and "Traceback" not in r.output, (args, r.output)
    assert not (tmp_path / "c").exists()  # nothing generated or trained for a broken method


def test_cli__train_nproc_bad_input_fails_before_launching(tmp_path, tiny_dataset):
    for args, msg in [(["--method", "byol"], "unknown method 'byol'"), (["--nproc", "0"], "--nproc must be >= 1")]:
        r = run("train", "--data", tiny_dataset.root, "--preset", "smoke", "--nproc", "2", *args, "--out", tmp_path / "r")
        assert r.exit_code == 1 and msg in r.output and "Traceback" not in r.output, r.output
    assert not (tmp_path / "r").exists()


def test_python_dash_m_comm_diag_is_the_command(tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "comm_diag", "--help"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Usage: comm-diag" in r.stdout and "quickstart" in r.stdout


def test_cli__ablates_help_names_every_study():
    """The help is written without importing the studies (it must not import torch): a test
    keeps it naming each of them (0.8's omitted fidelity)."""
    from comm_diag.probes.studies.registry import STUDIES

    text = CliRunner().invoke(app, ["ablate", "--help"]).output
    assert all(name in text for name in STUDIES), [n for n in STUDIES if n not in text]


def test_cli__tables_at_80_columns_in_a_pipe_never_fold_a_header_one_letter_a_line(tmp_path, monkeypatch):
    """0.8's `ablate --list` printed its "seed" header as s/e/e/d at 80 columns (a pipe's
    width): each column now gets the longest word of its cells or header, shortest first,
    before any widens."""
    from comm_diag import cli

    monkeypatch.setattr(cli.console, "width", 80)
    r = CliRunner().invoke(app, ["ablate", "loss", "--preset", "smoke", "--list", "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    assert max(len(line) for line in r.output.splitlines()) <= 80
    header = "".join(line for line in r.output.splitlines() if line.startswith("┃"))
    for word in ("#", "run", "variant", "seed", "data", "changes", "from", "the", "preset"):
        assert f" {word} " in header, (word, header)
