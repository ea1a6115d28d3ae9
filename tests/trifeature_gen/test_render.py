import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from comm_diag.trifeature_gen import Trifeature
from comm_diag.trifeature_gen.factors import BACKGROUND_UINT8, COLOR_UINT8, all_combinations
from comm_diag.trifeature_gen.geometry import MIN_SIZE, texture_period
from comm_diag.trifeature_gen.shapes import template_area


def _some_factors(n=60, seed=0):
    return all_combinations()[np.random.default_rng(seed).integers(0, 1000, n)]


def test_render__same_seed_same_bytes_different_seed_different_bytes():
    tf, f = Trifeature(48), _some_factors()
    a, b, c = tf.render(f, seed=3), tf.render(f, seed=3), tf.render(f, seed=4)
    assert a.dtype == np.uint8 and a.shape == (60, 48, 48, 3)
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()


def test_render__image_independent_of_chunk_and_order():
    f = _some_factors(50)
    whole = Trifeature(40, chunk=64).render(f, seed=1)
    small = Trifeature(40, chunk=7).render(f, seed=1)
    perm = np.random.default_rng(0).permutation(50)
    shuffled = Trifeature(40).render(f[perm], seed=1, indices=perm)
    assert np.array_equal(whole, small)
    assert np.array_equal(whole[perm], shuffled)
    single = Trifeature(40).render(f[17:18], seed=1, indices=np.array([17]))
    assert np.array_equal(single[0], whole[17])


@pytest.mark.parametrize("size,style", [(32, "comm-diag"), (224, "comm-diag"), (64, "authors"), (224, "authors")])
def test_render__every_texture_alone_renders_as_in_a_batch(size, style):
    # rain's random cells once depended on the chunk's coordinate range: 22 of 23 rain images
    # rendered alone differed from the same images rendered in a batch
    f = np.array([[s, t, (s + t) % 10] for t in range(10) for s in range(10)])  # every texture, every shape
    whole = Trifeature(size, chunk=256, style=style).render(f, seed=2)
    for i in range(0, len(f), 3):
        alone = Trifeature(size, style=style).render(f[i:i + 1], seed=2, indices=np.array([i]))[0]
        assert np.array_equal(alone, whole[i]), f"image {i} (texture {f[i, 1]}) depends on its batch"


def test_render__coloured_pixels_carry_the_label_colour():
    f = _some_factors(100)
    imgs = Trifeature(64).render(f, seed=0)
    for img, (s, t, c) in zip(imgs, f):
        px = img.reshape(-1, 3)
        colours = {tuple(p) for p in np.unique(px, axis=0)}
        assert colours <= {tuple(BACKGROUND_UINT8), tuple(COLOR_UINT8[c])}
        assert tuple(COLOR_UINT8[c]) in colours  # every texture puts some colour on the shape


def test_render__solid_shape_area_matches_template():
    tf = Trifeature(224)
    f = np.array([[s, 0, 1] for s in range(10)])  # solid texture, green
    imgs = tf.render(f, seed=5)
    area = (imgs != BACKGROUND_UINT8).any(-1).sum(axis=(1, 2)) / tf.box**2
    np.testing.assert_allclose(area, template_area(), rtol=0.06)


def test_render__shape_fully_inside_image_at_any_rotation():
    from comm_diag.trifeature_gen.shapes import template_radius

    tf = Trifeature(32)
    f = np.array([[s, 0, 0] for s in range(10) for _ in range(50)])
    p = tf.params(f, seed=2, indices=np.arange(len(f)))
    reach = template_radius()[f[:, 0]] * tf.box / 2  # farthest shape point from its centre
    for c in (p.cx, p.cy):
        assert (c - reach >= 0).all() and (c + reach <= tf.size).all()
    assert np.abs(np.degrees(p.angle)).max() <= 45 and np.degrees(p.angle).min() < -30


def test_texture_period__scales_with_size_but_not_below_minimum():
    assert texture_period(224) == pytest.approx(10.0)
    assert texture_period(448) == pytest.approx(20.0)
    assert texture_period(64) == texture_period(32) == pytest.approx(5.714, abs=1e-3)


def test_textures__distinguishable_at_smallest_size_from_power_spectrum():
    tf, rng = Trifeature(MIN_SIZE), np.random.default_rng(0)
    n = 60
    f = np.stack([rng.integers(0, 10, 10 * n), np.repeat(np.arange(10), n), rng.integers(0, 10, 10 * n)], 1)
    on = (tf.render(f, seed=1) != BACKGROUND_UINT8).any(-1).astype(np.float32)
    spectrum = np.abs(np.fft.fft2(on - on.mean(axis=(1, 2), keepdims=True)))
    x, y = np.log1p(spectrum.reshape(len(f), -1)), f[:, 1]
    idx = rng.permutation(len(f))
    tr, te = idx[:480], idx[480:]
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1)).fit(x[tr], y[tr])
    assert clf.score(x[te], y[te]) > 0.7  # chance is 0.1


@pytest.mark.parametrize("size", [0, 31, 16.5])
def test_render__rejects_too_small_size(size):
    with pytest.raises(ValueError, match=">= 32"):
        Trifeature(size)


def test_factor_interface__sample_factors_uses_given_rng():
    tf = Trifeature(32)
    a = tf.sample_factors(100, np.random.default_rng(7))
    b = tf.sample_factors(100, np.random.default_rng(7))
    assert np.array_equal(a, b) and a.shape == (100, 3)
    assert tf.factor_names == ("shape", "texture", "color") and tf.factors_num_values == (10, 10, 10)
    assert (a.max(0) <= 9).all() and (a.min(0) >= 0).all()


def _on_fraction(style: str, texture: str, n: int = 6) -> float:
    """The fraction of a square's inner 60x60 pixels that take the colour."""
    from comm_diag.trifeature_gen.factors import FACTOR_VALUES, TEXTURES

    tf = Trifeature(224, style=style)
    f = np.array([[FACTOR_VALUES["shape"].index("square"), TEXTURES.index(texture), 1]] * n)
    p = tf.params(f, 7, np.arange(n))
    imgs = tf.render(f, seed=7)
    inner = [img[int(y) - 30:int(y) + 30, int(x) - 30:int(x) + 30] for img, x, y in zip(imgs, p.cx, p.cy)]
    return float(np.mean([(x == COLOR_UINT8[1]).all(-1).mean() for x in inner]))


def test_render__the_authors_renderer_draws_their_proportions():
    """Their stripes are P//3 of a 10 px period (30% on, ours 50%); their rain, a 7 px streak
    from each texture pixel with p 0.05, covers 1 - 0.95^7 = 30% (ours about 25%)."""
    assert _on_fraction("authors", "stripes") == pytest.approx(0.30, abs=0.03)
    assert _on_fraction("comm-diag", "stripes") == pytest.approx(0.50, abs=0.03)
    assert _on_fraction("authors", "rain") == pytest.approx(1 - 0.95 ** 7, abs=0.03)


def test_render__the_authors_renderer_has_a_soft_edge_and_whole_degree_angles():
    f = np.array([[s, 0, 2] for s in range(10)])  # solid, every shape
    soft, hard = Trifeature(224, style="authors").render(f, seed=1), Trifeature(224).render(f, seed=1)
    # hard edges: two colours only; soft edges blend the colour with the grey along the outline
    assert {tuple(c) for c in np.unique(hard.reshape(-1, 3), axis=0)} == {tuple(BACKGROUND_UINT8),
                                                                         tuple(COLOR_UINT8[2])}
    assert len(np.unique(soft.reshape(-1, 3), axis=0)) > 10
    p = Trifeature(224, style="authors").params(f, 1, np.arange(10))
    for a in (p.angle, p.tex_angle):
        deg = np.degrees(a)
        np.testing.assert_allclose(deg, np.round(deg), atol=1e-9)
        assert deg.min() >= -45 and deg.max() < 45
    with pytest.raises(ValueError, match="unknown renderer 'theirs'"):
        Trifeature(64, style="theirs")
