"""Seeded, batched generator of bimodal Trifeature datasets with exact PID ground truth."""

from .. import __version__  # noqa: F401  (the package version, re-exported)

from .factors import FACTOR_NAMES, FACTOR_VALUES  # noqa: E402
from .io import Dataset, DatasetError, PairSet, generate, load, verify  # noqa: E402
from .render import Trifeature, trial_pairs  # noqa: E402
from .spec import PAIR_SETS, DatasetSpec  # noqa: E402

__all__ = ["FACTOR_NAMES", "FACTOR_VALUES", "Dataset", "DatasetError", "DatasetSpec", "PAIR_SETS",
           "PairSet", "Trifeature", "generate", "load", "trial_pairs", "verify", "__version__"]
