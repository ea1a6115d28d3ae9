import json
import shutil

import numpy as np
import pytest

import comm_diag.trifeature_gen as tg
from tests.conftest import TINY


def test_generate__layout_and_manifest(tiny_dataset):
    root = tiny_dataset.root
    for rel in ["manifest.json", "preview.png", "images/train.npy", "images/test.npy", "images/train.csv",
                "images/test.csv", "pairs/train.csv", "pairs/probe_train.csv", "pairs/test.csv"]:
        assert (root / rel).is_file(), rel
    m = json.loads((root / "manifest.json").read_text())
    assert m["spec"] == tiny_dataset.spec.to_dict() and m["package_version"] == tg.__version__
    assert set(m["sha256"]) >= {"images/train.npy", "pairs/test.csv", "preview.png"}
    assert len(m["mapping"]) == 10 and m["mapping"][0][0] == "solid"
    assert m["pid"]["test"]["synergy"]["synergistic"] == pytest.approx(0.469, abs=1e-3)
    header = (root / "pairs/train.csv").read_text().splitlines()[0]
    assert header == "i1,i2,shape1,texture1,color1,shape2,texture2,color2,synergy"
    assert (root / "images/train.csv").read_text().splitlines()[0] == "index,shape,texture,color,view"


def test_load__round_trips_images_and_labels(tiny_dataset):
    ds = tiny_dataset
    assert ds.images["train"].shape == (2400, 32, 32, 3) and ds.images["train"].dtype == np.uint8
    p = ds.pairs["probe_train"]
    assert np.array_equal(ds.factors["train"][p.i1], p.factors1)
    assert np.array_equal(ds.factors["train"][p.i2], p.factors2)
    assert len(ds.pairs["train"]) == TINY["train_pairs"]


def test_generate__same_seed_same_files(tmp_path, tiny_dataset):
    tg.generate(tiny_dataset.spec, tmp_path / "again")
    again = json.loads((tmp_path / "again" / "manifest.json").read_text())
    assert again["sha256"] == tiny_dataset.manifest["sha256"]


def test_generate__refuses_user_files_even_with_force(tmp_path, tiny_spec):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    for force in (False, True):
        with pytest.raises(ValueError, match="did not write"):
            tg.generate(tiny_spec, tmp_path / "x", force=force)
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"


def test_generate__replaces_a_dataset_only_with_force(tmp_path, tiny_spec):
    tg.generate(tiny_spec, tmp_path / "x")
    with pytest.raises(ValueError, match="--force"):
        tg.generate(tiny_spec, tmp_path / "x")
    tg.generate(tg.DatasetSpec(**{**tiny_spec.to_dict(), "seed": 1}), tmp_path / "x", force=True)
    assert tg.load(tmp_path / "x").spec.seed == 1


def test_generate__bad_spec_leaves_nothing(tmp_path):
    with pytest.raises(ValueError):
        tg.generate(tg.DatasetSpec(size=8), tmp_path / "bad")
    assert not (tmp_path / "bad").exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("damage", ["missing", "truncated", "modified"])
def test_load__damaged_dataset_is_rejected(tmp_path, tiny_dataset, damage):
    root = tmp_path / "copy"
    shutil.copytree(tiny_dataset.root, root)
    target = root / "images" / "test.npy"
    if damage == "missing":
        target.unlink()
    elif damage == "truncated":
        target.write_bytes(target.read_bytes()[:1000])
    else:
        (root / "pairs" / "test.csv").write_text("i1,i2\n0,1\n")
    with pytest.raises(tg.DatasetError, match="missing|sha256"):
        tg.load(root)


def test_load__folder_that_is_not_a_dataset(tmp_path):
    with pytest.raises(tg.DatasetError, match="manifest.json is missing"):
        tg.load(tmp_path)
