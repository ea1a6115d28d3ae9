"""Write a bimodal Trifeature dataset to disk, and read it back with verification.

Layout (other tools read it; keep it exactly so)::

    DIR/manifest.json            spec, value names, mapping, counts, sha256, PID table
    DIR/images/{train,test}.npy  uint8 (N, H, W, 3)
    DIR/images/{train,test}.csv  index,shape,texture,color,view
    DIR/pairs/{train,probe_train,test}.csv
                                 i1,i2,shape1,texture1,color1,shape2,texture2,color2,synergy
    DIR/preview.png              a labelled contact sheet of a few pairs
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from comm_diag.errors import InputError
from comm_diag import __version__
from comm_diag.outputs import PARTIAL_MARKER, OutputError, claim, partial_folder, replace_folder
from comm_diag.received import no_links, read_json
from comm_diag.trifeature_gen.factors import FACTOR_NAMES, FACTOR_VALUES
from comm_diag.trifeature_gen.pairs import (Images, all_pairs, design_distribution, sample_pairs, split_images,
                                            synergy_label, synergy_mapping)
from comm_diag.trifeature_gen.pid import pid_table
from comm_diag.trifeature_gen.preview import contact_sheet
from comm_diag.trifeature_gen.geometry import STYLE_REVISION
from comm_diag.trifeature_gen.render import Trifeature
from comm_diag.trifeature_gen.spec import PAIR_SETS, SPLIT_OF, DatasetSpec

FORMAT = "comm-diag/trifeature-bimodal"
FORMAT_VERSION = 1
PAIR_COLUMNS = ("i1", "i2", "shape1", "texture1", "color1", "shape2", "texture2", "color2", "synergy")
IMAGE_COLUMNS = ("index", "shape", "texture", "color", "view")


MANIFEST_KEYS = {"spec": dict, "sha256": dict, "mapping": list, "counts": dict, "pid": dict}  # what readers rely on


class DatasetError(InputError):
    """A folder that is not a valid dataset (missing file, bad hash, truncated array...)."""


@dataclass
class PairSet:
    """Pairs of one set: image indices into the split's images, and the labels."""

    i1: np.ndarray  # (P,) index into images[split]
    i2: np.ndarray  # (P,)
    factors1: np.ndarray  # Px3 codes of x1
    factors2: np.ndarray  # Px3 codes of x2
    synergy: np.ndarray  # (P,) 0/1

    def __len__(self) -> int:
        return len(self.i1)


@dataclass
class Dataset:
    """A loaded dataset: images and factors per split, pairs per set, the manifest.

    Training and probing read it through a small interface, in the spirit of
    disentanglement_lib's ground-truth data, and never index the generator's arrays:
    ``n_modalities``, ``factor_names``, ``pair_sets``, ``n_samples(pair_set)``,
    ``modality(pair_set, i)`` (the images modality i draws from and which one each
    sample uses), ``factors_of(pair_set, i)`` and ``samples(pair_set, idx)``. A dataset
    with n >= 2 modalities overrides these (a subclass), and flows end to end.
    """

    root: Path
    spec: DatasetSpec
    images: dict[str, np.ndarray]  # split -> uint8 NxHxWx3
    factors: dict[str, np.ndarray]  # split -> Nx3 codes
    pairs: dict[str, PairSet]  # pair set -> PairSet
    mapping: np.ndarray  # (10,) permutation
    manifest: dict = field(repr=False)

    n_modalities = 2  # Trifeature pairs: x1, x2
    factor_names = FACTOR_NAMES
    pair_sets = PAIR_SETS

    def split_of(self, pair_set: str) -> str:
        return SPLIT_OF[pair_set]

    def n_samples(self, pair_set: str) -> int:
        return len(self.pairs[pair_set])

    def modality(self, pair_set: str, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(images uint8 NxHxWx3, index (P,)): sample p's modality i is images[index[p]].
        Modalities that share the array (both Trifeature images come from one split)
        can be encoded once."""
        p = self.pairs[pair_set]
        return self.images[self.split_of(pair_set)], (p.i1, p.i2)[i]

    def factors_of(self, pair_set: str, i: int) -> np.ndarray:
        """Px3 factor codes (``factor_names``) of modality i of every sample."""
        p = self.pairs[pair_set]
        return (p.factors1, p.factors2)[i]

    def samples(self, pair_set: str, idx: np.ndarray) -> list[np.ndarray]:
        """The samples ``idx`` as n uint8 batches BxHxWx3, one per modality."""
        return [images[index[idx]] for images, index in
                (self.modality(pair_set, i) for i in range(self.n_modalities))]


# ----------------------------------------------------------------------------- writing

def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _names(factors: np.ndarray) -> list[list[str]]:
    return [[FACTOR_VALUES[n][c] for n, c in zip(FACTOR_NAMES, row)] for row in factors.tolist()]


def _write_csv(path: Path, header: tuple[str, ...], rows) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def pid_for(spec: DatasetSpec, pair_set: str, mapping: np.ndarray) -> dict:
    """The PID table of one pair set (cached: it depends only on the roles,
    probabilities and mapping, not on the images)."""
    biased = pair_set == "train" and spec.synergy
    return _pid_cached(spec.shared, spec.unique, spec.synergy_src, spec.synergy_tgt, spec.share_prob_of(pair_set),
                       spec.synergy_prob if biased else None, tuple(mapping.tolist()))


@functools.lru_cache(maxsize=32)
def _pid_cached(shared, unique, src, tgt, share_prob, synergy_prob, mapping) -> dict:
    spec = DatasetSpec(shared=shared, unique=unique, synergy_src=src, synergy_tgt=tgt, share_prob=share_prob,
                       synergy=synergy_prob is not None,
                       synergy_prob=1.0 if synergy_prob is None else synergy_prob)
    m = np.array(mapping)
    return pid_table(design_distribution(spec, "train", m), spec, m)  # "train": biased iff synergy


def build_pairs(spec: DatasetSpec, images: dict[str, Images], mapping: np.ndarray
                ) -> tuple[dict[str, np.ndarray], list[str]]:
    """Sample every pair set: set -> Px2 indices, plus the clamp warnings."""
    sizes = {"train": spec.train_pairs, "probe_train": spec.probe_pairs, "test": spec.test_pairs}
    out, warnings = {}, []
    for name in PAIR_SETS:
        if name == "test" and spec.all_test_pairs:
            out[name], w = all_pairs(images["test"], spec, mapping), []
        else:
            out[name], w = sample_pairs(images[SPLIT_OF[name]], spec, name, sizes[name], mapping)
        warnings += w
    return out, warnings


def generate(spec: DatasetSpec, out: Path | str, *, force: bool = False, png: bool = False,
             progress: Optional[Callable[[int, int], None]] = None,
             warn: Callable[[str], None] = lambda msg: None) -> Path:
    """Render, pair and write a dataset atomically; returns the folder.

    ``progress(done, total)`` is called as images render; ``warn(msg)`` receives
    every clamp (more pairs asked than allowed). Nothing is left at ``out``
    unless the whole dataset was written. ``out`` is claimed for the whole call
    (``comm_diag.outputs.claim``): ``force`` replaces an empty folder or a dataset, nothing else.
    """
    spec.validate()
    with claim(out, "dataset", force=force, reuse=False) as out:
        return _write(spec, out, png, progress, warn)


def _write(spec: DatasetSpec, out: Path, png: bool, progress: Optional[Callable[[int, int], None]],
           warn: Callable[[str], None]) -> Path:
    images = split_images(spec)
    mapping = synergy_mapping(spec)
    pairs, warnings = build_pairs(spec, images, mapping)
    for w in warnings:
        warn(w)
    renderer = Trifeature(spec.size, period=spec.period, style=spec.renderer)
    total = sum(len(v) for v in images.values())

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_folder(out)
    tmp.chmod(0o755)  # mkdtemp makes it private; the dataset is not
    try:
        (tmp / "images").mkdir()
        (tmp / "pairs").mkdir()
        done = 0
        arrays = {}
        for split, im in images.items():
            def step(k: int) -> None:
                nonlocal done
                done += k
                if progress is not None:
                    progress(done, total)
            arrays[split] = renderer.render(im.factors, spec.seed, im.ids, progress=step)
            np.save(tmp / "images" / f"{split}.npy", arrays[split])
            _write_csv(tmp / "images" / f"{split}.csv", IMAGE_COLUMNS,
                       ([i, *names, v] for i, (names, v) in enumerate(zip(_names(im.factors), im.views.tolist()))))
            if png:
                _write_pngs(tmp / "images" / split, arrays[split])
        counts = {"images": {s: len(im) for s, im in images.items()}, "pairs": {}, "synergy_positive_rate": {}}
        for name, idx in pairs.items():
            f = images[SPLIT_OF[name]].factors
            f1, f2 = f[idx[:, 0]], f[idx[:, 1]]
            syn = synergy_label(f1, f2, spec, mapping)
            _write_csv(tmp / "pairs" / f"{name}.csv", PAIR_COLUMNS,
                       ([a, b, *n1, *n2, s] for a, b, n1, n2, s in
                        zip(idx[:, 0].tolist(), idx[:, 1].tolist(), _names(f1), _names(f2), syn.tolist())))
            counts["pairs"][name] = len(idx)
            counts["synergy_positive_rate"][name] = float(syn.mean()) if len(syn) else 0.0

        contact_sheet(arrays, images, pairs, spec, mapping).save(tmp / "preview.png")

        pid = {name: pid_for(spec, name, mapping) for name in PAIR_SETS}
        files = sorted(p for p in tmp.rglob("*") if p.is_file() and p.name != PARTIAL_MARKER)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "package_version": __version__,
            "spec": spec.to_dict(),
            "texture_period_px": renderer.period,
            "renderer_revision": STYLE_REVISION[spec.renderer],
            "values": {n: list(FACTOR_VALUES[n]) for n in FACTOR_NAMES},
            "roles": {"shared": spec.shared, "unique": spec.unique,
                      "synergy": f"{spec.synergy_src}:{spec.synergy_tgt}"},
            "mapping": [[FACTOR_VALUES[spec.synergy_src][a], FACTOR_VALUES[spec.synergy_tgt][b]]
                        for a, b in enumerate(mapping.tolist())],
            "counts": counts,
            "warnings": warnings,
            "pid": pid,
            "pid_note": ("bits; BROJA PID (dit) of the exact law of a pair drawn by this "
                         "dataset's sampler with uniform, independent factors"),
            "sha256": {p.relative_to(tmp).as_posix(): file_sha256(p) for p in files},
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
        replace_folder(tmp, out)  # a dataset already there holds only its own files (outputs.check)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _write_pngs(folder: Path, arr: np.ndarray) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(arr):
        Image.fromarray(img).save(folder / f"{i:06d}.png")


# ----------------------------------------------------------------------------- reading

def read_manifest(root: Path | str) -> dict:
    root = Path(root)
    path = root / "manifest.json"
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder")
    if not path.is_file():
        raise DatasetError(f"{root} is not a comm-diag dataset: manifest.json is missing")
    try:
        manifest = read_json(path)
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path} is not valid JSON ({e.msg})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DatasetError(f"{path} is not a comm-diag dataset manifest")
    for key, kind in MANIFEST_KEYS.items():
        if not isinstance(manifest.get(key), kind):
            raise DatasetError(f"{path} is damaged: its {key!r} entry is missing or not a {kind.__name__}")
    if not all(isinstance(v, str) for v in manifest["sha256"].values()):
        raise DatasetError(f"{path} is damaged: its 'sha256' entry must map file names to digests")
    shape_error = _manifest_shape_error(manifest)
    if shape_error:
        raise DatasetError(f"{path} is damaged: {shape_error}")
    return manifest


PID_ATOMS = ("entropy", "mutual_information", "redundant", "unique1", "unique2", "synergistic")


def _manifest_shape_error(m: dict) -> Optional[str]:
    """What is wrong with the shape of the entries readers index into (counts, pid, mapping),
    or None: a manifest whose hashes were rewritten must still fail as one line, not as a
    KeyError deep in a reader."""
    def number(x) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool)

    c = m["counts"]
    for key in ("images", "pairs", "synergy_positive_rate"):
        if not isinstance(c.get(key), dict) or not all(isinstance(k, str) and number(v) for k, v in c[key].items()):
            return f"its counts.{key} must map names to numbers"
    for split, tasks in m["pid"].items():
        if not isinstance(tasks, dict) or not all(
                isinstance(v, dict) and all(number(v.get(a)) for a in PID_ATOMS) for v in tasks.values()):
            return f"its pid.{split} must map tasks to their {', '.join(PID_ATOMS)} (numbers)"
    if not all(isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in m["mapping"]):
        return "its mapping must be a list of [source value, target value] pairs"
    return None


def verify(root: Path | str, manifest: Optional[dict] = None) -> dict:
    """Check that every file of the manifest exists and matches its sha256."""
    root = Path(root)
    manifest = manifest or read_manifest(root)
    for rel, digest in manifest["sha256"].items():
        p = root / rel
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise DatasetError(f"{root}/manifest.json lists {rel!r}, outside the dataset: it is damaged")
        if p.is_symlink():
            raise DatasetError(f"{root}: {rel} is a symbolic link; a dataset holds only its own files")
        if not p.is_file():
            raise DatasetError(f"{root}: {rel} is missing")
        if file_sha256(p) != digest:
            raise DatasetError(f"{root}: {rel} does not match its sha256 (modified or truncated)")
    return manifest


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as f:  # a byte-order mark is not part of a name
        return list(csv.DictReader(f))


def _codes(rows: list[dict[str, str]], suffix: str = "") -> np.ndarray:
    out = []
    for r in rows:
        codes = []
        for n in FACTOR_NAMES:
            value = r[n + suffix]
            if value not in FACTOR_VALUES[n]:
                raise InputError(f"{value!r} is not a {n} (column {n + suffix}; one of "
                                 f"{', '.join(FACTOR_VALUES[n])})")
            codes.append(FACTOR_VALUES[n].index(value))
        out.append(codes)
    return np.array(out, dtype=np.int64).reshape(-1, 3)


def load(root: Path | str, *, check_hashes: bool = True) -> Dataset:
    """Read a dataset written by ``generate``; raises DatasetError if anything is off."""
    root = Path(root)
    try:  # a FIFO among the images would block the hash forever; a hard link or a huge file is not ours
        no_links(root, "dataset") if root.is_dir() else None
    except OutputError as e:
        raise DatasetError(str(e)) from None
    manifest = read_manifest(root)
    if check_hashes:
        verify(root, manifest)
    try:
        spec = DatasetSpec.from_dict(manifest["spec"]).validate()
    except (TypeError, ValueError) as e:
        raise DatasetError(f"{root}: the manifest's spec is not valid ({e})") from None
    try:
        images, factors = {}, {}
        for split in ("train", "test"):
            images[split] = np.load(root / "images" / f"{split}.npy")
            factors[split] = _codes(_read_csv(root / "images" / f"{split}.csv"))
            if images[split].dtype != np.uint8:
                raise DatasetError(f"{root}: images/{split}.npy holds {images[split].dtype} pixels; comm-diag "
                                   f"datasets hold uint8 (0-255): regenerate it with `comm-diag generate`")
            if images[split].shape[1:] != (spec.size, spec.size, 3) or len(images[split]) != len(factors[split]):
                raise DatasetError(f"{root}: images/{split}.npy has shape {images[split].shape}, "
                                   f"expected ({len(factors[split])}, {spec.size}, {spec.size}, 3)")
        pairs = {}
        for name in PAIR_SETS:
            rows = _read_csv(root / "pairs" / f"{name}.csv")
            if not rows:
                raise DatasetError(f"{root}: pairs/{name}.csv holds no pair: the dataset is damaged")
            i1 = np.array([int(r["i1"]) for r in rows], dtype=np.int64)
            i2 = np.array([int(r["i2"]) for r in rows], dtype=np.int64)
            n_images = len(images[SPLIT_OF[name]])
            if len(i1) and (min(i1.min(), i2.min()) < 0 or max(i1.max(), i2.max()) >= n_images):
                raise DatasetError(f"{root}: pairs/{name}.csv indexes images outside the {n_images} "
                                   f"{SPLIT_OF[name]} images")
            pairs[name] = PairSet(i1, i2, _codes(rows, "1"), _codes(rows, "2"),
                                  np.array([int(r["synergy"]) for r in rows], dtype=np.int64))
    except (OSError, ValueError, KeyError) as e:
        if isinstance(e, DatasetError):
            raise
        raise DatasetError(f"{root}: cannot read the dataset ({e})") from None
    try:
        mapping = np.array([FACTOR_VALUES[spec.synergy_tgt].index(b) for _, b in manifest["mapping"]], dtype=np.int64)
    except (ValueError, TypeError):
        raise DatasetError(f"{root}: the manifest's mapping names a value that is not a {spec.synergy_tgt}: "
                           f"it is damaged") from None
    if sorted(mapping.tolist()) != list(range(len(FACTOR_VALUES[spec.synergy_src]))):
        raise DatasetError(f"{root}: the manifest's mapping is not a one-to-one map of the "
                           f"{len(FACTOR_VALUES[spec.synergy_src])} {spec.synergy_src} values: it is damaged")
    return Dataset(root, spec, images, factors, pairs, mapping, manifest)
