"""Methods: the interface (``Method``, ``MethodSettings``), the built-ins, and the registry
through which a user's method plugs in the same way."""

from __future__ import annotations

from .base import Method, as_batch, normalize
from .comm_model import CoMM
from .cross import Cross, CrossSelf
from .infmasking import InfMasking
from .preflight import preflight
from .registry import METHODS, build_method, load_class, resolve
from .settings import MethodSettings
from .simclr import LateFusionSimCLR

__all__ = ["METHODS", "Method", "MethodSettings", "CoMM", "Cross", "CrossSelf", "InfMasking", "LateFusionSimCLR",
           "as_batch", "build_method", "load_class", "normalize", "preflight", "resolve"]
