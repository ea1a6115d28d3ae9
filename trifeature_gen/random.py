"""Counter-based randomness: every random number is a pure function of (seed, index, stream).

The renderer draws an image's rotation, position and texture phase from its own
index rather than from a shared stream, so image i is the same whether it is
rendered alone, in a chunk or in another order.
"""

from __future__ import annotations

import numpy as np

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return x ^ (x >> np.uint64(31))


def uniform(seed: int, index: np.ndarray, stream: int) -> np.ndarray:
    """Uniform floats in [0, 1) keyed by (seed, index, stream): same shape as index, float64."""
    idx = np.asarray(index, dtype=np.uint64)
    with np.errstate(over="ignore"):
        key = _splitmix64(np.uint64(seed & 0xFFFFFFFFFFFFFFFF) ^ _splitmix64(np.uint64(stream)))
        h = _splitmix64(idx ^ key)
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def key32(seed: int, index: np.ndarray, stream: int) -> np.ndarray:
    """A 32-bit integer seed per index (for an image's own generator): int64 in [0, 2^32)."""
    return (uniform(seed, index, stream) * 2**32).astype(np.int64)
