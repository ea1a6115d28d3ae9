"""The disk a study will write, said before it starts: the datasets it generates (uint8
images, 3 x size x size bytes each, and the pair tables) and each run's checkpoints (the
weights after every epoch and the initialisation, 4 bytes a value, plus last.pt with
AdamW's two moments). What already exists is not counted."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import comm_diag.trifeature_gen as tg

PAIR_ROW_BYTES = 24  # a row of a pairs CSV (two indices and the labels), about
ADAM_COPIES = 3  # last.pt: the weights and AdamW's two moments


def dataset_bytes(spec: tg.DatasetSpec) -> int:
    """The bytes ``generate`` writes for ``spec`` (PNG previews aside)."""
    images = sum(spec.images().values()) * 3 * spec.size * spec.size
    pairs = (spec.train_pairs + spec.probe_pairs + spec.test_pairs) * PAIR_ROW_BYTES
    return images + pairs


def values_of(config: dict, n_modalities: int = 2) -> int:
    """How many numbers a run's model holds (parameters and buffers), built on the meta
    device: no memory, no initialisation."""
    import torch

    from comm_diag.comm.config import TrainConfig
    from comm_diag.comm.methods.registry import build_method

    with torch.device("meta"):
        model = build_method(TrainConfig.from_dict(config), n_modalities)
    return sum(p.numel() for p in model.parameters()) + sum(b.numel() for b in model.buffers())


def checkpoint_bytes(config: dict, n_modalities: int = 2) -> int:
    """The checkpoints a run of ``config`` writes: epoch_000 to epoch_N, and last.pt."""
    return 4 * values_of(config, n_modalities) * (config["epochs"] + 1 + ADAM_COPIES)


def study_bytes(jobs: Iterable, specs: Iterable[tuple[Path, tg.DatasetSpec]]) -> dict[str, int]:
    """{"datasets", "checkpoints"}: the bytes still to write for ``specs`` (folder, spec:
    the datasets a study generates) and the runs of ``jobs`` not yet started."""
    data = sum(dataset_bytes(spec) for folder, spec in specs if not (Path(folder) / "manifest.json").is_file())
    sizes: dict[str, int] = {}
    total = 0
    for job in jobs:
        if (Path(job.run) / "config.json").is_file():
            continue
        key = repr(sorted((k, v) for k, v in job.config.items() if k != "seed"))  # one build per config
        if key not in sizes:
            sizes[key] = checkpoint_bytes(job.config)
        total += sizes[key]
    return {"datasets": data, "checkpoints": total}


def said(estimate: dict[str, int], out: Path) -> str:
    """'about 412 MB to write in OUT (datasets 64 MB, checkpoints 348 MB)'."""
    mb = {k: v / 2**20 for k, v in estimate.items()}
    return (f"disk: about {sum(mb.values()):,.0f} MB to write in {out} (datasets {mb['datasets']:,.0f} MB, "
            f"checkpoints {mb['checkpoints']:,.0f} MB)")
