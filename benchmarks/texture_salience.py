"""How separable are the ten textures as each renderer draws them (docs/fidelity.md, the
renderer row)? Renders random images at the paper's 224 px with comm-diag's renderer and
with the authors' (``--renderer authors``), then reads the texture label with comm-diag's
linear probe (class-weighted logistic regression, C chosen on a held-out quarter) on (a) the
raw pixels, average-pooled to 28 x 28, and (b) the features of the paper preset's AlexNet at
random initialisation (256 x 6 x 6, seeded; the "random init" control of every report).
Prints one line per renderer and representation; a salience gap between the renderers is a
candidate cause of the uniqueness gap in #36, which only a GPU training can confirm.

Run: python benchmarks/texture_salience.py [--train 2000] [--test 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from comm_diag.comm.encoders import build_encoder
from comm_diag.comm.methods import normalize
from comm_diag.probes.measure.classifiers import PROBES, probe_rng
from comm_diag.trifeature_gen import Trifeature
from comm_diag.trifeature_gen.factors import sample_factors
from comm_diag.trifeature_gen.geometry import STYLES


def features(images: np.ndarray, encoder: torch.nn.Module) -> dict[str, np.ndarray]:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0  # Nx3xHxW
    pixels = F.adaptive_avg_pool2d(x, 28).flatten(1).numpy()  # Nx(3*28*28)
    with torch.no_grad():
        feats = torch.cat([encoder(normalize(b)).flatten(1) for b in x.split(100)]).numpy()  # Nx9216
    return {"pixels (28x28)": pixels, "AlexNet at random init": feats}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=2000)
    ap.add_argument("--test", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    encoder = build_encoder("alexnet", 224).eval()  # one random initialisation for both renderers
    factors = sample_factors(args.train + args.test, np.random.default_rng(args.seed))
    labels = factors[:, 1]
    for style in STYLES:
        t0 = time.perf_counter()
        images = Trifeature(224, style=style).render(factors, seed=args.seed)
        for name, x in features(images, encoder).items():
            score = PROBES["linear"]((x[:args.train], x[args.train:]), (labels[:args.train], labels[args.train:]),
                                     probe_rng(args.seed, "texture", "linear"))
            print(f"{style:>9} renderer, {name:>22}: texture read at {score['balanced_accuracy']:.1f}% "
                  f"balanced accuracy (chance 10%)", flush=True)
        print(f"{style:>9} renderer: {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
