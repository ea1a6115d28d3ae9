"""One training step and one ``features`` call of a method on a few real pairs: a broken
method (a user's plugin, most often) fails in seconds, with a message that names the problem."""

from __future__ import annotations

from typing import Sequence

import torch

from comm_diag.comm.augment import Augment
from comm_diag.comm.methods.plugins import PluginError
from comm_diag.comm.methods.registry import build_method
from comm_diag.comm.runtime import seed_global


def preflight(cfg, xs: Sequence[torch.Tensor]) -> None:
    """Build ``cfg.method`` and run one training step and one ``features`` call on the
    pairs ``xs`` (n batches Bx3xHxW in [0, 1]); PluginError naming what went wrong."""
    name = cfg.method
    try:
        seed_global(cfg.seed)
        model = build_method(cfg, len(xs))
    except PluginError:
        raise
    except (Exception, SystemExit) as e:  # a sys.exit() in user code is a failure, not a success
        hint = (" (does its __init__ call super().__init__(cfg, n_modalities) before anything else?)"
                if isinstance(e, AttributeError) and any(w in str(e) for w in ("settings", "__init__", "_modules", "_parameters"))
                else "")
        raise PluginError(f"{name}: building it from the config raised {type(e).__name__}: {e}{hint}") from None
    gen = torch.Generator().manual_seed(0)
    augs = [lambda x: Augment("crop")(x, gen)] * len(xs)
    model.train()
    try:
        out = model.step(list(xs), augs)
    except (Exception, SystemExit) as e:  # a sys.exit() in user code is a failure, not a success
        raise PluginError(f"{name}: its first training step raised {type(e).__name__}: {e}") from None
    if not isinstance(out, dict) or "loss" not in out:
        raise PluginError(f"{name}: step() must return a dict with a 'loss' entry, got {type(out).__name__}")
    loss = out["loss"]
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1 or loss.dim() != 0:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise PluginError(f"{name}: step()['loss'] must be a scalar tensor, got {shape}")
    for key, term in out.items():
        if not isinstance(term, torch.Tensor) or term.numel() != 1:
            raise PluginError(f"{name}: step()[{key!r}] must be a scalar tensor (every returned term is logged)")
    if not torch.isfinite(loss):
        raise PluginError(f"{name}: its first training step returned a non-finite loss ({float(loss.detach())})")
    if not loss.requires_grad:
        raise PluginError(f"{name}: step()['loss'] does not depend on any parameter (no gradient)")
    try:
        loss.backward()
    except (Exception, SystemExit) as e:  # a sys.exit() in user code is a failure, not a success
        raise PluginError(f"{name}: backward through its loss raised {type(e).__name__}: {e}") from None
    model.eval()
    try:
        with torch.no_grad():
            feats = model.features(list(xs))
    except (Exception, SystemExit) as e:  # a sys.exit() in user code is a failure, not a success
        raise PluginError(f"{name}: features() raised {type(e).__name__}: {e}") from None
    if not isinstance(feats, dict) or "fused" not in feats:
        got = f"a dict with the keys {', '.join(map(repr, feats)) or 'none'}" if isinstance(feats, dict) \
            else f"a {type(feats).__name__}"
        raise PluginError(f"{name}: features() must return a dict with a 'fused' entry (and optionally one per "
                          f"modality), got {got}")
    b = xs[0].shape[0]
    for key, f in feats.items():
        if not isinstance(f, torch.Tensor) or f.dim() != 2 or f.shape[0] != b:
            shape = tuple(f.shape) if isinstance(f, torch.Tensor) else type(f).__name__
            raise PluginError(f"{name}: features()[{key!r}] must be a {b}xD tensor, got {shape}")
        if not torch.isfinite(f).all():
            raise PluginError(f"{name}: features()[{key!r}] holds non-finite values")
