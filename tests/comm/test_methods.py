import pytest
import torch

from comm_diag.comm.augment import Augment
from comm_diag.comm.config import TrainConfig
from comm_diag.comm.encoders import build_encoder, feature_grid
from comm_diag.comm.methods import METHODS, build_method

SMALL = dict(image_size=32, d=32, heads=8, proj_hidden=32, proj_dim=16)


def _xs(b=4, s=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(b, 3, s, s, generator=g), torch.rand(b, 3, s, s, generator=g)]


def _augs(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [lambda x: Augment("all")(x, g)] * 2


@pytest.mark.parametrize("method", list(METHODS))
def test_method__step_returns_finite_scalar_loss_and_features(method):
    torch.manual_seed(0)
    m = build_method(TrainConfig().replace(method=method, **SMALL))
    out = m.step(_xs(), _augs())
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
    out["loss"].backward()
    m.eval()
    with torch.no_grad():
        f = m.features(_xs())
    assert {"fused", "modality1", "modality2"} <= set(f) and f["fused"].shape[0] == 4


def test_comm__masking_a_modality_makes_its_embedding_independent_of_it():
    torch.manual_seed(0)
    m = build_method(TrainConfig().replace(method="comm", **SMALL)).eval()
    x1, x2 = _xs(seed=1)
    _, other = _xs(seed=2)
    with torch.no_grad():
        a, b = m.features([x1, x2]), m.features([x1, other])
    assert torch.allclose(a["modality1"], b["modality1"], atol=1e-6)  # x2 masked out
    assert not torch.allclose(a["modality2"], b["modality2"], atol=1e-3)
    assert not torch.allclose(a["fused"], b["fused"], atol=1e-3)


def test_comm__three_modalities_give_n_plus_one_terms():
    torch.manual_seed(0)
    m = build_method(TrainConfig().replace(method="comm", **SMALL), n_modalities=3)
    g = torch.Generator().manual_seed(0)
    out = m.step(_xs() + [torch.rand(4, 3, 32, 32)], [lambda x: Augment("all")(x, g)] * 3)
    assert {"full", "masked_1", "masked_2", "masked_3", "loss"} <= set(out)


def test_comm__linear_fusion_runs_and_masks():
    torch.manual_seed(0)
    m = build_method(TrainConfig().replace(method="comm", fusion="linear", **SMALL)).eval()
    x1, x2 = _xs(seed=1)
    with torch.no_grad():
        a, b = m.features([x1, x2]), m.features([x1, _xs(seed=3)[1]])
    assert torch.allclose(a["modality1"], b["modality1"])


def test_encoders__feature_maps_keep_spatial_positions():
    assert feature_grid(build_encoder("alexnet", 64, 0.25), 64) == (3, 3)
    assert feature_grid(build_encoder("alexnet", 224, 1.0), 224) == (6, 6)
    assert feature_grid(build_encoder("resnet18", 32), 32) == (4, 4)
    with pytest.raises(ValueError, match="choose from alexnet, alexnet_bn, resnet18, resnet50"):
        build_encoder("vgg", 64)


def test_encoders__alexnet_bn_normalises_every_convolution():
    plain, bn = build_encoder("alexnet", 64, 0.25), build_encoder("alexnet_bn", 64, 0.25)
    convs = [m for m in bn.modules() if isinstance(m, torch.nn.Conv2d)]
    norms = [m for m in bn.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(convs) == len(norms) == 5 and [c.out_channels for c in convs] == [n.num_features for n in norms]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())
    assert feature_grid(bn, 64) == feature_grid(plain, 64)


def test_cross__default_augmentation_is_mild_crop_only():
    assert METHODS["cross"].default_augment.transforms == ("crop",)
    assert METHODS["cross"].default_augment.crop_scale == (0.5, 1.0)
    assert METHODS["comm"].default_augment.transforms == ("crop", "flip", "jitter", "grayscale", "blur")


@pytest.mark.parametrize("method, settings", [("comm", dict(nce="nt_xent", terms="mean")),
                                              ("cross_self", dict(cross_term="heads", nce="nt_xent"))])
def test_method__authors_forms_train_and_are_seeded(method, settings):
    losses = []
    for _ in range(2):
        torch.manual_seed(0)  # weights, and Cross+Self's extra crops (the loop seeds it per epoch)
        m = build_method(TrainConfig().replace(method=method, **SMALL, **settings))
        out = m.step(_xs(), _augs())
        out["loss"].backward()
        losses.append(out["loss"].item())
    assert losses[0] == losses[1] and all(map(lambda v: v == v, losses))
    if method == "comm":  # averaged terms: the loss is the mean of the three logged terms
        assert out["loss"].item() == pytest.approx((out["full"] + out["masked_1"] + out["masked_2"]).item() / 3)


def test_cross_self__its_extra_view_draws_from_the_steps_generator_not_the_global_one():
    # the paper preset's cross term ("heads") encodes an extra mildly cropped view: with the
    # step's generator set, the global RNG's state (which a resumed run does not share) changes nothing
    torch.manual_seed(0)
    m = build_method(TrainConfig().replace(method="cross_self", cross_term="heads", **SMALL)).eval()
    losses = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        m.generator = torch.Generator().manual_seed(7)
        with torch.no_grad():
            losses.append(m.step(_xs(), [lambda x: x] * 2)["cross"])
    assert torch.equal(losses[0], losses[1])
    m.generator = torch.Generator().manual_seed(8)  # and the generator does drive it
    with torch.no_grad():
        assert not torch.equal(m.step(_xs(), [lambda x: x] * 2)["cross"], losses[0])
