"""The ten shapes and their placement as the authors' renderer draws them (Duplums/CoMM,
dataset/trifeatures.py, read, not copied), for ``renderer="authors"``.

Their shapes are masks on a 128 x 128 pixel grid (the box is 128 px at 224), defined per
pixel by inequalities on the row ``i`` and column ``j``: the square fills the whole box,
the rhombus is a slanted parallelogram, the trapezoid is wide at the top and full height,
the triangle's and star's sides are staircases of whole pixels. A shape is rotated by a
whole-degree angle with bilinear interpolation on a canvas that grows to hold it
(``scipy.ndimage.rotate(order=1)``), and the grown canvas is pasted at a uniform integer
offset of the 224 px image: the centre's range shrinks as the angle grows. Their rotation
interpolates only between samples of the template (nothing beyond its box), so an edge that
lies on the box's border (the square, the sides of plus, tee, fivesquare, trapezoid) stays
hard and jagged, and every other edge is soft.

``templates()`` gives the masks; ``canvas_side`` and ``centres`` the placement, stated at
224 px and scaled with the image.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from comm_diag.trifeature_gen.factors import SHAPES

BOX = 128  # template samples per side, the box's pixels at 224 px
REFERENCE_SIZE = 224


def _masks(i: np.ndarray, j: np.ndarray) -> dict[str, np.ndarray]:
    """Each shape as a bool mask over row indices ``i`` (Bx1) and column indices ``j`` (1xB)."""
    c, third, sixth = BOX // 2, BOX // 3, BOX // 6
    full = np.ones((BOX, BOX), bool)
    bar = (j >= c - sixth) & (j <= c + sixth)  # the plus's and tee's vertical arm: 43 px wide
    pent_mid = int(BOX * 0.4)  # the pentagon's and star's widest row
    star_low, star_legs = pent_mid + int(0.2 * BOX), pent_mid + int(0.15 * BOX)
    legs_in = BOX * 0.33 - 0.43 * (i - star_legs)  # the star's legs: between two slanted lines
    legs_out = BOX * 0.62 - 1.05 * (i - star_legs)
    mirrored = BOX - j
    return {
        "triangle": np.abs(j - c) < i // 2 + 1,
        "square": full,
        "plus": bar | ((i >= c - sixth) & (i <= c + sixth)),
        "circle": (i + 0.5 - c) ** 2 + (j + 0.5 - c) ** 2 < c ** 2,
        "tee": bar | (i < third),
        "rhombus": (0 < j - c + i // 2) & (j - c + i // 2 < c),
        "pentagon": np.where(i < pent_mid, np.abs(j - c) < 1.25 * i + 1,
                             _inset(j, np.floor((i - pent_mid) / 3.1))),
        "star": ((i < pent_mid) & (np.abs(j - c) < i // 4 + 1))
                | ((i >= pent_mid) & (i < star_low) & _inset(j, (i - pent_mid) * 2.4))
                | ((i >= star_legs) & (((legs_in < j) & (j < legs_out)) | ((legs_in < mirrored) & (mirrored < legs_out)))),
        "fivesquare": (((i < third) | (i >= 2 * third + 1)) == ((j < third) | (j >= 2 * third + 1))),
        "trapezoid": _inset(j, np.floor(i / 3.1)),
    }


def _inset(j: np.ndarray, off: np.ndarray) -> np.ndarray:
    """Columns strictly between ``off`` and ``BOX - off`` (a row narrowed on both sides)."""
    return (off < j) & (j < BOX - off)


@functools.lru_cache(maxsize=1)
def templates() -> torch.Tensor:
    """The ten masks in {0, 1}: 10x1xBOXxBOX float32, in ``SHAPES`` order."""
    i, j = np.mgrid[0:BOX, 0:1], np.mgrid[0:1, 0:BOX][1]  # Bx1 rows, 1xB columns
    masks = _masks(i[0], j)
    assert tuple(sorted(masks)) == tuple(sorted(SHAPES))
    out = np.stack([np.broadcast_to(masks[s], (BOX, BOX)) for s in SHAPES]).astype(np.float32)
    return torch.from_numpy(out[:, None])  # 10x1xBxB


def canvas_side(angle: np.ndarray) -> np.ndarray:
    """Side in 224-px pixels of the canvas a rotation by ``angle`` (radians, (N,)) grows the box
    to: the rotated box's extent rounded to whole pixels, as their rotation sizes its output."""
    return np.floor(BOX * (np.abs(np.cos(angle)) + np.abs(np.sin(angle))) + 0.5)


def centres(angle: np.ndarray, u: np.ndarray, v: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Shape centres in image pixels (continuous, pixel k spans [k, k + 1)) for angles (N,) and
    uniform draws ``u``, ``v`` in [0, 1) (N,): the grown canvas at a uniform integer offset in
    [0, 224 - side) at 224 px, scaled to ``size``."""
    side = canvas_side(angle)
    span = REFERENCE_SIZE - side  # offsets 0 .. span - 1
    scale = size / REFERENCE_SIZE
    return ((np.floor(u * span) + side / 2) * scale, (np.floor(v * span) + side / 2) * scale)
