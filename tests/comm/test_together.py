"""Several trainings in one process (comm.together): the GPU's interleaved schedule, run on
CPU, gives every run the weights and log it gets trained alone."""

import csv

import pytest
import torch

from comm_diag.comm.config import TrainConfig
from comm_diag.comm.run_folder import TrainingError, load_run
from comm_diag.comm.together import TrainJob, train_together
from comm_diag.comm.train import train

TINY_CFG = dict(d=32, batch_size=64, epochs=2)
HEADS = dict(proj_hidden=32, proj_dim=16)  # CoMM's and InfMasking's own settings


def _cfg(method, **kw):
    return TrainConfig().replace(method=method, **TINY_CFG, **(HEADS if method != "cross" else {}), **kw)


def _weights(run):
    return load_run(run)[0].state_dict()


def _losses(run):
    return [r["loss"] for r in csv.DictReader(open(run / "log.csv"))]


def test_runs_interleaved_step_by_step_have_the_weights_of_each_run_trained_alone(tmp_path, tiny_dataset):
    # InfMasking draws its masks from the process-wide generator: interleaving without giving
    # each run its own state of it would change its weights
    cfgs = [_cfg("comm"), _cfg("infmasking", seed=1), _cfg("cross", seed=2)]
    order = []
    jobs = [TrainJob(c, tiny_dataset, tmp_path / "together" / c.method,
                     on_step=lambda info, m=c.method: order.append(m)) for c in cfgs]
    runs = train_together(jobs, interleave=True)
    assert order[:3] == ["comm", "infmasking", "cross"]  # one step of each in turn, not one run after another
    for cfg, run in zip(cfgs, runs):
        alone = train(cfg, tiny_dataset, tmp_path / "alone" / cfg.method)
        a, b = _weights(alone), _weights(run)
        assert all(torch.equal(a[k], b[k]) for k in a), cfg.method
        assert _losses(alone) == _losses(run)
        assert sorted(p.name for p in (run / "checkpoints").iterdir()) == \
            ["epoch_000.pt", "epoch_001.pt", "epoch_002.pt", "last.pt"]


def test_on_cpu_the_runs_train_in_turn_and_a_resumed_one_continues(tmp_path, tiny_dataset):
    cfg_a, cfg_b = _cfg("cross"), _cfg("cross", seed=3)
    # run b stopped in its second epoch, then resumed beside a fresh run a

    def stop(info):
        if info.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg_b, tiny_dataset, tmp_path / "b", on_step=stop)
    order = []
    train_together([TrainJob(cfg_a, tiny_dataset, tmp_path / "a", on_step=lambda i: order.append("a")),
                    TrainJob(cfg_b, tiny_dataset, tmp_path / "b", resume=True,
                             on_step=lambda i: order.append("b"))])
    assert order == ["a"] * 8 + ["b"] * 4  # in turn; b redoes only its second epoch
    a, b = _weights(train(cfg_b, tiny_dataset, tmp_path / "b-alone")), _weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_failing_run_stops_the_others_which_keep_their_finished_epochs(tmp_path, tiny_dataset):
    good, bad = _cfg("cross"), _cfg("cross").replace(lr=1e30)
    with pytest.raises(TrainingError, match="loss became"):
        train_together([TrainJob(good, tiny_dataset, tmp_path / "good"),
                        TrainJob(bad, tiny_dataset, tmp_path / "bad")], interleave=True)
    assert (tmp_path / "good" / "checkpoints" / "epoch_000.pt").is_file()
    assert not (tmp_path / "good" / "checkpoints" / "epoch_002.pt").exists()  # stopped with the failing run
    # the stopped run resumes to the weights of an uninterrupted one
    train_together([TrainJob(good, tiny_dataset, tmp_path / "good", resume=True)])
    a, b = _weights(train(good, tiny_dataset, tmp_path / "alone")), _weights(tmp_path / "good")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_runs_that_cannot_share_a_process_are_refused_before_any_file(tmp_path, tiny_dataset):
    cfg = _cfg("cross")
    with pytest.raises(ValueError, match="same run folder"):
        train_together([TrainJob(cfg, tiny_dataset, tmp_path / "x"), TrainJob(cfg, tiny_dataset, tmp_path / "x")])
    with pytest.raises(ValueError, match="determinism"):
        train_together([TrainJob(cfg, tiny_dataset, tmp_path / "y"),
                        TrainJob(cfg.replace(deterministic=True), tiny_dataset, tmp_path / "z")])
    assert not any(tmp_path.iterdir())
