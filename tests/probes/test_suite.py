import csv
import json
import os

import pytest

from comm_diag.comm.config import TrainConfig
from comm_diag.comm.train import train
from comm_diag.probes.report.render import write_report
from comm_diag.probes.report.runs import find_runs
from comm_diag.probes.measure.suite import PROBE_COLUMNS, ProbeError, probe_run

CFG = dict(image_size=32, d=32, batch_size=64, epochs=1)
OWN = {"comm": dict(proj_hidden=32, proj_dim=16), "cross": {}}  # each method's own settings


@pytest.fixture(scope="module")
def probed_runs(tmp_path_factory, tiny_dataset, tiny_synergy_dataset):
    root = tmp_path_factory.mktemp("runs")
    runs = []
    for method in ("comm", "cross"):
        for name, ds in (("unbiased", tiny_dataset), ("synergy", tiny_synergy_dataset)):
            run = train(TrainConfig().replace(method=method, **CFG, **OWN[method]), ds, root / f"{method}-{name}")
            probe_run(run, every=1 if method == "comm" else 0)
            runs.append(run)
    return root, runs


def test_probe_run__writes_schema_and_controls(probed_runs):
    _, runs = probed_runs
    rows = list(csv.DictReader(open(runs[0] / "probes.csv")))
    assert tuple(rows[0]) == PROBE_COLUMNS
    assert {r["method"] for r in rows} == {"comm", "comm@init"}
    assert {r["representation"] for r in rows} == {"fused", "modality1", "modality2"}
    assert {r["task"] for r in rows} == {"redundancy", "uniqueness1", "uniqueness2", "synergy"}
    assert all(r["auroc"] == "" for r in rows if r["task"] != "synergy")
    assert all(0 <= float(r["balanced_accuracy"]) <= 100 for r in rows)
    meta = json.loads((runs[0] / "probes.json").read_text())
    assert meta["config"]["train"]["method"] == "comm" and "package_version" in meta
    by_epoch = list(csv.DictReader(open(runs[0] / "probes_by_epoch.csv")))
    assert {r["epoch"] for r in by_epoch} == {"0", "1"}


def test_report__summary_figure_and_verdicts(probed_runs, tmp_path):
    root, runs = probed_runs
    result = write_report(find_runs([root]), tmp_path / "rep")
    assert (tmp_path / "rep" / "figure4.png").stat().st_size > 1000
    assert (tmp_path / "rep" / "learning_curves.png").is_file()
    for figure in ("figure4.svg", "learning_curves.svg"):  # vector copies for a paper
        assert (tmp_path / "rep" / figure).read_text().lstrip().startswith("<?xml")
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| CoMM |" in md and "| Cross |" in md and "Verdict rule" in md  # display names
    rows = list(csv.DictReader(open(tmp_path / "rep" / "summary.csv")))
    assert tuple(rows[0]) == (*PROBE_COLUMNS, "low", "high", "line", "verdict")
    # each row's verdict is the report's: the fused linear R of each method, and none for a control
    for m, v in result["verdicts"].items():
        row = next(r for r in rows if r["method"] == m and r["task"] == "redundancy" and r["probe"] == "linear"
                   and r["representation"] == "fused")
        assert row["verdict"] == v["R"].verdict and float(row["line"]) == pytest.approx(v["R"].threshold, abs=1e-4)
        assert float(row["low"]) == pytest.approx(v["R"].low, abs=1e-4)
        assert float(row["high"]) == pytest.approx(v["R"].high, abs=1e-4) and v["R"].low <= v["R"].high
    assert all(r["verdict"] == "" and r["line"] == "" for r in rows if r["method"].endswith("@init"))
    # R and U from unbiased trainings, S from synergy trainings
    assert result["notes"]["comm"].startswith("R, U from unbiased")
    assert set(result["verdicts"]["cross"]) == {"R", "U", "U2", "S"}
    # one seed still has an interval (its test pairs'), and no "over 1 seeds"
    cells = next(x for x in md.splitlines() if x.startswith("| CoMM |")).split("|")[2:6]
    assert all("±" in c for c in cells if c.strip() != "–"), cells
    assert "1 seeds" not in md
    assert "one seed" in md


def test_report__html_page_holds_the_report_with_its_figures_inline(probed_runs, tmp_path):
    """report.html opens alone in a browser: parsed here (no headless browser on CI)."""
    from html.parser import HTMLParser

    root, _ = probed_runs
    write_report(find_runs([root]), tmp_path / "rep", title="my report")

    class Page(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags, self.images, self.headers, self.cells, self.title = [], [], [], [], ""
            self._in = None

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)
            self._in = tag
            if tag == "img":
                self.images.append(dict(attrs)["src"])

        def handle_endtag(self, tag):
            self._in = None

        def handle_data(self, data):
            if self._in == "th":
                self.headers.append(data.strip())
            elif self._in == "td":
                self.cells.append(data.strip())
            elif self._in == "title":
                self.title += data

    page = Page()
    page.feed((tmp_path / "rep" / "report.html").read_text())
    assert page.title == "my report" and page.tags[0] == "html" and "script" in page.tags
    assert len(page.images) == 2 and all(src.startswith("data:image/png;base64,") for src in page.images)
    assert "verdict S fused" in page.headers and "CoMM" in page.cells and "Cross" in page.cells
    assert page.tags.count("table") >= 3  # the verdicts, synergy by representation, bits
    # every verdict cell coloured by its class; tables wrap (no nowrap) and shrink under 760 px
    html_text = (tmp_path / "rep" / "report.html").read_text()
    verdict_cells = [c for c in page.cells if c in ("captured", "not captured", "inconclusive")]
    assert verdict_cells and html_text.count('<td class="') == len(verdict_cells)
    assert "nowrap" not in html_text and "@media (max-width: 760px)" in html_text
    assert 'th[aria-sort="ascending"]::after' in html_text  # the sort indicator


def test_probe_run__errors(tmp_path, tiny_dataset):
    with pytest.raises(ProbeError, match="not a training run"):
        probe_run(tmp_path)


def test_probe_run__restricts_tasks_and_representations(probed_runs):
    _, runs = probed_runs
    rows = probe_run(runs[1], tasks=("synergy",), representations=("fused", "modality2"))
    assert {r["task"] for r in rows} == {"synergy"}
    assert {r["representation"] for r in rows} == {"fused", "modality2"}
    assert all(r["auroc"] is not None for r in rows)


def test_a_task_added_before_synergy_leaves_synergys_probe_numbers(tiny_dataset, tmp_path, monkeypatch):
    """The probes' generator is keyed by the task's name: 0.5 keyed it by the task's position,
    and a task added before synergy moved synergy's random-init control (53.67 -> 54.54)."""
    import comm_diag.trifeature_gen.tasks as T
    from comm_diag.comm.config import preset
    from comm_diag.comm.train import train

    run = train(preset("smoke").replace(epochs=1), tiny_dataset, tmp_path / "run")

    def synergy_rows():
        rows = probe_run(run, probes=("mlp",), tasks=("synergy",), representations=("fused",))
        return sorted((r["method"], r["balanced_accuracy"], r["bits"]) for r in rows)
    before = synergy_rows()
    tasks = dict(T.TASKS)
    first = T.Task("shape2", "R", "redundant", T._attribute("shared", 2), T._values("shared"), "unbiased",
                   reported=False)
    monkeypatch.setattr(T, "TASKS", {"shape2": first, **tasks})  # as an edit of tasks.py would: every copy
    assert synergy_rows() == before


def test_the_host_fits_in_worker_processes_give_the_same_rows(tiny_dataset):
    """scikit-learn's fits of one model spread over worker processes (``jobs``) read the same
    numbers as one after another in this process: each fit has its own generator, keyed by
    names, and fits on one core."""
    import torch

    from comm_diag.comm.config import preset
    from comm_diag.comm.methods import build_method
    from comm_diag.probes.measure.suite import probe_model

    torch.manual_seed(0)
    model = build_method(preset("smoke").replace(method="comm", image_size=tiny_dataset.spec.size)).eval()
    kwargs = dict(probes=("linear",), tasks=("redundancy", "uniqueness1", "synergy"), representations=("fused",),
                  also=(("mlp", "synergy", "fused"),), backend="sklearn")
    alone, spread = probe_model(model, tiny_dataset, jobs=1, **kwargs), probe_model(model, tiny_dataset, jobs=3,
                                                                                      **kwargs)
    assert len(alone) == 4 and alone == spread


def test_a_probe_with_fit_workers_ends_at_once_and_leaves_no_worker(probed_runs, tmp_path):
    """0.7's fit workers outlived the command by loky's 300 s idle time, holding its output
    pipes: `comm-diag probe` (which ends by os._exit when a non-daemon thread is left) released
    its caller after ~6 minutes. probe_run now shuts its workers down: a child that probes with
    2 workers and then ends as the command does closes its pipes at once."""
    import shutil
    import subprocess
    import sys

    run = tmp_path / "run"
    shutil.copytree(probed_runs[1][2], run)  # cross, unbiased
    child = ("import os, sys\n"
             "from comm_diag.probes.measure.suite import probe_run\n"
             f"rows = probe_run({str(run)!r}, tasks=('redundancy', 'synergy'), representations=('fused',), jobs=2)\n"
             "print(len(rows), flush=True)\n"
             "os._exit(0)\n")
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=150,
                          env={**os.environ, "COMM_DIAG_THREADS": "2"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["4"]  # (last epoch, init) x 2 tasks


def test_a_run_is_probed_as_one_unit_and_by_one_command_at_a_time(tmp_path, tiny_dataset):
    """#51: two `probe` commands on one run both exited 0 and one result replaced the other;
    probes.csv and probes.json were written apart, so a kill between them left a study that
    said "done already, skipped" and then failed on the missing record at every rerun."""
    from comm_diag.comm.config import TrainConfig
    from comm_diag.comm.run_folder import PROBES_BY_EPOCH, PROBES_CSV, PROBES_JSON
    from comm_diag.comm.train import train
    from comm_diag.outputs import exclusive, lock_path
    from comm_diag.probes.measure.suite import ProbeError, probe_record, probe_run

    run = train(TrainConfig(d=32, epochs=1, batch_size=64, method_settings={"proj_hidden": 64, "proj_dim": 32}),
                tiny_dataset, tmp_path / "r")
    probe_run(run, tasks=("redundancy",), representations=("fused",), every=1)
    assert probe_record(run) and probe_record(run, curve=True)
    # another command holds the run (the lock a second `probe` meets): refused, nothing written
    before = (run / PROBES_CSV).read_bytes()
    with exclusive(lock_path(run), run):
        with pytest.raises(ProbeError, match="is being written by another comm-diag process"):
            probe_run(run, tasks=("redundancy",), representations=("fused",))
    assert (run / PROBES_CSV).read_bytes() == before
    # a table the record does not vouch for is not a probed run
    (run / PROBES_CSV).write_text((run / PROBES_CSV).read_text() + "\n")
    assert not probe_record(run)
    (run / PROBES_JSON).unlink()
    assert not probe_record(run)
    # probing again without --every leaves no learning curve of another probe behind
    probe_run(run, tasks=("redundancy",), representations=("fused",))
    assert probe_record(run) and not (run / PROBES_BY_EPOCH).exists()
