"""Method and fusion registries. A user's method plugs in through the same interface
(``comm.methods.base.Method``)."""

from __future__ import annotations

from .base import Method, normalize
from .comm import CoMM
from .cross import Cross, CrossSelf

METHODS: dict[str, type[Method]] = {"comm": CoMM, "cross": Cross, "cross_self": CrossSelf}
FUSIONS = ("transformer", "linear")


def build_method(cfg, n_modalities: int = 2) -> Method:
    if cfg.method not in METHODS:
        raise ValueError(f"unknown method {cfg.method!r}; choose from {', '.join(METHODS)}")
    return METHODS[cfg.method](cfg, n_modalities)


__all__ = ["METHODS", "FUSIONS", "Method", "CoMM", "Cross", "CrossSelf", "build_method", "normalize"]
