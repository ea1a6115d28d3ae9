"""Batched, seeded Trifeature renderer with a disentanglement_lib-style factor interface.

An image is a shape (one of ten templates, in a box of 4/7 of the side, rotated
by an angle in [-45, 45) degrees, placed fully inside the image) whose pixels
take the colour where an independently rotated binary texture is on, over a
grey background. Image ``i`` is a pure function of ``(seed, i, factors[i])``.
``style="authors"`` draws the authors' shapes, placement and soft edge instead
(``authors_shapes``) and their textures (``authors_textures``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from comm_diag.errors import InputError
from comm_diag.trifeature_gen import authors_shapes as _authors_shapes
from comm_diag.trifeature_gen.geometry import (MAX_ANGLE_DEG, REFERENCE_BOX_PX, REFERENCE_SIZE, check_geometry,
                                               check_style, texture_period)
from comm_diag.trifeature_gen import shapes as _shapes
from comm_diag.trifeature_gen.factors import BACKGROUND_UINT8, COLOR_UINT8, FACTOR_NAMES, FACTOR_SIZES, TEXTURES
from comm_diag.trifeature_gen.factors import sample_factors as _sample_factors
from comm_diag.trifeature_gen.random import key32, uniform
from comm_diag.trifeature_gen.authors_textures import AUTHORS_PATTERNS
from comm_diag.trifeature_gen.textures import PATTERNS

# Streams of the counter-based generator, one per random quantity of an image.
_ANGLE, _CX, _CY, _TEX_ANGLE, _TEX_U, _TEX_V, _PIXEL_KEY = range(7)


@dataclass(frozen=True)
class ImageParams:
    """Per-image random geometry, all arrays of shape (N,)."""

    angle: np.ndarray  # shape rotation, radians
    cx: np.ndarray  # shape centre, pixels
    cy: np.ndarray
    tex_angle: np.ndarray  # texture rotation, radians
    tex_u: np.ndarray  # texture phase, periods
    tex_v: np.ndarray
    key: np.ndarray  # int64 seed of the image's own generator (noise, rain)


class Trifeature:
    """Ground-truth-factor dataset of Hermann & Lampinen (2020), rendered on demand.

    Args:
        size: image side in pixels (>= 32; 64 is the CPU preset, 224 the paper's).
        period: texture period in pixels; default ``texture_period(size)``.
        chunk: images rendered per batch (memory only; never changes the pixels).
        style: ``STYLES``: comm-diag's patterns and hard shape edge, or the authors'.
    """

    factor_names = FACTOR_NAMES
    factors_num_values = FACTOR_SIZES

    def __init__(self, size: int = 64, period: Optional[float] = None, chunk: int = 128, style: str = "comm-diag"):
        check_geometry(size, period)
        check_style(style)
        self.style = style
        self.size = int(size)
        self.period = float(period) if period is not None else texture_period(self.size)
        self.box = REFERENCE_BOX_PX * self.size / REFERENCE_SIZE
        self.chunk = int(chunk)

    @property
    def num_factors(self) -> int:
        return len(self.factor_names)

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n uniform factor triples: nx3 int64 codes (shape, texture, color)."""
        return _sample_factors(n, rng)

    def params(self, factors: np.ndarray, seed: int, indices: np.ndarray) -> ImageParams:
        """The random geometry of each image, a pure function of (seed, index, shape)."""
        idx = np.asarray(indices, dtype=np.int64)
        half_box = self.box / 2
        # keep the rotated shape inside the image whatever the angle
        reach = _shapes.template_radius()[factors[:, 0]] * half_box
        lo, span = reach, np.maximum(self.size - 2 * reach, 0.0)
        deg = np.pi / 180.0

        def angle(stream: int) -> np.ndarray:  # radians in [-45, 45) degrees; whole degrees for the authors'
            a = (uniform(seed, idx, stream) * 2 - 1) * MAX_ANGLE_DEG
            return (np.floor(a) if self.style == "authors" else a) * deg

        shape_angle, u, v = angle(_ANGLE), uniform(seed, idx, _CX), uniform(seed, idx, _CY)
        if self.style == "authors":
            cx, cy = _authors_shapes.centres(shape_angle, u, v, self.size)
        else:
            cx, cy = lo + u * span, lo + v * span
        return ImageParams(
            angle=shape_angle,
            cx=cx,
            cy=cy,
            tex_angle=angle(_TEX_ANGLE),
            tex_u=uniform(seed, idx, _TEX_U),
            tex_v=uniform(seed, idx, _TEX_V),
            key=key32(seed, idx, _PIXEL_KEY),
        )

    def render(
        self,
        factors: np.ndarray,
        seed: int,
        indices: Optional[np.ndarray] = None,
        progress: Optional[Callable[[int], None]] = None,
    ) -> np.ndarray:
        """Render images: factors Nx3 codes, indices (N,) image ids (default 0..N-1).

        Returns uint8 NxHxWx3. ``progress(k)`` is called after each chunk of k images.
        """
        factors = np.asarray(factors, dtype=np.int64).reshape(-1, 3)
        if factors.size and ((factors < 0).any() or (factors >= np.array(FACTOR_SIZES)).any()):
            raise InputError("factor codes out of range")
        n = len(factors)
        indices = np.arange(n, dtype=np.int64) if indices is None else np.asarray(indices, np.int64)
        if indices.shape != (n,):
            raise InputError(f"indices must have shape ({n},), got {indices.shape}")
        out = np.empty((n, self.size, self.size, 3), dtype=np.uint8)
        p = self.params(factors, seed, indices)
        # Chunks hold one texture each, so every chunk evaluates one pattern only.
        order = np.argsort(factors[:, 1], kind="stable")
        bounds = np.flatnonzero(np.diff(factors[order, 1])) + 1
        for group in np.split(order, bounds) if n else []:
            for start in range(0, len(group), self.chunk):
                sel = group[start:start + self.chunk]
                part = ImageParams(*(getattr(p, f)[sel] for f in ImageParams.__dataclass_fields__))
                out[sel] = self._render_chunk(factors[sel], part)
                if progress is not None:
                    progress(len(sel))
        return out

    @torch.no_grad()
    def _render_chunk(self, factors: np.ndarray, p: ImageParams) -> np.ndarray:
        """Render images that share one texture: factors Nx3, returns NxSxSx3 uint8."""
        n, s = len(factors), self.size
        # Every per-image coefficient is computed in float64 numpy; per-pixel work
        # is then one multiply per axis and one add, exact whatever the batch or
        # SIMD path, so image i never depends on what it is rendered with.
        col = lambda a: torch.from_numpy(np.asarray(a, dtype=np.float32))  # noqa: E731
        pix = torch.arange(s, dtype=torch.float64) + 0.5

        # shape: template coordinates q = R(-angle) (p - c) * 2 / box, per pixel
        # q = x * a + y * b with a, b per image and the centre folded into them.
        authors = self.style == "authors"
        # align_corners: q = +-1 at the first and last template samples, T - 1 samples apart
        samples = _authors_shapes.BOX if authors else _shapes.TEMPLATE_PX
        k = 2.0 / (self.box * ((samples - 1) / samples if authors else 1.0))
        cos, sin = np.cos(p.angle) * k, np.sin(p.angle) * k
        ax = np.stack([cos, -sin], axis=1)[:, None, None, :]  # Nx1x1x2: dq/dx
        bx = np.stack([sin, cos], axis=1)[:, None, None, :]  # Nx1x1x2: dq/dy
        off = -(p.cx[:, None, None, None] * ax + p.cy[:, None, None, None] * bx)
        xs = col(pix.numpy()[None, None, :, None] * ax)  # Nx1xSx2
        ys = col(pix.numpy()[None, :, None, None] * bx + off)  # NxSx1x2
        grid = xs + ys  # NxSxSx2 (x along W, y along H)
        if authors:
            # their rotation interpolates between template samples only: 0 beyond the box,
            # so an edge on the box's border stays hard
            tmpl = _authors_shapes.templates()[torch.from_numpy(factors[:, 0])]  # Nx1xBxB
            cover = F.grid_sample(tmpl, grid, mode="bilinear", padding_mode="border", align_corners=True)[:, 0]
            cover = cover * (grid.abs() <= 1).all(dim=-1)  # NxSxS
        else:
            tmpl = _shapes.templates()[torch.from_numpy(factors[:, 0])]  # Nx1xTxT
            cover = F.grid_sample(tmpl, grid, mode="bilinear", padding_mode="zeros", align_corners=True)[:, 0]

        # texture: lattice coordinates (u, v) = R(tex_angle) p / period + phase
        kp = 1.0 / self.period
        tc, ts = np.cos(p.tex_angle) * kp, np.sin(p.tex_angle) * kp
        xs = col(pix.numpy()[None, :] * np.stack([tc, -ts], 1)[:, :, None])  # Nx2xS: (du, dv) per x
        ys = col(pix.numpy()[None, :] * np.stack([ts, tc], 1)[:, :, None]
                 + np.stack([p.tex_u, p.tex_v], 1)[:, :, None])  # Nx2xS
        u = xs[:, 0, None, :] + ys[:, 0, :, None]  # NxSxS
        v = xs[:, 1, None, :] + ys[:, 1, :, None]  # NxSxS
        patterns = AUTHORS_PATTERNS if self.style == "authors" else PATTERNS
        on = patterns[TEXTURES[factors[0, 1]]](u, v, p.key)
        if authors:
            # their soft shape edge: colour x coverage + grey x (1 - coverage), floored to uint8
            alpha = (cover * on).view(n, s, s, 1)  # NxSxSx1
            colour = torch.from_numpy(COLOR_UINT8[factors[:, 2]].astype(np.float32)).view(n, 1, 1, 3)
            grey = torch.from_numpy(BACKGROUND_UINT8.astype(np.float32))
            return torch.floor(grey + alpha * (colour - grey) + 1e-4).clamp(0, 255).to(torch.uint8).numpy()
        mask = cover > 0.5

        # background + on * (colour - background) in wrapping uint8 arithmetic:
        # exact for on in {0, 1}, and several times faster than torch.where
        # broadcast over the RGB axis
        colored = (mask & on).view(n, s, s, 1).to(torch.uint8)  # NxSxSx1
        delta = (COLOR_UINT8[factors[:, 2]].astype(np.int16) - BACKGROUND_UINT8) % 256
        delta = torch.from_numpy(delta.astype(np.uint8)).view(n, 1, 1, 3)
        return (colored * delta + torch.from_numpy(BACKGROUND_UINT8)).numpy()


def trial_pairs(size: int, n: int = 16, seed: int = 0) -> list[np.ndarray]:
    """n freshly rendered pairs sharing their shape, as two uint8 batches nxHxWx3: real
    inputs for a method's one-step trial (``comm.methods.preflight``) before any dataset exists."""
    tf = Trifeature(size)
    f1 = tf.sample_factors(n, np.random.default_rng([seed, 1]))
    f2 = tf.sample_factors(n, np.random.default_rng([seed, 2]))
    f2[:, 0] = f1[:, 0]
    return [tf.render(f, seed, indices=np.arange(n) + k * n) for k, f in enumerate((f1, f2))]
