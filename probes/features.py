"""Frozen-representation extraction for the probe sets, batched, no augmentation."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

import comm_diag.trifeature_gen as tg
from comm_diag.comm.methods import Method, as_batch

def _batches(n: int, size: int) -> Iterator[slice]:
    for s in range(0, n, size):
        yield slice(s, min(s + size, n))


def _weights_digest(model: torch.nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for t in model.state_dict().values()]


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
    sources = [ds.modality(pair_set, i) for i in range(ds.n_modalities)]  # (images, index) per modality
    out: dict[str, list[np.ndarray]] = {}
    try:
        encoded = [torch.cat([model.encode(i, as_batch(imgs[s], dev)) for s in _batches(len(imgs), batch_size)])
                   for i, (imgs, _) in enumerate(sources)]
        fuse = lambda sl: model.fuse([e[index[sl]] for e, (_, index) in zip(encoded, sources)])  # noqa: E731
    except NotImplementedError:
        fuse = lambda sl: model.features([as_batch(imgs[index[sl]], dev) for imgs, index in sources])  # noqa: E731
    for sl in _batches(ds.n_samples(pair_set), batch_size):
        for name, z in fuse(sl).items():
            out.setdefault(name, []).append(z.float().cpu().numpy())
    after = _weights_digest(model)
    assert all(torch.equal(a, b) for a, b in zip(before, after)), "model weights changed during probing"
    return {k: np.concatenate(v) for k, v in out.items()}
