"""Frozen-representation extraction for the probe sets, batched: no augmentation, or (the
authors' probe protocol) one seeded random resized crop of every image."""

from __future__ import annotations

import zlib
from typing import Iterator, Optional

import numpy as np
import torch

from comm_diag.errors import InputError
import comm_diag.trifeature_gen as tg
from comm_diag.comm.augment import Augment
from comm_diag.comm.methods import Method, as_batch


def _batches(n: int, size: int) -> Iterator[slice]:
    for s in range(0, n, size):
        yield slice(s, min(s + size, n))


def _call(name: str, what: str, fn, *args):
    """A method's encode / fuse / features call; its failures, a SystemExit included, as
    one ValueError naming the method."""
    try:
        return fn(*args)
    except (NotImplementedError, KeyboardInterrupt):
        raise
    except (Exception, SystemExit) as e:
        raise InputError(f"{name}: {what}() raised {type(e).__name__}: {e}") from None


def _weights_digest(model: torch.nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for t in model.state_dict().values()]


@torch.no_grad()
def extract(model: Method, ds: tg.Dataset, pair_set: str, batch_size: int = 512,
            crop: Optional[tuple[float, float]] = None) -> dict[str, np.ndarray]:
    """Representations of every pair of a set: name ("fused", "modality1"...) -> PxD float32.

    ``crop`` (scale range): every image is first randomly resized-cropped (the authors' probe
    protocol: RandomResizedCrop(scale 0.5-1) on probe and test images), once per image, from
    a generator seeded by the pair set and the modality.

    Methods that split ``features`` into ``encode``/``fuse`` get every image
    encoded once, then fused per pair; others are called on batches of pairs.
    Raises if the model's weights changed while probing (they must be frozen).
    """
    name = type(model).__name__
    if getattr(model, "n_modalities", ds.n_modalities) != ds.n_modalities:
        raise InputError(f"the model ({name}) takes {model.n_modalities} modalities but the dataset {ds.root} has "
                         f"{ds.n_modalities}: probe it on data of its own kind")
    before = _weights_digest(model)
    model.eval()
    dev = model.device
    sources = [ds.modality(pair_set, i) for i in range(ds.n_modalities)]  # (images, index) per modality
    if crop is not None:  # the images cropped once each, then encoded like the others
        cropper = Augment("crop", crop_scale=crop)
        gens = [torch.Generator(device=dev).manual_seed(zlib.crc32(f"{pair_set}:{i}".encode()))
                for i in range(len(sources))]
        sources = [(np.concatenate([(cropper(as_batch(imgs[s], dev), gens[i]) * 255).round().byte()
                                    .permute(0, 2, 3, 1).cpu().numpy() for s in _batches(len(imgs), batch_size)]),
                    index) for i, (imgs, index) in enumerate(sources)]
    out: dict[str, list[np.ndarray]] = {}
    try:
        encoded = [torch.cat([_call(name, "encode", model.encode, i, as_batch(imgs[s], dev))
                              for s in _batches(len(imgs), batch_size)])
                   for i, (imgs, _) in enumerate(sources)]
        fuse = lambda sl: _call(name, "fuse", model.fuse,  # noqa: E731
                                [e[index[sl]] for e, (_, index) in zip(encoded, sources)])
    except NotImplementedError:
        fuse = lambda sl: _call(name, "features", model.features,  # noqa: E731
                                [as_batch(imgs[index[sl]], dev) for imgs, index in sources])
    for sl in _batches(ds.n_samples(pair_set), batch_size):
        feats = fuse(sl)
        if not isinstance(feats, dict) or not feats:
            raise InputError(f"{name}: features() must return a dict of representations, got {type(feats).__name__}")
        for rep, z in feats.items():
            n = sl.stop - sl.start
            if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[0] != n:
                shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
                raise InputError(f"{name}: representation {rep!r} must be a {n}xD tensor, got {shape}")
            if not torch.isfinite(z).all():
                raise InputError(f"{name}: representation {rep!r} holds non-finite values (NaN or inf) on "
                                 f"{pair_set} pairs: it cannot be probed")
            out.setdefault(rep, []).append(z.float().cpu().numpy())
    after = _weights_digest(model)
    assert all(torch.equal(a, b) for a, b in zip(before, after)), "model weights changed during probing"
    return {k: np.concatenate(v) for k, v in out.items()}
