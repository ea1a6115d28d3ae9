import pytest
import torch

import torch.nn.functional as F

from comm_diag.comm.augment import Augment, affine_grid, parse_policy


def _images(b=8, s=32):
    g = torch.Generator().manual_seed(0)
    return torch.rand(b, 3, s, s, generator=g)


def test_augment__keeps_shape_and_range_and_is_seeded():
    x = _images()
    a = Augment("all")
    y1 = a(x, torch.Generator().manual_seed(5))
    y2 = a(x, torch.Generator().manual_seed(5))
    y3 = a(x, torch.Generator().manual_seed(6))
    assert y1.shape == x.shape and y1.min() >= 0 and y1.max() <= 1
    assert torch.equal(y1, y2) and not torch.equal(y1, y3)


def test_augment__independent_parameters_per_sample():
    x = _images(1).expand(6, -1, -1, -1).contiguous()  # six copies of one image
    y = Augment("all")(x, torch.Generator().manual_seed(0))
    diffs = [(y[0] - y[i]).abs().mean().item() for i in range(1, 6)]
    assert min(diffs) > 1e-3


def test_augment__none_is_identity_and_policies_parse():
    x = _images()
    assert torch.equal(Augment("none")(x, torch.Generator()), x)
    assert parse_policy("color") == ("jitter", "grayscale")
    assert parse_policy("crop+flip") == ("crop", "flip")
    with pytest.raises(ValueError, match="unknown augmentation 'sharpen'"):
        parse_policy("sharpen")


def test_augment__crop_of_constant_image_is_constant_and_grayscale_equalises_channels():
    x = torch.full((4, 3, 32, 32), 0.3)
    assert torch.allclose(Augment("crop+flip")(x, torch.Generator().manual_seed(0)), x, atol=1e-6)
    y = Augment("grayscale", p_gray=1.0)(_images(), torch.Generator().manual_seed(0))
    assert torch.allclose(y[:, 0], y[:, 1]) and torch.allclose(y[:, 1], y[:, 2])


def test_augment__crop_zooms_in():
    x = torch.zeros(16, 1, 32, 32)
    x[:, :, ::2] = 1.0  # horizontal stripes, period 2 px
    y = Augment("crop", crop_scale=(0.08, 0.1))(x.expand(-1, 3, -1, -1), torch.Generator().manual_seed(0))
    # a 3x zoom turns the 2 px stripes into ~6 px ones: fewer row-to-row changes
    changes = lambda t: (t[:, 0, 1:] - t[:, 0, :-1]).abs().mean()  # noqa: E731
    assert changes(y) < 0.5 * changes(x.expand(-1, 3, -1, -1))


def test_augment__blur_smooths():
    x = _images()
    y = Augment("blur", p_blur=1.0)(x, torch.Generator().manual_seed(0))
    assert (y[:, :, 1:] - y[:, :, :-1]).abs().mean() < (x[:, :, 1:] - x[:, :, :-1]).abs().mean()


def test_augment__stays_fp32_under_a_bf16_autocast():
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    plain = Augment("all")(x, torch.Generator().manual_seed(1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cast = Augment("all")(x, torch.Generator().manual_seed(1))
    assert cast.dtype == torch.float32
    torch.testing.assert_close(cast, plain)


def test_augment__rotate_turns_stripes_and_keeps_the_centre():
    x = torch.zeros(64, 1, 33, 33)
    x[:, :, :, ::4] = 1.0  # vertical stripes: all the change is along x
    y = Augment("rotate")(x.expand(-1, 3, -1, -1), torch.Generator().manual_seed(0))[:, 0]
    along_y = (y[:, 1:] - y[:, :-1]).abs().mean(dim=(1, 2))  # zero for unrotated vertical stripes
    assert (along_y > 0.05).float().mean() > 0.8  # most samples turned by a sizeable angle
    assert along_y.std() > 0.01  # by different angles
    assert torch.allclose(y[:, 16, 16], x[:, 0, 16, 16], atol=0.35)  # about the centre
    assert "rotate" not in parse_policy("all")  # not part of SimCLR's set


def test_augment__blur_is_relative_to_the_image():
    def spread(h: int) -> torch.Tensor:
        """Std of a blurred centred dot along x, as a fraction of the side, per sample."""
        x = torch.zeros(16, 3, h, h)
        x[:, :, h // 2, h // 2] = 1.0
        y = Augment("blur", p_blur=1.0)(x, torch.Generator().manual_seed(0))[:, 0].sum(1)  # BxW profile
        pos = torch.arange(h, dtype=torch.float32)
        w = y / y.sum(1, keepdim=True)
        mean = (w * pos).sum(1, keepdim=True)
        return ((w * (pos - mean) ** 2).sum(1).sqrt()) / h
    # the same draws blur a 224 px image as much, relative to its side, as a 448 px one (SimCLR's
    # sigma is defined at 224 px); compared where the blur spans pixels, not a fraction of one
    small, big = spread(224), spread(448)
    wide = small * 224 > 0.7
    assert wide.sum() >= 4
    torch.testing.assert_close(small[wide], big[wide], rtol=0.1, atol=0.0)


@pytest.mark.parametrize("h,w", [(64, 64), (32, 48), (224, 224)])
def test_affine_grid__is_torchs_grid(h, w):
    # the broadcast grid replaces F.affine_grid (a slow batched matmul on CPU): same sampling points
    theta = torch.randn(16, 2, 3, generator=torch.Generator().manual_seed(h + w))
    ours, torchs = affine_grid(theta, h, w), F.affine_grid(theta, [16, 3, h, w], align_corners=False)
    assert ours.shape == torchs.shape == (16, h, w, 2)
    assert torch.allclose(ours, torchs, atol=2e-6, rtol=0)


def test_the_authors_torchvision_pipeline_is_seeded_by_the_steps_generator_alone():
    """``torchvision``: torchvision's own transforms image by image (the fidelity study's
    augmentation variant), their draws seeded from the step's generator; torch's global
    generator is left as it was, and the step cannot be recorded as a CUDA graph."""
    from types import SimpleNamespace

    from comm_diag.comm.config import preset
    from comm_diag.comm.cuda_graph import unsafe_reason
    from comm_diag.comm.methods import build_method

    x = torch.rand(6, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    aug = Augment("torchvision")
    gen = lambda s: torch.Generator().manual_seed(s)  # noqa: E731
    before = torch.get_rng_state()
    a, b, c = aug(x, gen(0)), aug(x, gen(0)), aug(x, gen(1))
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a, x)
    assert a.shape == x.shape and 0.0 <= float(a.min()) and float(a.max()) <= 1.0
    with pytest.raises(ValueError, match="joins no other"):
        parse_policy("torchvision+crop")
    gpu = SimpleNamespace(on_gpu=True)  # the rule is asked before any GPU work: its answer, not a run
    model = build_method(preset("smoke").replace(method="comm", image_size=32))  # graph_safe: only the aug is not
    assert "draws its parameters on the host" in unsafe_reason(model, gpu, 1, [aug])
    assert "on the host" not in (unsafe_reason(model, gpu, 1, [Augment("all")]) or "")
