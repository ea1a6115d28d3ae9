"""User methods: loading by file, module and entry point; clear errors for broken ones."""

import sys
import textwrap
from pathlib import Path

import pytest
import torch

from comm_diag.comm.config import preset
from comm_diag.comm.methods import CoMM
from comm_diag.comm.methods import load_class, preflight
from comm_diag.comm.methods.plugins import PluginError, installed, label_of, normalize_target
import comm_diag.trifeature_gen as tg
from comm_diag.comm.methods import as_batch

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = f"{ROOT / 'examples' / 'late_fusion_simclr.py'}:LateFusionSimCLR"

# a user's method file, with the one thing wrong that each case names
HEADER = """
import torch
from torch import nn
from comm_diag.comm.methods import Method

class Base(Method):
    def __init__(self, cfg, n_modalities=2):
        super().__init__(cfg, n_modalities)
        self.lin = nn.Linear(3, 4)
    def features(self, xs):
        return {"fused": torch.cat([self.lin(x.mean(dim=(2, 3))) for x in xs], 1)}
    def step(self, xs, augment):
        return {"loss": self.features([a(x) for a, x in zip(augment, xs)])["fused"].pow(2).mean()}
"""
CASES = {
    "Base": (None, None),
    "NotAMethod": ("class NotAMethod:\n    pass", "not a subclass of comm_diag.comm.methods.Method"),
    "NoStep": ("class NoStep(Method):\n    def features(self, xs):\n        return {}", "missing step"),
    "NoFeatures": ("class NoFeatures(Method):\n    def step(self, xs, augment):\n        return {}",
                   "missing features"),
    "Boom": ("class Boom(Base):\n    def step(self, xs, augment):\n        return 1 / 0",
             "first training step raised ZeroDivisionError"),
    "NaN": ("class NaN(Base):\n    def step(self, xs, augment):\n"
            "        return {'loss': super().step(xs, augment)['loss'] * float('nan')}", "non-finite loss"),
    "Vector": ("class Vector(Base):\n    def step(self, xs, augment):\n"
               "        return {'loss': self.features(xs)['fused'].mean(0)}", "must be a scalar tensor"),
    "BadTerm": ("class BadTerm(Base):\n    def step(self, xs, augment):\n"
                "        return {**super().step(xs, augment), 'acc': 0.5}", "step\\(\\)\\['acc'\\] must be a scalar"),
    "NoLoss": ("class NoLoss(Base):\n    def step(self, xs, augment):\n        return {'l': 0}", "'loss' entry"),
    "Detached": ("class Detached(Base):\n    def step(self, xs, augment):\n"
                 "        return {'loss': torch.tensor(1.0)}", "does not depend on any parameter"),
    "NoFused": ("class NoFused(Base):\n    def features(self, xs):\n        return {'z': xs[0]}\n"
                "    def step(self, xs, augment):\n        return {'loss': self.lin(xs[0].mean(dim=(2, 3))).sum()}",
                "'fused' entry \\(and optionally one per modality\\), got a dict with the keys 'z'"),
    "NoSuper": ("class NoSuper(Base):\n    def __init__(self, cfg, n_modalities=2):\n"
                "        self.lin = nn.Linear(3, 4)", "call super\\(\\).__init__\\(cfg, n_modalities\\)"),
    "BareSetting": ("from dataclasses import dataclass\nfrom comm_diag.comm.methods import MethodSettings\n"
                    "@dataclass(frozen=True)\nclass S(MethodSettings):\n    k: int\n"
                    "class BareSetting(Base):\n    Settings = S", "a default for every Settings field \\(k has none"),
    "BadInit": ("class BadInit(Base):\n    def __init__(self, cfg, n_modalities=2):\n"
                "        raise KeyError('width')", "building it from the config raised KeyError"),
}


@pytest.fixture(scope="module")
def user_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("user") / "my_methods.py"
    path.write_text(HEADER + "\n\n".join(textwrap.dedent(code) for code, _ in CASES.values() if code) + "\n")
    return path


@pytest.fixture(scope="module")
def pairs(tiny_dataset):
    return [as_batch(x) for x in tg.trial_pairs(tiny_dataset.spec.size, 8)]


def test_load_builtin_file_and_module(user_file, monkeypatch):
    assert load_class("comm") is CoMM
    assert load_class(f"{user_file}:Base").__name__ == "Base"
    monkeypatch.syspath_prepend(str(user_file.parent))
    assert load_class("my_methods:Base").__name__ == "Base"
    assert label_of(normalize_target("x/y.py:Cls")) == "Cls" and normalize_target("x/y.py:Cls").startswith("/")


@pytest.mark.parametrize("name", [n for n in CASES if n != "Base"])
def test_broken_methods_are_named(name, user_file, pairs):
    msg = CASES[name][1]
    cfg = preset("smoke").replace(method=f"{user_file}:{name}")
    with pytest.raises(PluginError, match=msg):
        load_class(cfg.method)
        preflight(cfg, pairs)


def test_import_errors_and_missing_things_are_named(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import numpy\nraise RuntimeError('no GPU here')\n")
    with pytest.raises(PluginError, match="importing .*bad.py raised RuntimeError: no GPU here"):
        load_class(f"{bad}:X")
    with pytest.raises(PluginError, match="no such file"):
        load_class(f"{tmp_path / 'missing.py'}:X")
    with pytest.raises(PluginError, match="cannot import 'no_such_pkg.mod'"):
        load_class("no_such_pkg.mod:X")
    with pytest.raises(PluginError, match="unknown method 'byol'; choose from comm, cross, cross_self, infmasking, simclr"):
        load_class("byol")


def test_example_and_builtins_pass_preflight(pairs):
    for method in (EXAMPLE, "comm", "cross", "cross_self"):
        preflight(preset("smoke").replace(method=method), pairs)


def test_entry_point_plugin_is_discovered(tmp_path, monkeypatch):
    (tmp_path / "plug_pkg.py").write_text(HEADER)
    dist = tmp_path / "plug_pkg-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: plug-pkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[comm_diag.methods]\nmy_base = plug_pkg:Base\ncross = plug_pkg:Base\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert installed()["my_base"] == "plug_pkg:Base"
    assert load_class("my_base").__name__ == "Base"
    from typer.testing import CliRunner

    from comm_diag.cli import app

    r = CliRunner().invoke(app, ["methods"])
    assert r.exit_code == 0 and "my_base" in r.output and "plugin plug_pkg:Base" in r.output
    # an entry point named like a built-in shadows nothing, and says so
    assert load_class("cross").__name__ == "Cross"
    assert "never used" in r.output and "the built-in" in r.output  # (the table wraps the sentence)
    sys.modules.pop("plug_pkg", None)


def test_user_method_trains(tmp_path, tiny_dataset):
    from comm_diag.comm.train import train

    run = train(preset("smoke").replace(method=EXAMPLE, batch_size=32), tiny_dataset, tmp_path / "run")
    import csv

    rows = list(csv.DictReader(open(run / "log.csv")))
    assert len(rows) == 8 and {"simclr_1", "simclr_2", "loss"} <= set(rows[0])
    assert all(torch.isfinite(torch.tensor(float(r["loss"]))) for r in rows)


PRESET_SETTINGS = """
from dataclasses import dataclass
from comm_diag.comm.methods.settings import ContrastiveSettings, MethodSettings

@dataclass(frozen=True)
class OwnSettings(MethodSettings):
    temperature: float = 0.5  # the plugin's own: not the package's InfoNCE temperature

@dataclass(frozen=True)
class SharedSettings(ContrastiveSettings):
    extra: int = 3

class Own(Base):
    Settings = OwnSettings

class Shared(Base):
    Settings = SharedSettings
"""


def test_a_preset_sets_a_plugins_setting_only_when_the_plugin_declares_the_packages_own(tmp_path):
    from comm_diag.comm.methods import resolve
    from comm_diag.comm.config import preset_method_settings

    path = tmp_path / "plugin_settings.py"
    path.write_text(HEADER + PRESET_SETTINGS)
    paper = preset("paper")
    assert preset_method_settings("paper")["temperature"] == 0.1
    # a field of the same name that the plugin declares itself keeps the plugin's default
    assert resolve(paper.replace(method=f"{path}:Own")).method_settings == {"temperature": 0.5}
    # ... unless the user gives it, whatever the value (the preset's own value included)
    assert resolve(paper.replace(method=f"{path}:Own", temperature=0.1)).method_settings == {"temperature": 0.1}
    # the package's temperature, inherited from ContrastiveSettings: the preset's value, as for every built-in
    shared = resolve(paper.replace(method=f"{path}:Shared")).method_settings
    assert shared == {"temperature": 0.1, "nce": "nt_xent", "extra": 3}
    assert resolve(paper.replace(method="simclr")).method_settings["temperature"] == 0.1
    # the model built from the resolved config holds the same settings
    model = load_class(f"{path}:Own")(resolve(paper.replace(method=f"{path}:Own", image_size=32)))
    assert model.settings.temperature == 0.5
