"""Options that contradict each other, or the artefact they are given with, are refused up
front in one line (#51: 0.8 accepted `--all-test-pairs --test-pairs 10` and wrote a manifest
saying 10 beside 4,060 pairs, and ignored `probe RUN --method comm` for a run of Cross)."""

from __future__ import annotations

from typer.testing import CliRunner

from comm_diag.cli import app
from comm_diag.comm.config import TrainConfig
from comm_diag.comm.train import train

TINY = ["--size", "32", "--train-pairs", "64", "--probe-pairs", "64"]


def test_every_test_pair_and_a_number_of_test_pairs_contradict(tmp_path):
    r = CliRunner().invoke(app, ["generate", *TINY, "--all-test-pairs", "--test-pairs", "10", "--out",
                                 str(tmp_path / "d")])
    assert r.exit_code == 1 and "--test-pairs 10 contradicts it" in r.output.replace("\n", "")
    assert not (tmp_path / "d").exists()


def test_a_method_given_for_a_run_of_another_is_refused(tmp_path, tiny_dataset):
    run = train(TrainConfig(method="cross", d=32, epochs=1, batch_size=64), tiny_dataset, tmp_path / "r")
    r = CliRunner().invoke(app, ["probe", str(run), "--method", "comm"])
    text = r.output.replace("\n", "")
    assert r.exit_code == 1 and "was trained with the method 'cross'; --method comm names another" in text
    assert not (run / "probes.csv").exists()
