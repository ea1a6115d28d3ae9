"""The ten textures as vectorised binary patterns.

Every pattern takes texture coordinates ``u, v`` (NxHxW, already rotated and
measured in periods, so one lattice cell is 1x1) and the images' integer seeds
(N,), and returns a bool NxHxW tensor that is True where the shape takes its
colour. Random patterns draw from one ``torch.Generator`` per image, seeded by
that image alone. Line widths are fractions of the
period, which the renderer keeps at or above ``MIN_PERIOD_PX`` so that no line is
thinner than about 1.4 px.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from comm_diag.trifeature_gen.factors import TEXTURES

Pattern = Callable[[torch.Tensor, torch.Tensor, np.ndarray], torch.Tensor]

_SQRT3 = math.sqrt(3.0)


def _frac(x: torch.Tensor) -> torch.Tensor:
    return x - torch.floor(x)


def per_image_rand(seeds: np.ndarray, shape: tuple[int, ...]) -> torch.Tensor:
    """Uniform [0, 1) floats, image i's drawn from a generator seeded by seeds[i] only:
    Nx(shape). A loop over images, not pixels."""
    gen = torch.Generator()
    out = torch.empty((len(seeds), *shape))
    for i, s in enumerate(seeds):
        gen.manual_seed(int(s))
        torch.rand(shape, generator=gen, out=out[i])
    return out


def periods_per_pixel(u: torch.Tensor, v: torch.Tensor) -> float:
    """One image pixel's step in (u, v), 1 / period: the same for every image and rotation."""
    return math.hypot(float(u[0, 0, 1] - u[0, 0, 0]), float(v[0, 0, 1] - v[0, 0, 0]))


def solid(u, v, seeds):
    return torch.ones_like(u, dtype=torch.bool)


def stripes(u, v, seeds):
    return _frac(u) < 0.5


def grid(u, v, seeds):
    return (_frac(u) < 0.3) | (_frac(v) < 0.3)


def hexgrid(u, v, seeds):
    # Honeycomb edges: distance to the nearest hexagon centre of a lattice with
    # centres 1.2 periods apart, in the hexagon norm; edges where it nears 0.5.
    x, y = u / 1.2, v / 1.2
    ax, ay = _frac(x) - 0.5, _frac(y / _SQRT3) * _SQRT3 - _SQRT3 / 2
    bx, by = _frac(x - 0.5) - 0.5, _frac((y - _SQRT3 / 2) / _SQRT3) * _SQRT3 - _SQRT3 / 2
    use_a = ax * ax + ay * ay < bx * bx + by * by
    gx, gy = torch.where(use_a, ax, bx).abs(), torch.where(use_a, ay, by).abs()
    dist = torch.maximum(gx * 0.5 + gy * (_SQRT3 / 2), gx)
    return dist > 0.5 - 0.14


def dots(u, v, seeds):
    fu, fv = _frac(u) - 0.5, _frac(v) - 0.5
    return fu * fu + fv * fv < 0.32 ** 2


def noise(u, v, seeds):
    # i.i.d. Bernoulli(0.5) per pixel, in image (not texture) coordinates
    return per_image_rand(seeds, tuple(u.shape[1:])) < 0.5


def triangles(u, v, seeds):
    fu, fv = _frac(u * 0.8) - 0.5, _frac(v * 0.8)
    return (fv > 0.1) & (fv < 0.9) & (fu.abs() < 0.5 * (fv - 0.1) / 0.8)


def zigzags(u, v, seeds):
    tri = (2 * _frac(u * 0.5) - 1).abs()  # triangle wave in [0, 1] along u
    return _frac(v + 0.8 * tri) < 0.45


def rain(u, v, seeds):
    # One streak per lattice cell (1 wide, 2 tall, in periods): 0.34 wide and 1.6
    # long, at a random horizontal offset and height, present in 9 of 10 cells
    # (about 25% of the shape is on, so the silhouette stays visible).
    n = u.shape[0]
    iu, iv = torch.floor(u), torch.floor(v / 2)
    # the cell grid's extent from the image side and the period (|u|, |v| <= 2 x side / period
    # + 1), the same for every image, never from the chunk's coordinates: an image's cells
    # may not depend on what it is rendered with
    half = int(round(2 * u.shape[-1] * periods_per_pixel(u, v), 3)) + 2
    side = 2 * half + 1
    cells = per_image_rand(seeds, (3, side * side))  # Nx3xC: x offset, y offset, presence
    flat = ((iu.long() + half) * side + iv.long() + half).view(n, 1, -1).expand(n, 3, -1)
    off_x, off_y, present = torch.gather(cells, 2, flat).view(n, 3, *u.shape[1:]).unbind(1)
    off_x = 0.2 + 0.6 * off_x
    dy = v - 2 * iv - 0.4 * off_y
    return (present < 0.9) & ((u - iu - off_x).abs() < 0.17) & (dy >= 0) & (dy < 1.6)


def pluses(u, v, seeds):
    fu, fv = (_frac(u * 0.8) - 0.5).abs(), (_frac(v * 0.8) - 0.5).abs()
    return ((fu < 0.11) & (fv < 0.38)) | ((fu < 0.38) & (fv < 0.11))


PATTERNS: dict[str, Pattern] = {
    "solid": solid, "stripes": stripes, "grid": grid, "hexgrid": hexgrid, "dots": dots,
    "noise": noise, "triangles": triangles, "zigzags": zigzags, "rain": rain, "pluses": pluses,
}
assert tuple(PATTERNS) == TEXTURES
