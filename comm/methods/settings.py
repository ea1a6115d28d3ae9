"""Method settings: a method's own hyperparameters, declared, defaulted and checked by the
method (as solo-learn's methods do), apart from the run's settings (``comm.config``)."""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Mapping

from comm_diag.errors import InputError
from comm_diag.dict_config import DictConfig

from comm_diag.comm.config import DERIVED, TrainConfig, check_finite
from comm_diag.comm.losses import NCE


@dataclass(frozen=True)
class MethodSettings(DictConfig):
    """A method's own hyperparameters. A method subclasses this as a frozen dataclass whose
    fields all have defaults, overrides ``check``, and names it ``Settings`` on its class;
    ``TrainConfig.method_settings`` holds the values, and ``Method.settings`` the instance.
    The base class has no settings."""

    _what = "method settings"

    def check(self, cfg: TrainConfig) -> None:
        """ValueError (one sentence) if a value is unusable; ``cfg``: the run's settings,
        for checks across the two (e.g. CoMM's d % heads)."""

    @classmethod
    def package_settings(cls) -> set[str]:
        """The fields this class has from comm-diag's own settings classes (a built-in
        method's, or ``ContrastiveSettings``' temperature in a plugin that subclasses it):
        the settings a preset may set. A plugin's own field of the same name is another
        thing, and keeps its default."""
        owner: dict[str, type] = {}
        for klass in reversed(cls.__mro__):  # the most basic dataclass with a field declares it
            for f in fields(klass) if is_dataclass(klass) else ():
                owner.setdefault(f.name, klass)
        return {name for name, klass in owner.items() if klass.__module__.startswith("comm_diag.")}

    @classmethod
    def resolve(cls, given: Mapping[str, Any], shared: Mapping[str, Any] = {}, method: str = "this method",
                strict: bool = True) -> "MethodSettings":
        """The settings from ``given`` (name -> value; text from ``--set`` is typed by the
        field), then ``shared`` (a preset's method settings) for the package's settings this
        class has (``package_settings``) and defaults for the rest. A name this class does not
        declare is refused, unless ``shared`` gives it the same value (a preset's setting
        applies to every method that has it and to no other), or ``strict`` is False (older
        config files)."""
        names = [f.name for f in fields(cls)]
        extra = sorted(k for k, v in given.items() if k not in names and not (k in shared and shared[k] == v))
        if extra and strict:
            has = f"its own settings are {', '.join(names)}" if names else "it has no settings of its own"
            raise InputError(f"method {method!r} does not use {', '.join(extra)} ({has}); --set takes KEY=VALUE with "
                             f"KEY one of those or a run setting: "
                             f"{', '.join(k for k in TrainConfig().run_settings() if k not in (*DERIVED, 'method'))}")
        kept = {k: cls.parse_value(k, v) if isinstance(v, str) else v for k, v in given.items() if k in names}
        ours = cls.package_settings()
        kept = {**{k: v for k, v in shared.items() if k in ours}, **kept}
        check_finite(kept)
        return cls.from_dict(kept)


def check_choice(name: str, value: str, choices) -> None:
    if value not in choices:
        raise InputError(f"unknown {name.replace('_', '-')} {value!r}; choose from {', '.join(choices)}")


@dataclass(frozen=True)
class ContrastiveSettings(MethodSettings):
    """What every SimCLR-style InfoNCE term reads."""

    temperature: float = 0.1  # InfoNCE temperature
    nce: str = "cross_view"  # negatives: cross_view (the other view's B-1) | nt_xent (both views', 2B-2)

    def check(self, cfg: TrainConfig) -> None:
        check_choice("nce", self.nce, NCE)
        if self.temperature <= 0:
            raise InputError(f"temperature must be > 0, got {self.temperature}")


@dataclass(frozen=True)
class HeadSettings(ContrastiveSettings):
    """InfoNCE on a SimCLR projection head's outputs."""

    proj_hidden: int = 512  # projection head: hidden width
    proj_dim: int = 256  # projection head: output width

    def check(self, cfg: TrainConfig) -> None:
        super().check(cfg)
        if min(self.proj_hidden, self.proj_dim) < 1:
            raise InputError(f"proj-hidden and proj-dim must be >= 1, got {self.proj_hidden}, {self.proj_dim}")


