"""The ten textures as the authors' renderer draws them (Duplums/CoMM, dataset/trifeatures.py,
read, not copied), for the fidelity study's renderer variant (``DatasetSpec.renderer=
"authors"``): patterns on the integer pixel grid of a period of P px (10 at 224 px), with
their proportions: stripes and grid lines P//3 wide (30% on, ours 50%), a triangular
lattice of P//5 lines for hexgrid (ours a honeycomb), dots of radius 3P//7, triangles and
zigzags of half-pixel slopes, pluses in alternate rows offset by half a period, and rain as
a (P - P//3) x 1 px streak starting at each texture pixel with probability 0.05 (ours one
streak per cell).

Same interface as ``textures.PATTERNS``: lattice coordinates ``u, v`` (NxHxW, in periods,
already rotated) and the images' seeds (N,) in, a bool NxHxW out; ``u`` runs along a row
(their column index), ``v`` down (their row index). The pixel grid is the texture's: its
rotation keeps it, as theirs rotates a drawn canvas by nearest neighbour.
"""

from __future__ import annotations

import torch

from comm_diag.trifeature_gen.factors import TEXTURES
from comm_diag.trifeature_gen.textures import Pattern, noise, periods_per_pixel, solid

RAIN_PROB = 0.05


def _pixels(u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Texture pixel coordinates (int64 NxHxW along u and v) and the period P in whole pixels
    (one image pixel's step in (u, v) is 1 / period, the same for every image)."""
    p = max(int(round(1.0 / periods_per_pixel(u, v))), 3)
    return torch.floor(u * p).long(), torch.floor(v * p).long(), p


def stripes(u, v, seeds):
    _, y, p = _pixels(u, v)
    return y % p < p // 3


def grid(u, v, seeds):
    x, y, p = _pixels(u, v)
    return (y % p < p // 3) | (x % p < p // 3)


def hexgrid(u, v, seeds):
    x, y, p = _pixels(u, v)
    w, k = max(p // 5, 1), torch.floor(1.73 * y).long()  # three families of lines: x +- 1.73 y, y
    return ((x + k) % p < w) | ((x - k) % p < w) | (y % p < w)


def dots(u, v, seeds):
    x, y, p = _pixels(u, v)
    dx, dy = x % p - p // 2, y % p - p // 2
    return dx * dx + dy * dy < (3 * p // 7) ** 2


def triangles(u, v, seeds):
    x, y, p = _pixels(u, v)
    return (y % p) // 2 - (x % p - p // 2).abs() > 0


def zigzags(u, v, seeds):
    x, y, p = _pixels(u, v)
    x = torch.where((y // p) % 2 == 1, p - x % p - 1, x % p)  # every other row of cells mirrored
    off = (y % p) // 2
    return (off < x) & (x < p - p // 2 + off)


def pluses(u, v, seeds):
    x, y, p = _pixels(u, v)
    h, x, y, odd = 1.5 * p / 10, x % p, y % p, (y // p) % 2 == 1  # their half width: 1.5 px at P = 10
    centred = ((x - p // 2).abs() < h) | ((y - p // 2).abs() < h)
    offset = (x < h) | (p - x < h) | (((y - p // 2).abs() < h) & ((x - p // 2).abs() > h))
    return torch.where(odd, offset, centred)


def rain(u, v, seeds):
    """A streak of (P - P//3) x 1 texture pixels starting at each texture pixel with
    probability 0.05; each image's starts drawn from its own generator over a grid whose
    extent is fixed by the image side (never by the batch)."""
    x, y, p = _pixels(u, v)
    height, half = p - p // 3, int(1.5 * u.shape[-1]) + 2 * p
    side = 2 * half + 1
    gen, out = torch.Generator(), torch.empty(x.shape, dtype=torch.bool)
    for i, s in enumerate(seeds):
        gen.manual_seed(int(s))
        starts = (torch.rand((side, side), generator=gen) < RAIN_PROB).to(torch.int32)  # rows (v) x columns (u)
        runs = torch.cumsum(torch.cat([torch.zeros(1, side, dtype=torch.int32), starts]), 0)  # (side+1)xside
        lo = (torch.arange(side) - height + 1).clamp(min=0)
        covered = (runs[1:] - runs[lo]) > 0  # a start in the rows [r - height + 1, r] of the column
        out[i] = covered[y[i] + half, x[i] + half]
    return out


AUTHORS_PATTERNS: dict[str, Pattern] = {
    "solid": solid, "stripes": stripes, "grid": grid, "hexgrid": hexgrid, "dots": dots,
    "noise": noise, "triangles": triangles, "zigzags": zigzags, "rain": rain, "pluses": pluses,
}
assert tuple(AUTHORS_PATTERNS) == TEXTURES
