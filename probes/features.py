"""Frozen-representation extraction for the probe sets, batched, no augmentation."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

import comm_diag.trifeature_gen as tg
from comm_diag.comm.methods import Method

def _batches(n: int, size: int) -> Iterator[slice]:
    for s in range(0, n, size):
        yield slice(s, min(s + size, n))


def _weights_digest(model: torch.nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for t in model.state_dict().values()]


def _as_float(x: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(x).to(device).permute(0, 3, 1, 2).float() / 255.0  # Bx3xHxW


@torch.no_grad()
def extract(model: Method, ds: tg.Dataset, pair_set: str, batch_size: int = 512) -> dict[str, np.ndarray]:
    """Representations of every pair of a set: name ("fused", "modality1"...) -> PxD float32.

    Methods that split ``features`` into ``encode``/``fuse`` get every image
    encoded once, then fused per pair; others are called on batches of pairs.
    Raises if the model's weights changed while probing (they must be frozen).
    """
    before = _weights_digest(model)
    model.eval()
    dev = model.device
    imgs = ds.images[ds.split_of(pair_set)]
    pairs = ds.pairs[pair_set]
    out: dict[str, list[np.ndarray]] = {}
    try:
        encoded = [torch.cat([model.encode(i, _as_float(imgs[s], dev)) for s in _batches(len(imgs), batch_size)])
                   for i in range(2)]
        fuse = lambda sl: model.fuse([encoded[0][pairs.i1[sl]], encoded[1][pairs.i2[sl]]])  # noqa: E731
    except NotImplementedError:
        fuse = lambda sl: model.features([_as_float(imgs[pairs.i1[sl]], dev),  # noqa: E731
                                          _as_float(imgs[pairs.i2[sl]], dev)])
    for sl in _batches(len(pairs), batch_size):
        for name, z in fuse(sl).items():
            out.setdefault(name, []).append(z.float().cpu().numpy())
    after = _weights_digest(model)
    assert all(torch.equal(a, b) for a, b in zip(before, after)), "model weights changed during probing"
    return {k: np.concatenate(v) for k, v in out.items()}
