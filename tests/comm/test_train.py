import csv
import json

import pytest
import torch

from comm_diag.comm.config import TrainConfig, preset
from comm_diag.comm.run_folder import TrainingError, load_run, same_config
from comm_diag.comm.runtime import native_bf16_cpu, resolve_precision
from comm_diag.comm.optim import lr_at
from comm_diag.comm.train import train

TINY_CFG = dict(d=32, proj_hidden=32, proj_dim=16, batch_size=64, epochs=2)


def _weights(run):
    return load_run(run)[0].state_dict()


def test_train__writes_config_log_and_checkpoints(tmp_path, tiny_dataset):
    run = train(TrainConfig().replace(**TINY_CFG), tiny_dataset, tmp_path / "run")
    meta = json.loads((run / "config.json").read_text())
    assert meta["train"]["epochs"] == 2 and len(meta["data"]["fingerprint"]) == 64
    assert meta["train"]["image_size"] == tiny_dataset.spec.size == 32  # read from the data, not the config's 64
    rows = list(csv.DictReader(open(run / "log.csv")))
    assert len(rows) == 2 * (256 // 64) and {"full", "masked_1", "masked_2", "loss", "lr"} <= set(rows[0])
    assert {p.name for p in (run / "checkpoints").iterdir()} == {"epoch_000.pt", "epoch_001.pt", "epoch_002.pt",
                                                                   "last.pt"}


def test_train__loss_falls(tmp_path, tiny_dataset):
    run = train(TrainConfig().replace(**{**TINY_CFG, "epochs": 6, "lr": 3e-3}), tiny_dataset, tmp_path / "run")
    loss = [float(r["loss"]) for r in csv.DictReader(open(run / "log.csv"))]
    assert sum(loss[-4:]) < sum(loss[:4])


def test_train__interrupted_then_resumed_equals_uninterrupted(tmp_path, tiny_dataset):
    cfg = TrainConfig().replace(**TINY_CFG)
    full = train(cfg, tiny_dataset, tmp_path / "full")

    def interrupt(info):
        if info.epoch == 2 and info.step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, tiny_dataset, tmp_path / "cut", on_step=interrupt)
    resumed = train(cfg, tiny_dataset, tmp_path / "cut", resume=True)
    a, b = _weights(full), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert len(list(csv.DictReader(open(resumed / "log.csv")))) == 8  # no duplicated steps


def test_train__nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, tiny_dataset):
    with pytest.raises(TrainingError, match="loss became"):
        train(TrainConfig().replace(**{**TINY_CFG, "lr": 1e30}), tiny_dataset, tmp_path / "run")
    assert (tmp_path / "run" / "checkpoints" / "epoch_000.pt").is_file()


def test_train__resume_errors(tmp_path, tiny_dataset):
    with pytest.raises(TrainingError, match="no checkpoint"):
        train(TrainConfig().replace(**TINY_CFG), tiny_dataset, tmp_path / "none", resume=True)
    train(TrainConfig().replace(**{**TINY_CFG, "epochs": 1}), tiny_dataset, tmp_path / "run")
    with pytest.raises(TrainingError, match="other settings \(lr: 0.001 there, 0.5 now\)"):
        train(TrainConfig().replace(**{**TINY_CFG, "epochs": 1, "lr": 0.5}), tiny_dataset, tmp_path / "run", resume=True)
    with pytest.raises(TrainingError, match="already holds a run"):
        train(TrainConfig().replace(**TINY_CFG), tiny_dataset, tmp_path / "run")


def test_train__bad_sizes_and_choices(tmp_path, tiny_dataset):
    with pytest.raises(ValueError, match="image_size is not a setting: it is read from the dataset"):
        TrainConfig.parse_settings(["image_size=64"])
    with pytest.raises(ValueError, match="larger than the 256 training pairs"):
        train(TrainConfig().replace(**{**TINY_CFG, "batch_size": 1000}), tiny_dataset, tmp_path / "b")
    with pytest.raises(ValueError, match="choose from comm, cross, cross_self, infmasking, simclr"):
        train(TrainConfig().replace(**{**TINY_CFG, "method": "byol"}), tiny_dataset, tmp_path / "c")


def test_precision__bf16_and_fp32_train_and_are_recorded(tmp_path, tiny_dataset, monkeypatch):
    cfg = TrainConfig().replace(**{**TINY_CFG, "epochs": 1})
    logs = {}
    for precision in ("bf16", "fp32"):
        run = train(cfg.replace(precision=precision), tiny_dataset, tmp_path / precision)
        assert json.loads((run / "config.json").read_text())["precision_used"] == precision
        logs[precision] = [float(r["loss"]) for r in csv.DictReader(open(run / "log.csv"))]
        assert all(torch.isfinite(torch.tensor(logs[precision])))
    assert logs["bf16"] != logs["fp32"]  # the autocast reached the forward
    assert resolve_precision("auto", torch.device("cpu")) == ("bf16" if native_bf16_cpu() else "fp32")
    # a GPU computes bf16 natively from compute capability 8.0 (Ampere); older ones emulate it
    for capability, expected in (((7, 0), "fp32"), ((8, 0), "bf16"), ((9, 0), "bf16")):
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None, c=capability: c)
        assert resolve_precision("auto", torch.device("cuda")) == expected
    with pytest.raises(ValueError, match="unknown precision 'fp16'; choose from auto, bf16, fp32"):
        TrainConfig(precision="fp16").validate()


def test_same_config__a_setting_missing_from_an_older_run_takes_its_default():
    old = {k: v for k, v in TrainConfig().to_dict().items() if k != "precision"}
    assert same_config(old, TrainConfig().to_dict())
    assert not same_config(old, TrainConfig(precision="fp32").to_dict())
    assert same_config(TrainConfig(device="cpu").to_dict(), TrainConfig(device="cuda").to_dict())


def test_lr_schedule__warmup_then_cosine_to_zero():
    cfg = TrainConfig(lr=1.0, epochs=10, warmup_epochs=1)
    lrs = [lr_at(cfg, s, 10) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[50] < lrs[20] and lrs[-1] < 0.01


def test_lr_schedule__constant_after_warmup():
    cfg = TrainConfig(lr=0.3, epochs=10, warmup_epochs=0, schedule="constant")
    assert {lr_at(cfg, s, 10) for s in range(100)} == {0.3}


def test_param_groups__authors_choice_exempts_biases_and_norms_from_decay():
    from comm_diag.comm.methods import build_method
    from comm_diag.comm.optim import param_groups

    cfg = TrainConfig().replace(**{k: v for k, v in TINY_CFG.items() if k != "epochs"})
    model = build_method(cfg)
    assert len(param_groups(model, cfg)) == 1
    decayed, exempt = param_groups(model, cfg.replace(decay_norms_and_biases=False))
    assert exempt["weight_decay"] == 0.0 and all(p.ndim <= 1 for p in exempt["params"])
    assert all(p.ndim > 1 for p in decayed["params"])
    assert len(decayed["params"]) + len(exempt["params"]) == len(list(model.parameters()))
    assert not any(p is model.fusion.cls for p in exempt["params"])  # the [CLS] token (1x1xd) is a weight


def test_augmenters__config_overrides_method_defaults():
    from comm_diag.comm.methods import build_method
    from comm_diag.comm.train import augmenters

    # None (the paper preset's): the method's own augmentation
    cfg = preset("paper").replace(method="comm", **{k: v for k, v in TINY_CFG.items() if k != "epochs"},
                                  image_size=32)
    model = build_method(cfg)
    assert [a.policy for a in augmenters(model, cfg)] == ["all", "all"]
    assert augmenters(model, cfg)[0].crop_scale == (0.08, 1.0)
    custom = augmenters(model, cfg.replace(aug1="none", aug2="crop", crop_min=0.3))
    assert [a.policy for a in custom] == ["none", "crop"] and custom[1].crop_scale == (0.3, 1.0)
    assert [(a.policy, a.crop_scale) for a in augmenters(model, TrainConfig())] == [("crop", (0.5, 1.0))] * 2
    with pytest.raises(ValueError, match="crop-min"):
        cfg.replace(crop_min=1.5).validate()


# what 0.2 wrote as config.json's "train": every method's settings at the top level
CONFIG_0_2 = {"method": "cross", "encoder": "alexnet_bn", "width": 0.25, "fusion": "transformer", "d": 128, "heads": 8,
              "proj_hidden": 512, "proj_dim": 256, "temperature": 0.1, "w_full": 1.0, "w_masked": 1.0,
              "nce": "cross_view", "terms": "sum", "mask_ratio": 0.5, "n_masks": 5, "mask_lambda": 1.0,
              "cross_term": "clip", "aug1": "crop", "aug2": "crop", "crop_min": 0.5, "epochs": 6, "batch_size": 64,
              "lr": 0.001, "weight_decay": 0.0001, "warmup_epochs": 0.5, "schedule": "cosine",
              "decay_norms_and_biases": True, "seed": 0, "device": "auto", "precision": "auto", "image_size": 64,
              "preset": "cpu"}


def test_a_0_2_config_is_the_same_run_as_its_resolved_form():
    from comm_diag.comm.methods import resolve

    now = resolve(preset("cpu").replace(method="cross")).to_dict()
    assert "fusion" not in now and same_config(CONFIG_0_2, now)  # Cross declares none of those settings
    assert not same_config({**CONFIG_0_2, "lr": 0.01}, now)
    comm = resolve(preset("cpu")).to_dict()
    assert same_config({**CONFIG_0_2, "method": "comm"}, comm)
    assert not same_config({**CONFIG_0_2, "method": "comm", "heads": 4}, comm)


def _strip_identity(run):
    """The run as 0.3 wrote it: no run_id in config.json or in any checkpoint."""
    meta = json.loads((run / "config.json").read_text())
    meta.pop("run_id")
    (run / "config.json").write_text(json.dumps(meta))
    for p in (run / "checkpoints").glob("*.pt"):
        state = torch.load(p, weights_only=True)
        state.pop("run")
        if "config" in state:
            state["config"].pop("run_id")
        torch.save(state, p)


def test_train__resumes_from_the_initialisation_and_a_0_3_run_without_identity(tmp_path, tiny_dataset):
    cfg = TrainConfig().replace(**TINY_CFG)
    full = train(cfg, tiny_dataset, tmp_path / "full")

    def interrupt_in(epoch):
        def on_step(info):
            if info.epoch == epoch and info.step == 2:
                raise KeyboardInterrupt
        return on_step

    for name, epoch in (("init", 1), ("legacy", 2)):
        with pytest.raises(KeyboardInterrupt):
            train(cfg, tiny_dataset, tmp_path / name, on_step=interrupt_in(epoch))
    assert not (tmp_path / "init" / "checkpoints" / "last.pt").exists()  # killed before its first epoch ended
    _strip_identity(tmp_path / "legacy")
    for name in ("init", "legacy"):
        train(cfg, tiny_dataset, tmp_path / name, resume=True)
        for k, v in _weights(full).items():
            assert torch.equal(v, _weights(tmp_path / name)[k]), (name, k)
    assert "run_id" not in json.loads((tmp_path / "legacy" / "config.json").read_text())  # stays a 0.3 run
    assert load_run(tmp_path / "legacy", epoch=1)[1]["epoch"] == 1  # its old checkpoints still load


def test_train__reading_the_loss_back_every_k_steps_changes_no_weight_and_no_log_value(tmp_path, tiny_dataset):
    # what a GPU run does (no host sync per step), checked on CPU: same weights, same log but
    # for the timing column, and a non-finite loss is still named at its own step
    cfg = TrainConfig().replace(**TINY_CFG)
    every_step = train(cfg, tiny_dataset, tmp_path / "a")
    batched = train(cfg, tiny_dataset, tmp_path / "b", sync_every=3)
    for k, v in _weights(every_step).items():
        assert torch.equal(v, _weights(batched)[k]), k
    rows = [[r[:-1] for r in csv.reader(open(run / "log.csv"))] for run in (every_step, batched)]
    assert rows[0] == rows[1] and len(rows[0]) == 1 + 2 * (256 // 64)
    said = []
    for name, k in (("c", 1), ("d", 3)):
        with pytest.raises(TrainingError, match="loss became") as e:
            train(cfg.replace(lr=1e30), tiny_dataset, tmp_path / name, sync_every=k)
        said.append(str(e.value).split(";")[0])
    assert said[0] == said[1]  # the same step named


def test_a_compiled_model_trains_to_the_same_losses_and_weights(tmp_path, tiny_dataset):
    """--compile: the same checkpoints' layout and, within float rounding, the same losses and
    weights (aot_eager: the graph capture and autograd of torch.compile, without the
    minute of C++ code generation that inductor adds on CPU)."""
    cfg = TrainConfig(d=32, epochs=1, batch_size=64, image_size=32, precision="fp32",
                      method_settings={"proj_hidden": 64, "proj_dim": 32})
    plain = train(cfg, tiny_dataset, tmp_path / "plain")
    compiled = train(cfg, tiny_dataset, tmp_path / "compiled", compile="aot_eager")
    assert json.loads((compiled / "config.json").read_text())["compiled"] == "aot_eager"
    losses = [[float(r["loss"]) for r in csv.DictReader(open(run / "log.csv"))] for run in (plain, compiled)]
    assert len(losses[0]) == len(losses[1]) == 4
    assert all(abs(x - y) <= 1e-4 * abs(x) for x, y in zip(*losses))
    a, b = (torch.load(run / "checkpoints" / "epoch_001.pt", weights_only=True)["model"] for run in (plain, compiled))
    assert a.keys() == b.keys() and all(a[k].shape == b[k].shape for k in a)
    # Adam moves a parameter by about lr per step whatever its gradient's size, so a gradient
    # near 0 that rounds differently can move it by up to lr in another direction: 4 steps x lr
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=4 * cfg.lr) for k in a)


def test_config__defaults_are_the_cpu_preset_and_a_recorded_none_survives():
    from comm_diag.comm.config import PRESETS, preset_data
    from comm_diag.trifeature_gen import DatasetSpec

    assert preset("cpu") == TrainConfig() and DatasetSpec(**preset_data("cpu")).size == TrainConfig().image_size == 64
    paper = preset("paper")
    assert paper.aug1 is None and TrainConfig().aug1 == "crop"  # the paper: every method's own augmentation
    for p in PRESETS.values():  # config.json round trip: None ("the method's own") is not replaced by a default
        assert TrainConfig.from_dict(p.train.to_dict()) == p.train
    with pytest.raises(ValueError, match="unknown preset 'huge'; choose from cpu, paper, smoke"):
        preset_data("huge")


@pytest.mark.parametrize("method", ["comm", "cross"])
def test_compile_reaches_the_encoders_held_in_module_lists(method):
    """0.4's --compile compiled only modules called through __call__ of the model's children: a
    counting backend saw one small graph for CoMM and none for Cross, whose encoders sit in a
    ModuleList. Every encoder's convolutions are compiled now."""
    from comm_diag.comm.methods import build_method
    from comm_diag.comm.train import compile_modules

    graphs = []

    def counting(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    torch._dynamo.reset()
    torch.manual_seed(0)
    model = build_method(TrainConfig(d=32, image_size=32, method=method,
                                     method_settings={"proj_hidden": 32, "proj_dim": 16} if method == "comm" else {}))
    assert compile_modules(model, counting) >= 2
    g = torch.Generator().manual_seed(0)
    xs = [torch.rand(4, 3, 32, 32, generator=g) for _ in range(2)]
    model.step(xs, [lambda x: x] * 2)["loss"].backward()
    assert all(e._compiled_call_impl is not None for e in model.encoders)  # each encoder is called compiled
    # and its convolutions were traced (identical encoders may share one graph: parameters are its inputs)
    assert any("conv2d" in gm.code for gm in graphs), [len(gm.graph.nodes) for gm in graphs]
