"""Methods: the interface (``Method``, ``MethodSettings``), the built-ins, and the registry
through which a user's method plugs in the same way."""

from __future__ import annotations

from comm_diag.comm.methods.base import Method, as_batch, normalize
from comm_diag.comm.methods.comm_model import CoMM
from comm_diag.comm.methods.cross import Cross, CrossSelf
from comm_diag.comm.methods.infmasking import InfMasking
from comm_diag.comm.methods.preflight import preflight
from comm_diag.comm.methods.registry import METHODS, build_method, load_class, resolve
from comm_diag.comm.methods.settings import MethodSettings
from comm_diag.comm.methods.simclr import LateFusionSimCLR

__all__ = ["METHODS", "Method", "MethodSettings", "CoMM", "Cross", "CrossSelf", "InfMasking", "LateFusionSimCLR",
           "as_batch", "build_method", "load_class", "normalize", "preflight", "resolve"]
