"""``renderer="authors"`` draws the authors' shapes where they put them, with their edges:
compared with statistics measured on their own generator's images (Duplums/CoMM f1fc87f,
seed 42, 224 px, 2,600 images; tests/trifeature_gen/reference/authors-renderer-stats.json)."""

import json
from pathlib import Path

import numpy as np
import pytest

from comm_diag.trifeature_gen import Trifeature
from comm_diag.trifeature_gen.authors_shapes import canvas_side, templates
from comm_diag.trifeature_gen.factors import SHAPES, TEXTURES
from comm_diag.trifeature_gen.shape_stats import image_statistics, summarise

REFERENCE = json.loads((Path(__file__).parent / "reference" / "authors-renderer-stats.json").read_text())["shapes"]
PER_SHAPE = 160  # centroid spread's sampling error ~0.5 px at this count


@pytest.fixture(scope="module")
def measured() -> dict[str, dict[str, float]]:
    n = PER_SHAPE
    out = {}
    for k, shape in enumerate(SHAPES):
        f = np.stack([np.full(n, k), np.full(n, TEXTURES.index("solid")), np.arange(n) % 10], axis=1)
        images = Trifeature(224, style="authors").render(f, seed=5, indices=np.arange(n) + k * n)
        out[shape] = summarise(image_statistics(images, f[:, 2]))
    return out


@pytest.mark.parametrize("shape", SHAPES)
def test_authors_shapes__area_placement_and_edge_match_their_generator(measured, shape):
    ours, theirs = measured[shape], REFERENCE[shape]
    assert ours["area_mean"] == pytest.approx(theirs["area_mean"], abs=0.02)  # of the image
    assert ours["centroid_sd_px"] == pytest.approx(theirs["centroid_sd_px"], abs=2.0)
    assert ours["edge_soft_mean"] == pytest.approx(theirs["edge_soft_mean"], abs=0.05)


def test_authors_shapes__differ_from_comm_diags_where_the_issue_measured():
    """The check above could pass vacuously if the statistics could not tell renderers apart:
    comm-diag's square (0.85 of its box) and hard edges fail it."""
    f = np.stack([np.full(40, SHAPES.index("square")), np.zeros(40, int), np.arange(40) % 10], axis=1)
    ours = summarise(image_statistics(Trifeature(224).render(f, seed=5), f[:, 2]))
    assert abs(ours["area_mean"] - REFERENCE["square"]["area_mean"]) > 0.05
    f[:, 0] = SHAPES.index("circle")
    ours = summarise(image_statistics(Trifeature(224).render(f, seed=5), f[:, 2]))
    assert REFERENCE["circle"]["edge_soft_mean"] - ours["edge_soft_mean"] > 0.3


def test_authors_shapes__the_canvas_grows_with_the_angle_and_the_shape_stays_inside():
    assert canvas_side(np.radians([0.0, 45.0, -30.0])).tolist() == [128.0, 181.0, 175.0]
    assert templates().shape == (10, 1, 128, 128) and templates()[SHAPES.index("square")].min() == 1
    n = 400
    f = np.stack([np.arange(n) % 10, np.zeros(n, int), np.full(n, 9)], axis=1)  # solid white
    for size in (64, 224):
        tf = Trifeature(size, style="authors")
        p = tf.params(f, 3, np.arange(n))
        # the centre's range shrinks with the angle: |cx - size/2| at most (224 - side)/2 at 224 px
        room = (224 - canvas_side(p.angle)) / 2 * size / 224
        assert (np.abs(p.cx - size / 2) <= room + 1e-9).all() and (np.abs(p.cy - size / 2) <= room + 1e-9).all()
    # nothing is cut off: a shape's area is about the same wherever and however it lies (the
    # per cent or so is the rotation of edges that lie on the box's border: plus, tee)
    area = image_statistics(Trifeature(224, style="authors").render(f, seed=3), f[:, 2])["area"]
    for k in range(10):
        assert np.ptp(area[f[:, 0] == k]) < 0.03 * area[f[:, 0] == k].mean()


def test_authors_shapes__a_study_never_reuses_a_dataset_of_the_earlier_authors_renderer(tmp_path):
    import comm_diag.trifeature_gen as tg
    from comm_diag.probes.hooks import Hooks
    from comm_diag.probes.studies.sweep import ensure_dataset

    spec = tg.DatasetSpec(size=32, train_pairs=64, probe_pairs=64, test_pairs=32, renderer="authors")
    ensure_dataset(spec, tmp_path / "d", Hooks())
    manifest = tmp_path / "d" / "manifest.json"
    assert json.loads(manifest.read_text())["renderer_revision"] == tg.STYLE_REVISION["authors"] == 2
    assert ensure_dataset(spec, tmp_path / "d", Hooks()).spec == spec  # this revision: reused
    manifest.write_text(manifest.read_text().replace('"renderer_revision": 2', '"renderer_revision": 1'))
    with pytest.raises(ValueError, match="earlier revision of the 'authors' renderer"):
        ensure_dataset(spec, tmp_path / "d", Hooks())
