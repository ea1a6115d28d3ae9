"""Method and fusion registries. A user's method plugs in through the same interface
(``comm_diag.comm.methods.base.Method``)."""

from __future__ import annotations

from .base import Method, normalize
from .comm_model import CoMM
from .cross import Cross, CrossSelf
from .infmasking import InfMasking
from .simclr import LateFusionSimCLR

METHODS: dict[str, type[Method]] = {"comm": CoMM, "cross": Cross, "cross_self": CrossSelf,
                                    "infmasking": InfMasking, "simclr": LateFusionSimCLR}
FUSIONS = ("transformer", "linear")


def build_method(cfg, n_modalities: int = 2) -> Method:
    """``cfg.method``: a built-in, an installed plugin, or a 'where:Class' target (``plugins``)."""
    from .plugins import load_class

    return load_class(cfg.method)(cfg, n_modalities)


__all__ = ["METHODS", "FUSIONS", "Method", "CoMM", "Cross", "CrossSelf", "InfMasking", "LateFusionSimCLR",
           "build_method", "normalize"]
