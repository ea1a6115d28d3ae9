"""Per-image statistics of a rendered shape, to compare a renderer with another one's images
(``renderer="authors"`` with the authors' own generator, whose statistics are in
``tests/trifeature_gen/reference/authors-renderer-stats.json``).

For solid-texture images only: each pixel's coverage is its projection onto the image's
colour, ``p = <x - grey, c - grey> / |c - grey|^2`` clipped to [0, 1], so a soft edge's
blend of colour and grey reads as a fraction.

- ``area``: mean coverage, a fraction of the image.
- ``cx``, ``cy``: the coverage-weighted centroid in pixels; a renderer's placement shows as
  the spread of centroids over images (``centroid_sd``: the root mean of both axes' variances).
- ``edge_soft``: the share of the shape's boundary pixels that are blended. A pixel is
  background below a quarter coverage and blended from there to 0.98; the boundary is the
  non-background pixels with a background pixel among their 8 neighbours. The reference file
  does not define its edge softness; of the definitions tried, this one gives back the file's
  per-shape values (max difference 0.018, all ten shapes) on 1,000 images of the authors'
  generator rendered afresh, so the same definition is applied to ours.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from comm_diag.trifeature_gen.factors import BACKGROUND_UINT8, COLOR_UINT8

BACKGROUND_BELOW = 0.25
FULL_FROM = 0.98


def coverage(images: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """Coverage in [0, 1] of each pixel: images NxHxWx3 uint8, colour codes (N,) -> NxHxW float64."""
    x = images.astype(np.float64) - BACKGROUND_UINT8
    c = COLOR_UINT8[np.asarray(colours)].astype(np.float64) - BACKGROUND_UINT8  # Nx3
    p = np.einsum("nhwc,nc->nhw", x, c) / (c * c).sum(1)[:, None, None]
    return np.clip(p, 0.0, 1.0)


def image_statistics(images: np.ndarray, colours: np.ndarray) -> dict[str, np.ndarray]:
    """``area``, ``cx``, ``cy`` and ``edge_soft`` of each image (arrays (N,)); see the module."""
    p = coverage(images, colours)
    n, h, w = p.shape
    mass = p.sum((1, 2))
    rows, cols = np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64)
    background = torch.from_numpy(p <= BACKGROUND_BELOW).float()[:, None]  # Nx1xHxW
    near_background = F.max_pool2d(background, 3, stride=1, padding=1)[:, 0].numpy() > 0  # 8 neighbours
    boundary = (p > BACKGROUND_BELOW) & near_background
    blended = boundary & (p < FULL_FROM)
    return {
        "area": p.mean((1, 2)),
        "cx": (p.sum(1) @ cols) / mass,
        "cy": (p.sum(2) @ rows) / mass,
        "edge_soft": blended.sum((1, 2)) / np.maximum(boundary.sum((1, 2)), 1),
    }


def summarise(stats: dict[str, np.ndarray]) -> dict[str, float]:
    """One renderer's figures for one shape: mean area, centroid spread (px), mean edge softness."""
    return {
        "area_mean": float(stats["area"].mean()),
        "centroid_sd_px": float(np.sqrt((stats["cx"].var() + stats["cy"].var()) / 2)),
        "edge_soft_mean": float(stats["edge_soft"].mean()),
    }
