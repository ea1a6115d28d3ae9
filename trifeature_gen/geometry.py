"""The renderer's geometry and styles as numbers and checks, without torch: the dataset spec
validates against them when a command only parses its options (``comm-diag --help``)."""

from __future__ import annotations

from typing import Optional

from comm_diag.errors import InputError

MIN_SIZE = 32
REFERENCE_SIZE = 224  # the paper's resolution; geometry below is defined there
REFERENCE_BOX_PX = 128
REFERENCE_PERIOD_PX = 10.0
# Below this period the finest lines (0.24 period) would be thinner than ~1.4 px
# and alias; it is the official period at 128 px, i.e. about 2x the official
# scale at 64 px, as in the CPU prototype of the protocol.
MIN_PERIOD_PX = REFERENCE_PERIOD_PX * 128 / REFERENCE_SIZE
MAX_ANGLE_DEG = 45.0
# comm-diag's renderer, or the authors' (Duplums/CoMM): their shape templates and placement
# (authors_shapes), their texture patterns, a soft (bilinear) shape edge blending the colour
# with the grey, integer angles
STYLES = ("comm-diag", "authors")
# Bumped whenever a style's pixels change, recorded in a dataset's manifest: a study never
# reuses a dataset drawn by an earlier revision (2: the authors' shapes and placement, 0.9)
STYLE_REVISION = {"comm-diag": 1, "authors": 2}


def check_style(style: str) -> None:
    """ValueError unless ``style`` is one of ``STYLES`` (the renderer and DatasetSpec ask here)."""
    if style not in STYLES:
        raise InputError(f"unknown renderer {style!r}; choose from {', '.join(STYLES)}")


def texture_period(size: int) -> float:
    """Texture period in pixels at a given image side: the official 10 px at 224,
    scaled with the image, but never below MIN_PERIOD_PX."""
    return max(REFERENCE_PERIOD_PX * size / REFERENCE_SIZE, MIN_PERIOD_PX)


def check_geometry(size: float, period: Optional[float] = None) -> None:
    """ValueError unless the image side is an integer >= MIN_SIZE px and the texture period
    (None: the renderer's default for the size) a number from 2 px to half the shape's box:
    a longer period repeats less than twice across the shape, and textures that differ only
    in their fine structure render alike (at 1e6 px five of the ten were pixel-identical,
    while the manifest still claimed 3.32 bits of texture)."""
    if int(size) != size or size < MIN_SIZE:
        raise InputError(f"image size must be an integer >= {MIN_SIZE} px, got {size}")
    longest = size * REFERENCE_BOX_PX / REFERENCE_SIZE / 2
    if period is not None and not 2.0 <= period <= longest:
        raise InputError(f"texture period must be from 2 px to {longest:.1f} px (half the shape's box at "
                         f"{int(size)} px), got {period}")
