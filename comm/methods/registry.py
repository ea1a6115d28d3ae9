"""Methods by name: the built-ins, installed plugins and 'where:Class' targets; building a
method, and resolving a config's method settings against the method's ``Settings``."""

from __future__ import annotations

from comm_diag.comm.methods.base import Method
from comm_diag.comm.methods.comm_model import CoMM
from comm_diag.comm.methods.cross import Cross, CrossSelf
from comm_diag.comm.methods.infmasking import InfMasking
from comm_diag.comm.methods.plugins import import_target, label_of as _label_of
from comm_diag.comm.methods.simclr import LateFusionSimCLR
from comm_diag.comm.config import TrainConfig, preset_method_settings

METHODS: dict[str, type[Method]] = {"comm": CoMM, "cross": Cross, "cross_self": CrossSelf,
                                    "infmasking": InfMasking, "simclr": LateFusionSimCLR}
# how figures and reports name the built-ins; a plugin is shown by its label (its class's name)
DISPLAY_NAMES = {"comm": "CoMM", "cross": "Cross", "cross_self": "Cross+Self", "infmasking": "InfMasking",
                 "simclr": "SimCLR"}


def display_name(label: str) -> str:
    """A method's label in figures and report tables: 'cross_self' -> 'Cross+Self',
    'comm@init' -> 'CoMM@init'; anything else (a plugin, a study's variant) as it is."""
    base, at, rest = label.partition("@")
    return DISPLAY_NAMES.get(base, base) + at + rest


def label_of(target: str) -> str:
    """A method's name in reports (``plugins.label_of`` against the built-in names)."""
    return _label_of(target, tuple(METHODS))


def load_class(name: str) -> type[Method]:
    """The class a method name designates: a built-in, an installed plugin, or a
    'package.module:Class' / 'path/file.py:Class' target (``plugins``); PluginError (a
    ValueError) naming the problem."""
    if name in METHODS:
        return METHODS[name]
    return import_target(name, tuple(METHODS))


def build_method(cfg: TrainConfig, n_modalities: int = 2) -> Method:
    return load_class(cfg.method)(cfg, n_modalities)


def resolve(cfg: TrainConfig, strict: bool = True) -> TrainConfig:
    """``cfg`` checked, with ``method_settings`` complete: every setting the method's
    ``Settings`` declares, given or default. A method setting the method does not declare
    is refused (it would be silently ignored), unless the config's preset set it: a
    preset's setting applies to every method that has it as the package's setting
    (``MethodSettings.package_settings``). ``strict=False`` drops such settings instead
    (config files of 0.1 and 0.2 stored every method's settings)."""
    cfg.validate()
    cls = load_class(cfg.method)
    shared = preset_method_settings(cfg.preset)
    settings = cls.Settings.resolve(cfg.method_settings, shared, cfg.method, strict)
    settings.check(cfg)
    return cfg.replace(method_settings=settings.to_dict())
