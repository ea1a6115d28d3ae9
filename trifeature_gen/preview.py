"""A labelled contact sheet of a few pairs of each set, for a first look at a dataset."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from comm_diag.trifeature_gen.factors import FACTOR_VALUES
from comm_diag.trifeature_gen.pairs import Images, synergy_label
from comm_diag.trifeature_gen.spec import SPLIT_OF, DatasetSpec

CELL = 96  # px per image on the sheet
LABEL_H = 22


def _label(f: np.ndarray) -> str:
    return f"{FACTOR_VALUES['shape'][f[0]]}/{FACTOR_VALUES['texture'][f[1]]}/{FACTOR_VALUES['color'][f[2]]}"


def contact_sheet(arrays: dict[str, np.ndarray], images: dict[str, Images], pairs: dict[str, np.ndarray],
                  spec: DatasetSpec, mapping: np.ndarray, per_set: int = 4) -> Image.Image:
    """Rows = pair sets, each showing ``per_set`` pairs as (x1 | x2) with their factors."""
    pad = 8
    pair_w = 2 * CELL + pad
    sheet = Image.new("RGB", (per_set * (pair_w + 2 * pad) + 110, len(pairs) * (CELL + 2 * LABEL_H + pad)),
                      (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for row, (name, idx) in enumerate(pairs.items()):
        split = SPLIT_OF[name]
        y = row * (CELL + 2 * LABEL_H + pad)
        draw.text((4, y + CELL // 2), name, fill=(0, 0, 0))
        for k, (i1, i2) in enumerate(idx[:per_set].tolist()):
            x = 110 + k * (pair_w + 2 * pad)
            f1, f2 = images[split].factors[i1], images[split].factors[i2]
            for j, i in enumerate((i1, i2)):
                img = Image.fromarray(arrays[split][i]).resize((CELL, CELL), Image.NEAREST)
                sheet.paste(img, (x + j * (CELL + pad), y))
            syn = int(synergy_label(f1, f2, spec, mapping))
            draw.text((x, y + CELL + 2), "x1 " + _label(f1), fill=(0, 0, 0))
            draw.text((x, y + CELL + 14), "x2 " + _label(f2), fill=(0, 0, 0))
            draw.text((x, y + CELL + 26), f"synergy={syn}", fill=(160, 0, 0) if syn else (90, 90, 90))
    return sheet
