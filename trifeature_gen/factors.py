"""The three Trifeature factors and their values (Hermann & Lampinen, NeurIPS 2020).

Codes are positions in the tuples below; every array in the toolkit stores codes,
every file stores names.
"""

from __future__ import annotations

import numpy as np

from comm_diag.errors import InputError

SHAPES = ("triangle", "square", "plus", "circle", "tee",
          "rhombus", "pentagon", "star", "fivesquare", "trapezoid")
TEXTURES = ("solid", "stripes", "grid", "hexgrid", "dots",
            "noise", "triangles", "zigzags", "rain", "pluses")
COLORS = {
    "red": (1.0, 0.0, 0.0),
    "green": (0.0, 1.0, 0.0),
    "blue": (0.0, 0.0, 1.0),
    "yellow": (1.0, 1.0, 0.0),
    "pink": (1.0, 0.4, 1.0),
    "cyan": (0.0, 1.0, 1.0),
    "purple": (0.3, 0.0, 0.5),
    "ocean": (0.1, 0.4, 0.5),
    "orange": (1.0, 0.6, 0.0),
    "white": (1.0, 1.0, 1.0),
}
BACKGROUND = (0.5, 0.5, 0.5)

FACTOR_NAMES = ("shape", "texture", "color")
FACTOR_VALUES: dict[str, tuple[str, ...]] = {
    "shape": SHAPES,
    "texture": TEXTURES,
    "color": tuple(COLORS),
}
FACTOR_SIZES = tuple(len(FACTOR_VALUES[f]) for f in FACTOR_NAMES)


def to_uint8(rgb: tuple[float, float, float]) -> tuple[int, int, int]:
    """Round an RGB triple in [0, 1] to the uint8 value the renderer writes."""
    return tuple(int(np.floor(c * 255 + 0.5)) for c in rgb)  # type: ignore[return-value]


COLOR_UINT8 = np.array([to_uint8(c) for c in COLORS.values()], dtype=np.uint8)  # 10x3
BACKGROUND_UINT8 = np.array(to_uint8(BACKGROUND), dtype=np.uint8)


def factor_index(name: str) -> int:
    """Position of a factor in FACTOR_NAMES; ValueError lists the choices."""
    if name not in FACTOR_NAMES:
        raise InputError(f"unknown attribute {name!r}; choose from {', '.join(FACTOR_NAMES)}")
    return FACTOR_NAMES.index(name)



def all_combinations() -> np.ndarray:
    """Every (shape, texture, color) code triple, in lexicographic order: 1000x3."""
    grids = np.meshgrid(*[np.arange(n) for n in FACTOR_SIZES], indexing="ij")
    return np.stack([g.ravel() for g in grids], axis=1).astype(np.int64)


def sample_factors(n: int, rng: np.random.Generator) -> np.ndarray:
    """n independent uniform factor triples (shape, texture, color): nx3 int64."""
    return np.stack([rng.integers(0, k, size=n) for k in FACTOR_SIZES], axis=1).astype(np.int64)
