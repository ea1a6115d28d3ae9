"""The torch probe backend: the same objective as scikit-learn's, the same protocol, the same numbers."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

import comm_diag.trifeature_gen as tg
from comm_diag.comm.config import TrainConfig
from comm_diag.comm.methods import build_method
from comm_diag.comm.run_folder import load_run
from comm_diag.comm.train import train
from comm_diag.probes.measure import backends, logistic_fit, torch_fit
from comm_diag.probes.measure.backends import SklearnBackend, TorchBackend, backend_for
from comm_diag.probes.measure.classifiers import PROBES, probe_row
from comm_diag.probes.measure.host_fit import CONVERGED
from comm_diag.probes.measure.features import extract
from comm_diag.probes.measure.suite import probe_run
from comm_diag.probes.measure.tasks import task_labels

TASKS = ("redundancy", "uniqueness1", "uniqueness2", "synergy")
REPRESENTATIONS = ("fused", "modality1", "modality2")


@pytest.fixture(scope="module")
def trained_features(tmp_path_factory):
    """Every representation of a CoMM trained 2 epochs on a synergy dataset (32 px, 512
    training pairs), on 2,000 probe and 1,000 test pairs: what a probe meets after training."""
    tmp = tmp_path_factory.mktemp("agreement")
    ds = tg.load(tg.generate(tg.DatasetSpec(size=32, train_pairs=512, probe_pairs=2000, test_pairs=1000, synergy=True),
                             tmp / "d"))
    # fp32 on every CPU: the features (not only the probes) are then the same on every machine
    run = train(TrainConfig(d=64, epochs=2, batch_size=64, image_size=32, seed=0, precision="fp32"), ds.root, tmp / "r")
    model, _ = load_run(run)
    # float64: scikit-learn fits float32 features in float32 arithmetic, which is not the
    # converged reference on every CPU (its optimum moves with the machine's rounding)
    as64 = lambda split: {k: v.astype(np.float64) for k, v in extract(model, ds, split).items()}  # noqa: E731
    return as64("probe_train"), as64("test"), task_labels(ds, "probe_train"), task_labels(ds, "test")


def _sklearn_optimum(x, y, c):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return LogisticRegression(C=c, class_weight="balanced", max_iter=5000, tol=1e-8).fit(x, y)


@pytest.mark.parametrize("n_classes", [2, 5])
def test_the_objective_is_scikit_learns(n_classes):
    """scikit-learn's own optimum is a stationary point of ``logistic_objective`` (binary: one
    logit, multinomial: one per class), and torch's fit reaches the same weights."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 8))
    y = (x[:, :3] @ rng.normal(size=(3, n_classes))).argmax(1) if n_classes > 2 else (x[:, 0] + x[:, 1] > 0.3)
    y = np.where(rng.random(600) < 0.15, rng.integers(0, n_classes, 600), y).astype(int)  # label noise: finite weights
    sk = _sklearn_optimum(x, y, 1.0)
    w = torch.tensor(sk.coef_.T[None], requires_grad=True)  # (1, D, Q)
    b = torch.tensor(sk.intercept_[None], requires_grad=True)  # (1, Q)
    xt, yt = torch.tensor(x), torch.tensor(y)
    loss = logistic_fit.logistic_objective(w, b, xt, yt, logistic_fit.class_weights(yt, n_classes), torch.tensor([1.0]))
    loss.backward()
    assert w.grad.abs().max() < 1e-5 and b.grad.abs().max() < 1e-5
    tw, tb = logistic_fit.fit_logistic(xt.float(), yt, n_classes, [1.0])
    assert np.allclose(tw[0].numpy(), sk.coef_.T, atol=2e-3) and np.allclose(tb[0].numpy(), sk.intercept_, atol=2e-3)


def test_a_c_grid_fitted_at_once_equals_one_fit_per_c():
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.normal(size=(500, 16)), dtype=torch.float32)
    y = torch.tensor(rng.integers(0, 4, 500)) + (x[:, 0] > 0).long()
    w, b = logistic_fit.fit_logistic(x, y, 5, [0.1, 1.0, 10.0])
    for k, c in enumerate((0.1, 1.0, 10.0)):
        wk, bk = logistic_fit.fit_logistic(x, y, 5, [c])
        assert torch.allclose(w[k], wk[0], atol=2e-3) and torch.allclose(b[k], bk[0], atol=2e-3)


def test_problems_of_other_sizes_solved_as_one_batch_reach_each_ones_own_optimum(monkeypatch):
    """Padding (samples of weight 0, features of value 0) leaves every problem's optimum where
    it is alone, and each problem keeps its own class weights."""
    rng = np.random.default_rng(2)
    problems = []
    for n, d, m in ((300, 5, 4), (240, 9, 4), (280, 7, 4)):
        x = torch.tensor(rng.normal(size=(n, d)))
        y = torch.tensor(np.where(rng.random(n) < 0.2, rng.integers(0, m, n), (x[:, :2].numpy() @ rng.normal(size=(2, m))).argmax(1)))
        problems.append(logistic_fit.LogisticProblem(x, y, m, (0.1, 1.0)))
    # to 1e-12 (not the stated 1e-8): padding changes the order of sums, so only a tight optimum
    # is the same to 1e-7 whatever the CPU's rounding
    together = [(s.w, s.b) for s in logistic_fit.solve_logistic_many(problems, tolerance=1e-12)]
    for p, (w, b) in zip(problems, together):
        alone = logistic_fit.solve_logistic_many([p], tolerance=1e-12)[0]
        wa, ba = alone.w, alone.b
        assert w.shape == wa.shape == (2, p.x.shape[1], 4)
        # a softmax's biases are defined up to one shift of all classes (unpenalised): compared centred
        centred = (b - b.mean(-1, keepdim=True), ba - ba.mean(-1, keepdim=True))
        assert torch.allclose(w, wa, atol=1e-7) and torch.allclose(*centred, atol=1e-7)
    # the backend batches problems of one shape up to its memory budget (bytes), the rest alone
    binary = logistic_fit.LogisticProblem(problems[0].x, problems[0].y % 2, 2, (0.1, 1.0))
    assert TorchBackend()._batches([*problems, binary]) == [[0, 1, 2], [3]]
    size = logistic_fit.batch_bytes(300, 9, 4, 2)  # a problem at the batch's largest N and D, two Cs
    monkeypatch.setattr(backends, "MEMORY_BUDGET_CPU", 2 * size)
    assert TorchBackend()._batches([*problems, binary]) == [[0, 1], [2], [3]]
    with pytest.raises(ValueError, match="share"):
        logistic_fit.fit_logistic_many([problems[0], logistic_fit.LogisticProblem(problems[0].x, problems[0].y % 2, 2, (1.0, 2.0))])


def test_a_models_probes_batched_on_the_torch_backend_equal_its_probes_fitted_one_by_one(tiny_dataset):
    """probe_model with the torch backend answers the logistic fits of every task x
    representation (and the MLP probe's) in batches; the rows are those of each probe fitted
    alone."""
    from comm_diag.probes.measure import suite

    torch.manual_seed(0)
    model = build_method(TrainConfig(d=32))
    also = (("mlp", "synergy", "fused"),)
    batched = suite.probe_model(model, tiny_dataset, backend="torch", also=also)
    train_f, test_f = extract(model, tiny_dataset, "probe_train"), extract(model, tiny_dataset, "test")
    train_y, test_y = task_labels(tiny_dataset, "probe_train"), task_labels(tiny_dataset, "test")
    alone = [probe_row(r["probe"], r["task"], r["representation"], 0, (train_f[r["representation"]],
                                                                       test_f[r["representation"]]),
                       (train_y[r["task"]], test_y[r["task"]]), None, TorchBackend()) for r in batched]
    assert len(batched) == len(alone) == 4 * 3 + 1  # four tasks x three representations, and the MLP
    for a, b in zip(batched, alone):
        assert (a["task"], a["probe"], a["representation"]) == (b["task"], b["probe"], b["representation"])
        assert a["balanced_accuracy"] == pytest.approx(b["balanced_accuracy"], abs=1e-9)
        assert a["bits"] == pytest.approx(b["bits"], abs=1e-6)


@pytest.mark.parametrize("representation", REPRESENTATIONS)
@pytest.mark.parametrize("task", TASKS)
def test_the_torch_linear_probe_equals_scikit_learns_at_convergence(trained_features, task, representation):
    """Same features of a trained run, same protocol (held-out quarter, C grid, refit): on
    every task x representation, within 0.5 points of balanced accuracy and 0.02 bits of
    scikit-learn's probe run to convergence, with the same C."""
    xtr, xte, ytr, yte = trained_features
    feats, labels = (xtr[representation], xte[representation]), (ytr[task], yte[task])
    sk, th = (PROBES["linear"](feats, labels, np.random.default_rng([0, 1]), backend=be)
              for be in (CONVERGED, TorchBackend()))
    assert abs(sk["balanced_accuracy"] - th["balanced_accuracy"]) <= 0.5, (task, representation, sk, th)
    assert abs(sk["bits"] - th["bits"]) <= 0.02, (task, representation, sk, th)
    assert sk["C"] == th["C"]


def test_the_torch_mlp_recovers_what_a_linear_probe_cannot():
    """A known answer: the XOR of two features' signs. The linear probe reads chance, both
    backends' MLP probes read it (and choose the MLP on the held-out quarter)."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3000, 6)).astype(np.float32)
    y = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).astype(int)
    feats, labels = (x[:2000], x[2000:]), (y[:2000], y[2000:])
    linear = PROBES["linear"](feats, labels, np.random.default_rng(0), backend=TorchBackend())
    assert linear["balanced_accuracy"] < 60
    for be in (SklearnBackend(), TorchBackend()):
        s = PROBES["mlp"](feats, labels, np.random.default_rng(0), backend=be)
        assert s["chosen"] == "mlp" and s["balanced_accuracy"] > 90, (be.name, s)


def test_the_torch_mlp_is_seeded():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(800, 5)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(int)
    runs = [PROBES["mlp"]((x[:600], x[600:]), (y[:600], y[600:]), np.random.default_rng(s), backend=TorchBackend())
            for s in (0, 0, 1)]
    assert runs[0] == runs[1]
    assert runs[0]["bits"] != runs[2]["bits"]


@pytest.mark.parametrize("early", [True, False])
def test_the_torch_mlp_returns_the_same_weights_however_often_the_host_reads_its_stopping_rule(early):
    """On a GPU the host reads the early-stopping rule every MLP_CHECK_EVERY epochs (the rule
    itself runs on the device, epoch by epoch, and freezes what it returns when it fires):
    the epochs trained past the stop change nothing returned."""
    g = torch.Generator().manual_seed(0)
    if early:  # three classes; the validation accuracy stops it after about 20 epochs
        x = torch.randn(500, 8, generator=g)
        y = (x[:, 0] * x[:, 1] > 0).long() + (x[:, 2] > 1).long()
        fit = dict(x=x[50:], y=y[50:], n_classes=3, validation=(x[:50], y[:50]))
    else:  # a noisy linear label: the training loss stops improving by 1e-4 after about 470 epochs
        x = torch.randn(200, 4, generator=g)
        fit = dict(x=x, y=((x[:, 0] + 2.0 * torch.randn(200, generator=g)) > 0).long(), n_classes=2)
    fits = {k: torch_fit.fit_mlp(**fit, hidden=16, seed=1, early_stopping=early, max_epochs=600, check_every=k)
            for k in (1, 8)}
    weights = {k: torch.cat([p.detach().flatten() for p in m.parameters()]) for k, m in fits.items()}
    assert torch.equal(weights[1], weights[8])


@pytest.mark.parametrize("classes", [2, 3])
def test_the_fused_mlp_loss_trains_the_eager_weights(classes):
    """On a GPU an MLP probe's loss (forward and backward of its thousands of small steps) is
    compiled once (``torch_fit.fused_mlp_loss``); the capture, run here with "aot_eager",
    trains the weights the eager loss trains."""
    from comm_diag.comm.runtime import compiled

    g = torch.Generator().manual_seed(2)
    x = torch.randn(330, 6, generator=g)  # 330: a last batch of 130 beside the full ones of 200
    y = (x[:, 0] > 0).long() + ((x[:, 1] > 0.5).long() if classes == 3 else 0)
    fits = [torch_fit.fit_mlp(x, y, classes, 8, seed=1, early_stopping=False, max_epochs=30, loss_fn=fn)
            for fn in (torch_fit.mlp_loss, compiled(torch_fit.mlp_loss, "aot_eager", dynamic=True))]
    for a, b in zip(*(m.parameters() for m in fits)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert torch_fit.fused_mlp_loss(torch.device("cpu")) is torch_fit.mlp_loss  # eager off a GPU


def test_auto_is_the_same_torch_solver_on_every_device():
    assert backend_for("auto", "cpu").name == "torch"
    assert backend_for("auto", "cuda").name == "torch"
    assert isinstance(backend_for("torch", "cpu"), TorchBackend)
    with pytest.raises(ValueError, match="unknown probe backend 'gpu'; choose from auto, sklearn, torch"):
        backend_for("gpu")


def test_probe_run_records_its_backend(tmp_path, tiny_dataset):
    run = train(TrainConfig(d=32, epochs=1, batch_size=64, image_size=32,
                            method_settings={"proj_hidden": 64, "proj_dim": 32}), tiny_dataset, tmp_path / "r")
    rows = probe_run(run, backend="torch", tasks=("redundancy",))
    assert json.loads((run / "probes.json").read_text())["backend"] == "torch"
    assert probe_run(run, backend="torch", tasks=("redundancy",)) == rows  # seeded: the same fits again
    probe_run(run, backend="sklearn", tasks=("redundancy",))
    assert json.loads((run / "probes.json").read_text())["backend"] == "sklearn"


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_the_torch_backend_fits_where_its_device_is(device):
    """Every fit of the torch backend on every device at hand (CUDA when present): the MLP's
    parameters and the generator that draws them live on the features' device (0.4.0 built
    them on the CPU and drew with a CUDA generator, so every GPU probe crashed), and the
    logistic fits reach a float64 stationary point there."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(400, 6))
    y = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).astype(int) + 2 * (x[:, 2] > 0.5)  # 4 classes
    be = TorchBackend(torch.device(device))
    gen = torch.Generator(device=device).manual_seed(0)
    mlp = torch_fit.MLP(6, 8, 4, gen)
    assert {p.device.type for p in mlp.parameters()} == {torch.device(device).type}
    fitted = be.mlp(x.astype(np.float32), y, 16, seed=0)
    assert fitted.predict_proba(x).shape == (400, 4)
    w, b = logistic_fit.fit_logistic(torch.tensor(x, device=device), torch.tensor(y, device=device), 4, [0.1, 1.0])
    assert w.device.type == torch.device(device).type and w.dtype == torch.float64
    w, b = w.requires_grad_(), b.requires_grad_()
    xt, yt = torch.tensor(x, device=device), torch.tensor(y, device=device)
    logistic_fit.logistic_objective(w, b, xt, yt, logistic_fit.class_weights(yt, 4),
                                 torch.tensor([0.1, 1.0], dtype=torch.float64, device=device)).backward()
    assert w.grad.abs().max() < 1e-8 and b.grad.abs().max() < 1e-8


def test_a_run_trained_on_a_gpu_is_probed_on_a_machine_without_one(tmp_path, tiny_dataset, monkeypatch):
    """``probe`` loads a run where its config says it trained; a run of ``--device cuda``
    received on a machine without CUDA is read on the CPU, not refused."""
    from comm_diag.comm.runtime import runtime_for

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime_for({"device": "cuda"}).device.type == "cpu"
    run = train(TrainConfig(d=32, epochs=1, batch_size=64, image_size=32, device="cpu",
                            method_settings={"proj_hidden": 64, "proj_dim": 32}), tiny_dataset, tmp_path / "r")
    meta = json.loads((run / "config.json").read_text())
    meta["train"]["device"] = "cuda"  # as written by a GPU run (the device is outside the run's identity)
    (run / "config.json").write_text(json.dumps(meta))
    rows = probe_run(run, tasks=("redundancy",))
    record = json.loads((run / "probes.json").read_text())
    assert rows and record["backend"] == "torch" and record["config"]["train"]["device"] == "cuda"


@pytest.mark.parametrize("representation", REPRESENTATIONS)
def test_every_fit_on_trained_features_meets_the_stopping_rule_well_before_its_cap(trained_features, representation):
    """0.8's damped Newton ran 2 of 40 binary problems of a trained run to its 200-step cap, one
    ulp above its tolerance; every fit of both backends now meets the stated optimum, and the
    torch solver does so in a few Newton steps."""
    from comm_diag.probes.measure.optimum import TOLERANCE

    xtr, xte, ytr, yte = trained_features
    for task in TASKS:
        feats, labels = (xtr[representation], xte[representation]), (ytr[task], yte[task])
        for be in (TorchBackend(), CONVERGED):
            s = PROBES["linear"](feats, labels, np.random.default_rng([0, 1]), backend=be)
            assert s["converged"] and len(s["fits"]) == 4, (task, be.name, s["fits"])  # 3 Cs, then the refit
            assert all(f["gradient"] <= TOLERANCE for f in s["fits"])
            if be.name == "torch":
                assert max(f["iterations"] for f in s["fits"]) <= 30, s["fits"]
                assert s["fits"][-1]["iterations"] <= s["fits"][0]["iterations"]  # the refit starts warm


def test_steps_within_float64_rounding_are_taken_so_a_fit_never_stalls_at_the_tolerance(trained_features):
    """From the optimum itself, asked for a gradient 1e4 times smaller than the stated one, the
    solver takes steps whose objective changes only within rounding (0.8 rejected them all and
    ran to its cap) and gets there in a few."""
    xtr, _, ytr, _ = trained_features
    x = torch.tensor(xtr["fused"])
    for task in ("redundancy", "synergy"):
        y = torch.tensor(ytr[task])
        m = int(y.max()) + 1
        first = logistic_fit.solve_logistic_many([logistic_fit.LogisticProblem(x, y, m, (10.0,))])[0]
        again = logistic_fit.solve_logistic_many([logistic_fit.LogisticProblem(x, y, m, (10.0,),
                                                                               init=(first.w, first.b))],
                                                 tolerance=1e-12)[0]
        assert first.converged == [True] and again.converged == [True], (task, again.gradient)
        assert again.iterations[0] <= 8 and torch.allclose(again.w, first.w, atol=1e-6)


def test_a_warm_started_refit_reaches_the_same_optimum_as_a_cold_one():
    rng = np.random.default_rng(5)
    x = torch.tensor(rng.normal(size=(800, 12)))
    y = torch.tensor(np.where(rng.random(800) < 0.2, rng.integers(0, 5, 800), (x[:, :3].numpy() @ rng.normal(size=(3, 5))).argmax(1)))
    centred = lambda b: b - b.mean(-1, keepdim=True)  # noqa: E731 (a softmax's biases: up to one shift)
    subset = logistic_fit.solve_logistic_many([logistic_fit.LogisticProblem(x[:300], y[:300], 5, (1.0,))])[0]
    steps = {}
    for tolerance in (logistic_fit.TOLERANCE, 1e-12):  # 1e-12: weights within 1e-7 whatever the CPU's rounding
        cold, warm = (logistic_fit.solve_logistic_many([logistic_fit.LogisticProblem(x, y, 5, (1.0,), init=init)],
                                                       tolerance=tolerance)[0]
                      for init in (None, (subset.w, subset.b)))
        assert cold.converged == warm.converged == [True]
        steps[tolerance] = (cold.iterations[0], warm.iterations[0])
    assert torch.allclose(cold.w, warm.w, atol=1e-7) and torch.allclose(centred(cold.b), centred(warm.b), atol=1e-7)
    assert steps[logistic_fit.TOLERANCE][1] < steps[logistic_fit.TOLERANCE][0]  # at the stated rule, fewer steps


def test_probes_json_records_every_fit_and_probes_csv_its_convergence(tmp_path, tiny_dataset):
    run = train(TrainConfig(d=32, epochs=1, batch_size=64, image_size=32,
                            method_settings={"proj_hidden": 64, "proj_dim": 32}), tiny_dataset, tmp_path / "r")
    probe_run(run, tasks=("redundancy", "synergy"))
    record = json.loads((run / "probes.json").read_text())
    fits = [f for r in record["rows"] for f in r["fits"]]
    assert fits and all(set(f) == {"solver", "C", "iterations", "gradient", "converged"} for f in fits)
    assert all(r["converged"] is True for r in record["rows"])
    text = (run / "probes.csv").read_text().splitlines()
    assert "ba_se" in text[0] and "converged" in text[0] and all(line.endswith(",True") for line in text[1:])


def test_both_preconditioners_reach_the_same_optimum(monkeypatch):
    """The block-Jacobi and the Kronecker preconditioner change how the solver gets there, not
    where: the same weights on a 10-class problem, each fit meeting the stopping rule."""
    rng = np.random.default_rng(7)
    x = torch.tensor(rng.normal(size=(600, 20)))
    y = torch.tensor(np.where(rng.random(600) < 0.2, rng.integers(0, 10, 600), (x[:, :4].numpy() @ rng.normal(size=(4, 10))).argmax(1)))
    problem = logistic_fit.LogisticProblem(x, y, 10, (0.1, 10.0))
    # to 1e-12 (not the stated 1e-8): weights within 1e-6 of each other whatever the CPU's rounding
    blocks = logistic_fit.solve_logistic_many([problem], tolerance=1e-12)[0]
    monkeypatch.setattr(logistic_fit, "BLOCK_JACOBI_MAX", 0)
    kronecker = logistic_fit.solve_logistic_many([problem], tolerance=1e-12)[0]
    assert blocks.converged == kronecker.converged == [True, True]
    assert torch.allclose(blocks.w, kronecker.w, atol=1e-6)


def test_reading_the_cg_rule_less_often_as_on_a_gpu_gives_the_same_fit(monkeypatch):
    """On a GPU the host reads whether any CG iteration still runs every CG_CHECK_EVERY
    iterations; the iterations past the last change nothing (provoked here on CPU)."""
    rng = np.random.default_rng(8)
    x = torch.tensor(rng.normal(size=(500, 12)))
    y = torch.tensor(np.where(rng.random(500) < 0.2, rng.integers(0, 6, 500), (x[:, :3].numpy() @ rng.normal(size=(3, 6))).argmax(1)))
    problem = logistic_fit.LogisticProblem(x, y, 6, (0.1, 10.0))
    every = logistic_fit.solve_logistic_many([problem])[0]
    monkeypatch.setattr(logistic_fit, "cg_check_interval", lambda device: 4)
    sparse = logistic_fit.solve_logistic_many([problem])[0]
    assert torch.equal(every.w, sparse.w) and torch.equal(every.b, sparse.b) and every.iterations == sparse.iterations
