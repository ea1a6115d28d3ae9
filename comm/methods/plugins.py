"""A user's own method: found by name, loaded from a file or module, checked before training.

A method name (``TrainConfig.method``) is one of

- a built-in: ``comm``, ``cross``, ``cross_self`` (``comm_diag.comm.methods.METHODS``);
- an installed plugin: a name in the ``comm_diag.methods`` entry-point group, e.g. in
  the plugin's pyproject.toml::

      [project.entry-points."comm_diag.methods"]
      late_simclr = "my_package.methods:LateFusionSimCLR"

- ``package.module:ClassName`` (importable) or ``path/to/file.py:ClassName``.

The class must subclass ``comm_diag.comm.methods.Method`` and implement its interface (see
that class's docstring). ``preflight`` builds it and runs one step and one
``features`` call on a few real pairs, so a broken method fails in seconds with a
message that names the problem, not after data generation and hours of training.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Sequence

import torch

from .base import Method

ENTRY_POINT_GROUP = "comm_diag.methods"


class PluginError(ValueError):
    """A method that cannot be loaded or does not behave as the interface says."""


def installed() -> dict[str, str]:
    """Entry-point name -> 'module:Class' of every installed plugin method."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _import_file(path: Path):
    # a name unique per file, so two users' "method.py" never collide in sys.modules
    name = f"comm_diag_user_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def normalize_target(target: str) -> str:
    """'file.py:Class' -> '/absolute/file.py:Class' (a run must find its method from any
    folder and in worker processes); other names unchanged."""
    if ":" in target:
        where, cls = target.rsplit(":", 1)
        if where.endswith(".py"):
            return f"{Path(where).expanduser().resolve()}:{cls}"
    return target


def load_class(target: str) -> type:
    """The class a method name designates (see the module docstring)."""
    from . import METHODS

    if target in METHODS:
        return METHODS[target]
    plugins = installed()
    if target in plugins:
        target = plugins[target]
    if ":" not in target:
        raise PluginError(f"unknown method {target!r}; choose from {', '.join([*METHODS, *plugins])}, "
                          f"or give package.module:ClassName or path/to/file.py:ClassName")
    where, cls_name = target.rsplit(":", 1)
    try:
        if where.endswith(".py"):
            path = Path(where).expanduser()
            if not path.is_file():
                raise PluginError(f"{where}: no such file")
            module = _import_file(path.resolve())
        else:
            module = importlib.import_module(where)
    except PluginError:
        raise
    except ModuleNotFoundError as e:
        raise PluginError(f"cannot import {where!r}: {e}") from None
    except BaseException as e:  # the user's module raised while importing
        raise PluginError(f"importing {where} raised {type(e).__name__}: {e}") from None
    cls = getattr(module, cls_name, None)
    if cls is None:
        raise PluginError(f"{where} has no {cls_name!r}")
    check_interface(cls, target)
    return cls


def check_interface(cls: object, name: str) -> None:
    """The class subclasses Method and overrides step and features (or encode + fuse)."""
    if not isinstance(cls, type) or not issubclass(cls, Method):
        raise PluginError(f"{name} is not a subclass of comm_diag.comm.methods.Method (see its docstring for the interface)")
    missing = []
    if cls.step is Method.step:
        missing.append("step(xs, augment) -> dict with 'loss'")
    if cls.features is Method.features and (cls.encode is Method.encode or cls.fuse is Method.fuse):
        missing.append("features(xs) -> dict with 'fused' (or encode(i, x) and fuse(encoded))")
    if missing:
        raise PluginError(f"{name} does not implement the method interface: missing {'; '.join(missing)}")


def label_of(target: str) -> str:
    """A short name for reports: the class name of a 'where:Class' target."""
    return target.rsplit(":", 1)[1] if ":" in target else target


def preflight(cfg, xs: Sequence[torch.Tensor]) -> None:
    """Build ``cfg.method`` and run one training step and one ``features`` call on the
    pairs ``xs`` (n batches Bx3xHxW in [0, 1]); PluginError naming what went wrong."""
    from ..augment import Augment
    from .. import methods

    name = cfg.method
    try:
        torch.manual_seed(cfg.seed)
        model = methods.build_method(cfg, len(xs))
    except PluginError:
        raise
    except Exception as e:
        raise PluginError(f"{name}: building it from the config raised {type(e).__name__}: {e}") from None
    gen = torch.Generator().manual_seed(0)
    augs = [lambda x: Augment("crop")(x, gen)] * len(xs)
    model.train()
    try:
        out = model.step(list(xs), augs)
    except Exception as e:
        raise PluginError(f"{name}: its first training step raised {type(e).__name__}: {e}") from None
    if not isinstance(out, dict) or "loss" not in out:
        raise PluginError(f"{name}: step() must return a dict with a 'loss' entry, got {type(out).__name__}")
    loss = out["loss"]
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1 or loss.dim() != 0:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise PluginError(f"{name}: step()['loss'] must be a scalar tensor, got {shape}")
    for key, term in out.items():
        if not isinstance(term, torch.Tensor) or term.numel() != 1:
            raise PluginError(f"{name}: step()[{key!r}] must be a scalar tensor (every returned term is logged)")
    if not torch.isfinite(loss):
        raise PluginError(f"{name}: its first training step returned a non-finite loss ({float(loss.detach())})")
    if not loss.requires_grad:
        raise PluginError(f"{name}: step()['loss'] does not depend on any parameter (no gradient)")
    try:
        loss.backward()
    except Exception as e:
        raise PluginError(f"{name}: backward through its loss raised {type(e).__name__}: {e}") from None
    model.eval()
    try:
        with torch.no_grad():
            feats = model.features(list(xs))
    except Exception as e:
        raise PluginError(f"{name}: features() raised {type(e).__name__}: {e}") from None
    if not isinstance(feats, dict) or "fused" not in feats:
        raise PluginError(f"{name}: features() must return a dict with a 'fused' entry")
    b = xs[0].shape[0]
    for key, f in feats.items():
        if not isinstance(f, torch.Tensor) or f.dim() != 2 or f.shape[0] != b:
            shape = tuple(f.shape) if isinstance(f, torch.Tensor) else type(f).__name__
            raise PluginError(f"{name}: features()[{key!r}] must be a {b}xD tensor, got {shape}")
        if not torch.isfinite(f).all():
            raise PluginError(f"{name}: features()[{key!r}] holds non-finite values")
