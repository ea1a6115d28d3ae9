"""Studies as data, the sweep engine (plan, claim, skip/resume, executors) and study reports."""

import csv
import json

import pytest

from comm_diag.comm.config import preset
from comm_diag.probes.studies.ablation import planned_jobs, run_study
from comm_diag.probes.studies.executors import run_jobs
from comm_diag.probes.studies.registry import STUDIES, Measured, check_expectations
from comm_diag.probes.hooks import Hooks
from comm_diag.probes.studies.sweep import Variant, parse_seeds, plan
from comm_diag.probes.measure.verdict import verdict

TINY_EPOCHS = dict(preset="smoke", epochs=1)


def _data(tiny_dataset, tiny_synergy_dataset):
    return [tiny_dataset.root, tiny_synergy_dataset.root]


def test_every_study_expands_to_valid_distinct_runs(tmp_path):
    for study in STUDIES.values():
        jobs = planned_jobs(study, tmp_path, seeds=[0, 1], extra=True)
        # variants x seeds x the datasets each trains on (both for the paper's ablations, one per dose level)
        assert len(jobs) == sum(len(v.kinds) for v in study.all_variants(True)) * 2
        assert len({j.run for j in jobs}) == len(jobs)
        assert {j.kind for j in jobs} == {k for v in study.all_variants(True) for k in v.kinds}
        for v in study.all_variants(True):  # each variant's changes reach its config
            cfg = next(j.config for j in jobs if j.label == v.name)
            assert all(cfg[k] == val for k, val in v.overrides.items())


def test_plan_is_seed_major_and_validates_configs(tmp_path):
    jobs = plan(preset("smoke"), [Variant("a"), Variant("b", {"fusion": "linear"})], [3, 4], {"all": "d"}, tmp_path)
    assert [(j.label, j.seed) for j in jobs] == [("a", 3), ("b", 3), ("a", 4), ("b", 4)]
    with pytest.raises(ValueError, match="unknown fusion"):
        plan(preset("smoke"), [Variant("bad", {"fusion": "xor"})], [0], {"all": "d"}, tmp_path)
    with pytest.raises(ValueError, match="not both 0"):
        plan(preset("smoke"), [Variant("bad", {"w_full": 0.0, "w_masked": 0.0})], [0], {"all": "d"}, tmp_path)


def _measured(means: dict[str, dict[str, float]], curves=None) -> Measured:
    chance = {"R": 10.0, "U": 10.0, "S": 50.0}
    ver = {v: {k: verdict([m[k]], [chance[k]], chance[k]) for k in m} for v, m in means.items()}
    return Measured(ver, curves or {})


def test_loss_expectations_read_the_measured_table():
    paper = _measured({"full": dict(R=99, U=85, S=70), "full_only": dict(R=95, U=60, S=60),
                       "masked_only": dict(R=99, U=85, S=50)},
                      curves={"full": dict(R=90, U=70, S=65), "full_only": dict(R=70, U=40, S=55),
                              "masked_only": dict(R=95, U=80, S=50)})
    assert [ok for _, ok in check_expectations(STUDIES["loss"], paper)] == [True, True, True, True]
    wrong = _measured({"full": dict(R=99, U=12, S=52), "full_only": dict(R=95, U=60, S=60),
                       "masked_only": dict(R=99, U=85, S=70)},
                      curves={"full": dict(R=50, U=20, S=50), "full_only": dict(R=70, U=40, S=55)})
    assert [ok for _, ok in check_expectations(STUDIES["loss"], wrong)] == [True, False, False, False]
    partial = _measured({"full": dict(R=99, U=85, S=70)})
    assert check_expectations(STUDIES["fusion"], partial)[1][1] is None  # "linear" not run


def test_parse_seeds():
    assert parse_seeds("0,2") == [0, 2] and parse_seeds("1-3") == [1, 2, 3]
    for bad in ("", "a", "1,1", "-1"):
        with pytest.raises(ValueError):
            parse_seeds(bad)


@pytest.fixture(scope="module")
def fusion_study(tmp_path_factory, tiny_dataset, tiny_synergy_dataset):
    out = tmp_path_factory.mktemp("study") / "fusion"
    result = run_study("fusion", out, data=_data(tiny_dataset, tiny_synergy_dataset), **TINY_EPOCHS)
    return out, result


def test_study_runs_probes_and_reports(fusion_study):
    out, result = fusion_study
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert {r["method"] for r in rows} == {"attention", "linear", "attention@init", "linear@init"}
    # R and U come from the unbiased runs, S from the synergy runs (also per modality)
    assert {r["task"] for r in rows if r["method"] == "linear"} == {"redundancy", "uniqueness1", "uniqueness2",
                                                                    "synergy"}
    cfg = json.loads((out / "runs" / "linear-synergy-seed0" / "config.json").read_text())["train"]
    assert cfg["fusion"] == "linear" and cfg["epochs"] == 1
    report = (out / "report.md").read_text()
    assert "Expected pattern" in report and "linear fusion loses synergy" in report
    held = json.loads((out / "expectations.json").read_text())["expectations"]
    assert [e["held"] for e in held] == [ok for _, ok in result["expectations"]]
    # a smoke study compares nothing with the paper's patterns: neither "held" nor "did not hold"
    from comm_diag.probes.studies.pipeline import NOT_COMPARED

    assert held and all(e["held"] is None for e in held)
    for e in held:
        assert f"{e['text']}: **{NOT_COMPARED}**" in report
    assert "did NOT hold" not in report and "**held**" not in report
    # the rule itself still reads the verdicts: the third expectation recomputed from summary.csv
    from comm_diag.probes.measure.tasks import interactions
    from comm_diag.probes.studies.registry import STUDIES
    from comm_diag.probes.studies.study import Measured, check_expectations

    u = {r["method"]: float(r["balanced_accuracy"]) for r in rows if r["task"] == interactions()["U"]
         and r["probe"] == "linear" and r["representation"] == "fused"}
    checks = check_expectations(STUDIES["fusion"], Measured(result["verdicts"], {}, ()))
    assert checks[2][1] is (u["linear"] < u["attention"])
    assert (out / "figure4.png").stat().st_size > 1000


def test_study_rerun_skips_and_folder_is_claimed(fusion_study, tiny_dataset, tiny_synergy_dataset):
    out, _ = fusion_study
    stages = []
    from comm_diag.probes.hooks import Hooks

    run_study("fusion", out, data=_data(tiny_dataset, tiny_synergy_dataset), hooks=Hooks(on_stage=stages.append),
              **TINY_EPOCHS)
    assert sum("done already, skipped" in s for s in stages) == 4
    with pytest.raises(ValueError, match="holds another experiment"):
        run_study("loss", out, data=_data(tiny_dataset, tiny_synergy_dataset), **TINY_EPOCHS)
    with pytest.raises(ValueError, match="holds another experiment"):  # same study, other data
        run_study("fusion", out, data=[tiny_dataset.root], **TINY_EPOCHS)
    with pytest.raises(ValueError, match="out of range"):
        run_study("fusion", out, data=_data(tiny_dataset, tiny_synergy_dataset), only=7, **TINY_EPOCHS)


def test_loss_study_one_run_with_learning_curve(tmp_path, tiny_dataset):
    out = tmp_path / "loss"
    result = run_study("loss", out, data=[tiny_dataset.root], only=2, every=1, **TINY_EPOCHS)
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs == ["masked_only-seed0"]  # run 2 of the list: one dataset, so one run per variant
    by_epoch = list(csv.DictReader(open(out / "runs" / runs[0] / "probes_by_epoch.csv")))
    assert {r["epoch"] for r in by_epoch} == {"0", "1"}
    assert (out / "learning_curves.png").is_file()
    held = dict(result["expectations"])
    assert held["full loss: R, U and S are all captured"] is None  # "full" was not run


def test_two_worker_processes_and_two_runs_trained_together_match_one_at_a_time(tmp_path, tiny_dataset,
                                                                                   monkeypatch):
    jobs1, jobs2, jobs3 = (plan(preset("smoke").replace(epochs=1), [Variant("a"), Variant("b", {"fusion": "linear"})],
                                [0], {"all": str(tiny_dataset.root)}, tmp_path / name)
                           for name in ("one", "two", "together"))
    monkeypatch.setenv("COMM_DIAG_THREADS", "1")  # what each of 2 workers gets on 2 cores: same arithmetic
    run_jobs(jobs1, workers=1)
    stages, steps = [], {}
    hooks = Hooks(on_stage=stages.append, on_job_step=lambda name, info: steps.setdefault(name, []).append(info))
    run_jobs(jobs2, hooks, workers=2)
    # the workers' progress reaches the parent: each run's stages, and its steps up to the last
    for job in jobs2:
        assert f"{job.name}: training {job.label}" in stages and f"{job.name}: probing" in stages
        assert steps[job.name][-1].global_step == steps[job.name][-1].steps_per_epoch == 4
    for j1, j2 in zip(jobs1, jobs2):
        l1 = [r["loss"] for r in csv.DictReader(open(f"{j1.run}/log.csv"))]
        l2 = [r["loss"] for r in csv.DictReader(open(f"{j2.run}/log.csv"))]
        assert len(l1) == 4 and l1 == l2
        assert open(f"{j1.run}/probes.csv").read() == open(f"{j2.run}/probes.csv").read()
    # one process training both runs (comm.together; in turn on CPU), then probing each
    stages = []
    run_jobs(jobs3, Hooks(on_stage=stages.append), workers=1, together=2)
    assert stages.index("2 runs train together in this process") < stages.index(f"{jobs3[0].name}: probing")
    for j1, j3 in zip(jobs1, jobs3):
        assert open(f"{j1.run}/log.csv").read().count("\n") == open(f"{j3.run}/log.csv").read().count("\n")
        assert [r["loss"] for r in csv.DictReader(open(f"{j1.run}/log.csv"))] == \
            [r["loss"] for r in csv.DictReader(open(f"{j3.run}/log.csv"))]
        assert open(f"{j1.run}/probes.csv").read() == open(f"{j3.run}/probes.csv").read()


def test_ray_executor_runs_a_two_run_study(tmp_path, tiny_dataset, monkeypatch):
    pytest.importorskip("ray")
    jobs = plan(preset("smoke").replace(epochs=1), [Variant("a"), Variant("b", {"fusion": "linear"})], [0],
                {"all": str(tiny_dataset.root)}, tmp_path / "ray")
    local = plan(preset("smoke").replace(epochs=1), [Variant("a"), Variant("b", {"fusion": "linear"})], [0],
                 {"all": str(tiny_dataset.root)}, tmp_path / "local")
    run_jobs(jobs, executor="ray", cpus_per_run=1)  # each task: 1 CPU, so 1 torch thread
    monkeypatch.setenv("COMM_DIAG_THREADS", "1")
    run_jobs(local, executor="local")
    for jr, jl in zip(jobs, local):
        assert open(f"{jr.run}/probes.csv").read() == open(f"{jl.run}/probes.csv").read()


def test_unknown_executor():
    with pytest.raises(ValueError, match="unknown executor"):
        run_jobs([], executor="slurm")


def test_ray_executor_without_ray_says_how_to_install(monkeypatch, tmp_path, tiny_dataset):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets where Ray is not installed
    jobs = plan(preset("smoke"), [Variant("a")], [0], {"all": str(tiny_dataset.root)}, tmp_path)
    with pytest.raises(ValueError, match=r"pip install -e '\.\[ray\]'"):
        run_jobs(jobs, executor="ray")
