"""Every encoder of the registry: feature maps at the CPU and paper sizes, width multipliers,
and a training run from the CLI on the default settings with no extra flag."""

import json

import pytest
import torch
import torchvision
from typer.testing import CliRunner

from comm_diag.cli import app
from comm_diag.comm.encoders import ENCODERS, build_encoder

runner = CliRunner()


@pytest.mark.parametrize("name", list(ENCODERS))
def test_encoder__width_scales_channels_and_keeps_a_spatial_map(name):
    narrow, full = build_encoder(name, 64, 0.25), build_encoder(name, 64, 1.0)
    assert narrow.out_channels * 4 == full.out_channels
    h = narrow(torch.rand(2, 3, 64, 64))
    assert h.shape[:2] == (2, narrow.out_channels) and h.shape[-1] >= 3


@pytest.mark.parametrize("name, builder", [("resnet18", torchvision.models.resnet18),
                                           ("resnet50", torchvision.models.resnet50)])
def test_encoder__resnet_at_width_1_and_224px_is_torchvisions_body(name, builder):
    ours = build_encoder(name, 224, 1.0)
    ref = builder(weights=None)
    n_ref = sum(p.numel() for k, p in ref.named_parameters() if not k.startswith("fc."))
    assert sum(p.numel() for p in ours.parameters()) == n_ref
    assert ours(torch.rand(1, 3, 224, 224)).shape == (1, ref.fc.in_features, 7, 7)


@pytest.mark.parametrize("name", list(ENCODERS))
def test_encoder__trains_from_the_cli_with_no_extra_flag(name, tiny_dataset, tmp_path):
    r = runner.invoke(app, ["train", "--data", str(tiny_dataset.root), "--preset", "smoke", "--encoder", name,
                            "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())["train"]
    assert cfg["encoder"] == name and (tmp_path / "run" / "checkpoints" / "epoch_001.pt").is_file()


def test_cli__every_setting_is_reachable(tiny_dataset, tmp_path):
    r = runner.invoke(app, ["train", "--data", str(tiny_dataset.root), "--preset", "smoke", "--width", "0.5",
                            "--d", "16", "--set", "proj_dim=8", "--set", "heads=2", "--set", "warmup_epochs=0",
                            "--set", "decay_norms_and_biases=false",
                            "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())["train"]
    assert (cfg["width"], cfg["d"], cfg["proj_dim"], cfg["heads"], cfg["warmup_epochs"]) == (0.5, 16, 8, 2, 0.0)
    assert cfg["decay_norms_and_biases"] is False  # a bool, not the string "false"
