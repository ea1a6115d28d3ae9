"""Renderer throughput: images/s at 64 and 224 px, and the paper's dataset (2,600 images at 224 px).

Run: python benchmarks/bench_render.py
"""

from __future__ import annotations

import time

import numpy as np
import torch

from comm_diag.trifeature_gen import DatasetSpec, Trifeature
from comm_diag.trifeature_gen.pairs import split_images


def timed(fn, repeats: int = 3) -> float:
    fn()  # warm-up: templates, allocator
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    print(f"torch threads: {torch.get_num_threads()}")
    images = split_images(DatasetSpec())
    factors = np.concatenate([images["train"].factors, images["test"].factors])
    ids = np.concatenate([images["train"].ids, images["test"].ids])
    for size in (64, 224):
        tf = Trifeature(size)
        sec = timed(lambda: tf.render(factors, seed=0, indices=ids))
        print(f"{size:>4} px: {len(factors) / sec:8.0f} images/s   ({len(factors)} images in {sec:.2f} s)")
    print("paper dataset (2,600 images at 224 px): see the 224 px line; target <= 2 s on 2 cores")


if __name__ == "__main__":
    main()
