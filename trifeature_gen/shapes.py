"""The ten shape templates, rasterised once and then resampled per image.

Each shape is a union of polygons in box coordinates [-1, 1]^2 (y down). The
templates are drawn once with PIL at high resolution; the renderer rotates,
scales and places them with one batched ``grid_sample`` call, so no image is
ever drawn polygon by polygon.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from PIL import Image, ImageDraw

from comm_diag.trifeature_gen.factors import SHAPES

TEMPLATE_PX = 160  # template resolution; above the paper's box (128 px at 224)


def _regular(n: int, r: float = 1.0, phase: float = -math.pi / 2) -> list[tuple[float, float]]:
    return [(r * math.cos(phase + 2 * math.pi * k / n), r * math.sin(phase + 2 * math.pi * k / n))
            for k in range(n)]


def _rect(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def _star(points: int = 5, outer: float = 1.0, inner: float = 0.42) -> list[tuple[float, float]]:
    verts = []
    for k in range(2 * points):
        r = outer if k % 2 == 0 else inner
        a = -math.pi / 2 + math.pi * k / points
        verts.append((r * math.cos(a), r * math.sin(a)))
    return verts


def shape_polygons() -> dict[str, list[list[tuple[float, float]]]]:
    """Each shape as a list of polygons in box coordinates [-1, 1]^2, y pointing down."""
    t = 1 / 3  # arm half-width of plus and tee
    s = 0.3  # half-side of the small squares of fivesquare
    polys = {
        "triangle": [[(0.0, -1.0), (1.0, 0.8), (-1.0, 0.8)]],
        "square": [_rect(-0.85, -0.85, 0.85, 0.85)],
        "plus": [_rect(-t, -1, t, 1), _rect(-1, -t, 1, t)],
        "circle": [_regular(64, 1.0)],
        "tee": [_rect(-1, -1, 1, -1 + 2 * t), _rect(-t, -1, t, 1)],
        "rhombus": [[(0.0, -1.0), (0.7, 0.0), (0.0, 1.0), (-0.7, 0.0)]],
        "pentagon": [_regular(5, 1.0)],
        "star": [_star()],
        "fivesquare": [_rect(cx - s, cy - s, cx + s, cy + s)
                       for cx, cy in [(-0.7, -0.7), (0.7, -0.7), (0.0, 0.0), (-0.7, 0.7), (0.7, 0.7)]],
        "trapezoid": [[(-0.5, -0.7), (0.5, -0.7), (1.0, 0.7), (-1.0, 0.7)]],
    }
    assert tuple(polys) == SHAPES
    return polys


@functools.lru_cache(maxsize=1)
def templates() -> torch.Tensor:
    """All ten shapes as float masks in {0, 1}: 10x1xTxT (T = TEMPLATE_PX)."""
    out = np.zeros((len(SHAPES), 1, TEMPLATE_PX, TEMPLATE_PX), dtype=np.float32)
    half = (TEMPLATE_PX - 1) / 2
    for k, polys in enumerate(shape_polygons().values()):
        img = Image.new("L", (TEMPLATE_PX, TEMPLATE_PX), 0)
        draw = ImageDraw.Draw(img)
        for poly in polys:
            draw.polygon([(half + x * half, half + y * half) for x, y in poly], fill=255)
        out[k, 0] = np.asarray(img, dtype=np.float32) / 255.0
    return torch.from_numpy(out)


@functools.lru_cache(maxsize=1)
def template_radius() -> np.ndarray:
    """Largest distance of a shape pixel from the box centre, in box half-widths: (10,).

    The renderer keeps the centre this far from every edge, so a shape stays fully
    inside the image at any rotation.
    """
    t = templates()[:, 0].numpy()
    half = (TEMPLATE_PX - 1) / 2
    yy, xx = np.mgrid[0:TEMPLATE_PX, 0:TEMPLATE_PX]
    r = np.hypot(xx - half, yy - half) / half  # TxT
    return np.array([r[m > 0.5].max() for m in t])


def template_area() -> np.ndarray:
    """Area of each shape as a fraction of its box: (10,)."""
    return templates()[:, 0].gt(0.5).float().mean(dim=(1, 2)).numpy()
