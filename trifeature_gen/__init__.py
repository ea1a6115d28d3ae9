"""Seeded, batched generator of bimodal Trifeature datasets with exact PID ground truth."""

from comm_diag import __version__  # noqa: F401  (the package version, re-exported

from comm_diag.trifeature_gen.factors import FACTOR_NAMES, FACTOR_VALUES  # noqa: E402
from comm_diag.trifeature_gen.io import Dataset, DatasetError, PairSet, generate, load, verify  # noqa: E402
from comm_diag.trifeature_gen.render import STYLE_REVISION, Trifeature, trial_pairs  # noqa: E402
from comm_diag.trifeature_gen.spec import PAIR_SETS, DatasetSpec  # noqa: E402

__all__ = ["FACTOR_NAMES", "FACTOR_VALUES", "Dataset", "DatasetError", "DatasetSpec", "PAIR_SETS",
           "PairSet", "STYLE_REVISION", "Trifeature", "generate", "load", "trial_pairs", "verify", "__version__"]
