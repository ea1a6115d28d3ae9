import numpy as np
import pytest

import comm_diag.trifeature_gen as tg
from comm_diag.trifeature_gen.pairs import sample_pairs, split_images, synergy_label, synergy_mapping


def test_split__80_20_by_combination_with_views():
    spec = tg.DatasetSpec()
    im = split_images(spec)
    assert len(im["train"]) == 2400 and len(im["test"]) == 200
    train = {tuple(r) for r in im["train"].factors}
    test = {tuple(r) for r in im["test"].factors}
    assert len(train) == 800 and len(test) == 200 and not train & test
    assert np.bincount(im["train"].views).tolist() == [800, 800, 800]
    assert len(set(im["train"].ids) | set(im["test"].ids)) == 2600


def test_mapping__bijection_from_its_own_stream():
    a = synergy_mapping(tg.DatasetSpec(seed=0))
    b = synergy_mapping(tg.DatasetSpec(seed=0, views=5, synergy=True, train_pairs=10))
    assert sorted(a.tolist()) == list(range(10))
    assert np.array_equal(a, b)  # nothing else in the spec moves the mapping
    assert not np.array_equal(a, synergy_mapping(tg.DatasetSpec(seed=1)))


def test_pairs__unbiased_share_shape_and_have_10_percent_synergy():
    spec = tg.DatasetSpec()
    im, m = split_images(spec), synergy_mapping(spec)
    idx, warnings = sample_pairs(im["train"], spec, "probe_train", 10_000, m)
    f1, f2 = im["train"].factors[idx[:, 0]], im["train"].factors[idx[:, 1]]
    assert not warnings and len(np.unique(idx[:, 0] * 10**6 + idx[:, 1])) == 10_000  # no repeats
    assert (f1[:, 0] == f2[:, 0]).all() and (idx[:, 0] != idx[:, 1]).all()
    assert 0.3 < (f1[:, 1] == f2[:, 1]).mean() * 3 < 0.45  # texture independent: ~10% equal
    assert abs(synergy_label(f1, f2, spec, m).mean() - 0.1) < 0.015


def test_pairs__biased_training_obeys_mapping_on_every_pair(tiny_synergy_dataset):
    ds = tiny_synergy_dataset
    p = ds.pairs["train"]
    assert (p.factors2[:, 2] == ds.mapping[p.factors1[:, 1]]).all()
    assert (p.synergy == 1).all() and (p.factors1[:, 0] == p.factors2[:, 0]).all()
    assert 0 < ds.pairs["test"].synergy.mean() < 0.25  # test is never biased


def test_pairs__graded_strengths_mix_in_the_right_proportions():
    spec = tg.DatasetSpec(synergy=True, share_prob=0.5, synergy_prob=0.3)
    im, m = split_images(spec), synergy_mapping(spec)
    idx, _ = sample_pairs(im["train"], spec, "train", 4000, m)
    f1, f2 = im["train"].factors[idx[:, 0]], im["train"].factors[idx[:, 1]]
    share = (f1[:, 0] == f2[:, 0]).mean()
    obey = synergy_label(f1, f2, spec, m).mean()
    assert abs(share - (0.5 + 0.5 * 0.1)) < 0.03
    assert abs(obey - (0.3 + 0.7 * 0.1)) < 0.03


def test_pairs__too_many_requested_are_clamped_with_a_warning():
    spec = tg.DatasetSpec()
    im, m = split_images(spec), synergy_mapping(spec)
    idx, warnings = sample_pairs(im["test"], spec, "test", 10_000, m)
    per_shape = np.bincount(im["test"].factors[:, 0])
    allowed = int((per_shape * (per_shape - 1)).sum())  # ordered pairs of distinct images
    assert len(idx) == allowed < 10_000 and f"only {allowed}" in warnings[0]
    # the default ("up to 4,096, clamped to those allowed") takes them all without a warning
    # (0.8 warned at every default generate); only a number the user asked for is warned about
    idx, warnings = sample_pairs(im["test"], spec, "test", spec.test_pairs, m)
    assert len(idx) == allowed < spec.test_pairs and warnings == []


def test_pairs__other_roles_are_respected():
    spec = tg.DatasetSpec(shared="color", unique="shape", synergy_src="shape", synergy_tgt="texture",
                          synergy=True)
    im, m = split_images(spec), synergy_mapping(spec)
    idx, _ = sample_pairs(im["train"], spec, "train", 500, m)
    f1, f2 = im["train"].factors[idx[:, 0]], im["train"].factors[idx[:, 1]]
    assert (f1[:, 2] == f2[:, 2]).all() and (f2[:, 1] == m[f1[:, 0]]).all()


@pytest.mark.parametrize("kwargs, match", [
    (dict(shared="size"), "unknown attribute"),
    (dict(shared="texture"), "both the shared and the unique"),
    (dict(synergy_src="shape"), "cannot take part in the synergy"),
    (dict(share_prob=1.5), r"share-prob must be in \[0, 1\]"),
    (dict(synergy_prob=-0.1), r"synergy-prob must be in \[0, 1\]"),
    (dict(size=16), ">= 32"),
])
def test_spec__bad_settings_raise_one_clear_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tg.DatasetSpec(**kwargs).validate()


def test_all_test_pairs__every_same_shape_pair_self_pairs_included(tmp_path):
    """The authors' test set: every ordered pair of test images sharing the shape, an image
    with itself included (4,060 at seed 0's default split, against 3,860 sampled distinct
    pairs); the other pair sets and the images stay those of the sampled dataset."""
    spec = tg.DatasetSpec(size=32, train_pairs=256, probe_pairs=256, all_test_pairs=True)
    ds, sampled = tg.load(tg.generate(spec, tmp_path / "all")), tg.load(
        tg.generate(tg.DatasetSpec(size=32, train_pairs=256, probe_pairs=256), tmp_path / "sampled"))
    shapes = ds.factors_of("test", 0)[:, 0], ds.factors_of("test", 1)[:, 0]
    test_shapes = split_images(spec)["test"].factors[:, 0]
    expected = int((np.bincount(test_shapes, minlength=10) ** 2).sum())
    assert ds.n_samples("test") == expected and 4000 < expected < 4300
    assert np.array_equal(*shapes)  # every pair shares its shape
    pairs = np.loadtxt(ds.root / "pairs" / "test.csv", delimiter=",", skiprows=1, usecols=(0, 1), dtype=np.int64)
    assert len({tuple(p) for p in pairs}) == expected  # no pair twice
    assert (pairs[:, 0] == pairs[:, 1]).sum() == len(test_shapes)  # each image once with itself
    for name in ("images/train.npy", "images/test.npy", "pairs/train.csv", "pairs/probe_train.csv"):
        assert ds.manifest["sha256"][name] == sampled.manifest["sha256"][name]
    with pytest.raises(ValueError, match="needs --share-prob 1"):
        tg.DatasetSpec(all_test_pairs=True, share_prob=0.5).validate()
    # a number of test pairs beside "every pair" contradicts it (0.8 recorded 10 in the manifest
    # and wrote 4,060)
    with pytest.raises(ValueError, match="--test-pairs 10 contradicts it"):
        tg.DatasetSpec(all_test_pairs=True, test_pairs=10).validate()
