"""DatasetSpec: every number and role of a bimodal Trifeature dataset, in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import numpy as np

from comm_diag.errors import InputError
from comm_diag.dict_config import DictConfig, setting  # re-exported: DatasetSpec's base
from comm_diag.trifeature_gen.factors import FACTOR_NAMES, FACTOR_SIZES
from comm_diag.trifeature_gen.geometry import check_geometry, check_style

PAIR_SETS = ("train", "probe_train", "test")
SPLIT_OF = {"train": "train", "probe_train": "train", "test": "test"}  # the image split each pair set draws from
COMBINATIONS = int(np.prod(FACTOR_SIZES))  # 1000 (shape, texture, colour) combinations

# Independent numpy streams derived from the seed, one per purpose, so that
# e.g. the mapping never depends on how many numbers the split consumed.
STREAM_SPLIT, STREAM_MAPPING, STREAM_PAIRS = 1, 2, 3
MAX_SEED = 2**32 - 1  # seeds are combined with offsets into 64-bit generator seeds: this leaves room


def check_seed(seed: int) -> None:
    if not 0 <= seed <= MAX_SEED:
        raise InputError(f"seed must be >= 0 and at most {MAX_SEED} (2^32 - 1), got {seed}")


@dataclass(frozen=True)
class DatasetSpec(DictConfig):
    """A bimodal Trifeature dataset (protocol sections 1-2); defaults are the paper's."""

    _what = "dataset settings"

    size: int = setting(64, "Image side in px (>= 32; 64: the CPU preset; 224: the paper's)")
    seed: int = setting(0, "Seed of split, mapping, pairs and pixels")
    synergy: bool = setting(False, "Bias the train pairs to obey the synergy mapping")
    shared: str = setting("shape", "Attribute both images share (redundancy)")
    unique: str = setting("texture", "Attribute drawn independently per image (uniqueness)")
    synergy_src: str = setting("texture", "Synergy label: 1 iff synergy_tgt(x2) == m(synergy_src(x1))")
    synergy_tgt: str = setting("color", "The synergy mapping's target attribute")
    train_pairs: int = setting(10_000, "Training pairs")
    probe_pairs: int = setting(10_000, "Unbiased pairs of train images, to fit probes")
    test_pairs: int = setting(4_096, "Unbiased pairs of test images, to score probes (clamped to those allowed)")
    all_test_pairs: bool = setting(False, "Score probes on every ordered pair of test images sharing the shared "
                                          "attribute, an image with itself included (the authors' test set); "
                                          "replaces --test-pairs")
    views: int = setting(3, "Renders per train combination (rotation and position differ)")
    test_views: int = setting(1, "Renders per test combination")
    train_fraction: float = setting(0.8, "Fraction of the 1000 combinations in train")
    share_prob: float = setting(1.0, "Fraction of pairs drawn among those sharing the shared attribute")
    synergy_prob: float = setting(1.0, "Fraction of biased train pairs drawn among those obeying the mapping")
    train_share_prob: Optional[float] = setting(None, "--share-prob of the train pairs alone (a redundancy dose: "
                                                      "probe and test pairs keep --share-prob); none: --share-prob")
    period: Optional[float] = setting(None, "Texture period in px; none: the renderer's default")
    renderer: str = setting("comm-diag", "Texture patterns and shape edge: comm-diag, or authors (those of "
                                         "Duplums/CoMM's renderer: the fidelity study's variant)")

    def validate(self) -> "DatasetSpec":
        """Raise ValueError with one clear sentence if the spec is unusable."""
        self.check_types(self.to_dict())
        for role in ("shared", "unique", "synergy_src", "synergy_tgt"):
            value = getattr(self, role)
            if value not in FACTOR_NAMES:
                raise InputError(f"unknown attribute {value!r} for --{role.replace('_', '-')}; "
                                 f"choose from {', '.join(FACTOR_NAMES)}")
        if self.shared == self.unique:
            raise InputError(f"{self.shared!r} cannot be both the shared and the unique attribute: "
                             "the uniqueness task would be redundancy")
        if self.shared in (self.synergy_src, self.synergy_tgt):
            raise InputError(f"the shared attribute {self.shared!r} cannot take part in the synergy "
                             "mapping: one image alone would then determine the synergy label")
        check_geometry(self.size, self.period)
        check_style(self.renderer)
        for name in ("share_prob", "synergy_prob", "train_fraction", "train_share_prob"):
            p = getattr(self, name)
            if p is not None and not 0.0 <= p <= 1.0:
                raise InputError(f"{name.replace('_', '-')} must be in [0, 1], got {p}")
        if not 0.0 < self.train_fraction < 1.0:
            raise InputError(f"train-fraction must be strictly between 0 and 1, got {self.train_fraction}")
        for name in ("train_pairs", "probe_pairs", "test_pairs", "views", "test_views"):
            if getattr(self, name) < 1:
                raise InputError(f"{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.all_test_pairs and self.test_pairs != type(self).test_pairs:
            raise InputError(f"--all-test-pairs takes every pair of test images sharing {self.shared!r}; "
                             f"--test-pairs {self.test_pairs} contradicts it: give one of them")
        if self.all_test_pairs and self.share_prob != 1.0:
            raise InputError(f"--all-test-pairs takes every pair sharing {self.shared!r}: it needs --share-prob 1 "
                             f"(got {self.share_prob}), whose unshared pairs have no 'every' to take")
        check_seed(self.seed)
        self._check_size()
        return self

    def share_prob_of(self, pair_set: str) -> float:
        """The fraction of a pair set's pairs drawn among those sharing ``shared``."""
        return self.train_share_prob if pair_set == "train" and self.train_share_prob is not None else self.share_prob

    def images(self) -> dict[str, int]:
        """Images per split: every combination of a split rendered views (test_views) times."""
        n_train = int(round(COMBINATIONS * self.train_fraction))
        return {"train": n_train * self.views, "test": (COMBINATIONS - n_train) * self.test_views}

    def _check_size(self) -> None:
        """Refuse, before any work, a dataset that cannot be held in memory or paired."""
        n = self.images()
        for name, split in (("train_pairs", "train"), ("probe_pairs", "train"),
                            *((("test_pairs", "test"),) if not self.all_test_pairs else ())):
            most = n[split] * (n[split] - 1)  # ordered pairs of distinct images, drawn without replacement
            if getattr(self, name) > most:
                raise InputError(f"{name.replace('_', '-')} must be at most {most:,} (the ordered pairs of distinct "
                                 f"{split} images), got {getattr(self, name):,}")
        need = sum(n.values()) * self.size * self.size * 3 * 2  # uint8 images, and as much again while rendering
        have = physical_memory()
        if have and need > have // 2:
            raise InputError(f"{sum(n.values()):,} images of {self.size} px need about {need / 2**30:.1f} GiB, more "
                             f"than half of this machine's {have / 2**30:.0f} GiB: lower --size or --views")

    def rng(self, *stream: int) -> np.random.Generator:
        """A numpy generator for one purpose, derived from the seed and a stream id."""
        return np.random.default_rng([self.seed, *stream])


def physical_memory() -> int:
    """Bytes of RAM on this machine (0 if unknown)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0
