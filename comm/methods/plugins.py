"""A user's own method: found by name, loaded from a file or module, checked before training.

A method name (``TrainConfig.method``) is one of

- a built-in (``comm_diag.comm.methods.METHODS``: comm, cross, cross_self, infmasking, simclr);
- an installed plugin: a name in the ``comm_diag.methods`` entry-point group, e.g. in
  the plugin's pyproject.toml::

      [project.entry-points."comm_diag.methods"]
      late_simclr = "my_package.methods:LateFusionSimCLR"

- ``package.module:ClassName`` (importable) or ``path/to/file.py:ClassName``.

The class must subclass ``comm_diag.comm.methods.Method`` and implement its interface (see
that class's docstring). ``comm.methods.preflight`` builds it and runs one step and one
``features`` call on a few real pairs, so a broken method fails in seconds with a
message that names the problem, not after data generation and hours of training.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Optional, Sequence

from comm_diag.errors import InputError
from comm_diag.comm.config import TrainConfig
from comm_diag.comm.methods.base import Method
from comm_diag.comm.methods.settings import MethodSettings

ENTRY_POINT_GROUP = "comm_diag.methods"


class PluginError(InputError):
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


def import_target(target: str, builtins: Sequence[str] = ()) -> type:
    """The class an installed plugin name or a 'where:Class' target designates (``builtins``:
    the built-in names, listed in the error for an unknown name)."""
    plugins = installed()
    if target in plugins:
        target = plugins[target]
    if ":" not in target:
        raise PluginError(f"unknown method {target!r}; choose from {', '.join([*builtins, *plugins])}, "
                          f"or give package.module:ClassName or path/to/file.py:ClassName")
    where, cls_name = target.rsplit(":", 1)
    try:
        if where.endswith(".py"):
            path = Path(where).expanduser()
            if not path.is_file():
                raise PluginError(f"{where}: no such file")
            module = _import_file(path.resolve())
        else:
            if "/" in where or Path(where).expanduser().exists():  # a path, not a module name
                what = "a folder" if Path(where).expanduser().is_dir() else "not a .py file"
                raise PluginError(f"{where} is {what}: name the file that defines the class, "
                                  f"path/to/file.py:{cls_name}")
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
    settings = getattr(cls, "Settings", None)
    if not (isinstance(settings, type) and issubclass(settings, MethodSettings) and dataclasses.is_dataclass(settings)):
        missing.append("Settings: a frozen dataclass subclassing comm_diag.comm.methods.MethodSettings")
    else:
        clash = sorted({f.name for f in dataclasses.fields(settings)} & set(TrainConfig().run_settings()))
        if clash:
            missing.append(f"Settings names that are not run settings (it declares {', '.join(clash)})")
        bare = [f.name for f in dataclasses.fields(settings)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if bare:
            missing.append(f"a default for every Settings field ({', '.join(bare)} has none: a run that does not "
                           f"set it must still build)")
    if missing:
        raise PluginError(f"{name} does not implement the method interface: missing {'; '.join(missing)}")


def is_code_target(name: str) -> bool:
    """A 'where:Class' target (a file or module to import), not a built-in or installed plugin name."""
    return ":" in str(name)


def require_given(recorded: str, given: Optional[str], source: str) -> None:
    """PluginError unless a method read from a file (``source``) is safe to build: a built-in
    or installed plugin name, or code the caller named itself (``given``). Importing user
    code is an act of the person at the keyboard, never a value read from a file."""
    if given is not None and not is_code_target(recorded) and given != recorded:
        # a method given for a run of another one contradicts it (0.8 ignored it in silence)
        raise PluginError(f"{source} was trained with the method {recorded!r}; --method {given} names another: "
                          f"leave --method out for a built-in's run")
    if not is_code_target(recorded):
        return
    if given is not None and normalize_target(given) == recorded:
        return
    raise PluginError(f"{source} names code to import as its method ({recorded}); comm-diag never imports code "
                      f"named by a file it reads: if you trust that code, give it yourself with --method {recorded}")


def label_of(target: str, builtins: Sequence[str] = ()) -> str:
    """A short name for reports: the class name of a 'where:Class' target; a class named like
    one of ``builtins`` (a user's ``comm``) is prefixed with its file or module
    (``plugs.comm``), so that it is never reported as, or collides with, the built-in.
    ``registry.label_of`` passes the built-in names."""
    if ":" not in target:
        return target
    where, cls = target.rsplit(":", 1)
    if cls.lower() in {m.lower() for m in builtins}:
        stem = Path(where).stem if where.endswith(".py") else where.rsplit(".", 1)[-1]
        return f"{stem}.{cls}"
    return cls
