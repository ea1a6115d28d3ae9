"""The fast path (#50), tested on CPU where a GPU run would exercise it: the augmentation
drawn apart from its pixel work, which compiles whole (the capture the GPU's inductor
fuses; "aot_eager" here: the same graph, no code generation) to the same views and the same
generator state; both views through an encoder in one pass, to the same losses (float64);
and ``fast`` as a run setting (bf16; the compiled augmentation only on a GPU)."""

from __future__ import annotations

import pytest
import torch

from comm_diag.comm.augment import Augment
from comm_diag.comm.config import TrainConfig, preset
from comm_diag.comm.methods import resolve
from comm_diag.comm.methods.registry import build_method
from comm_diag.comm.runtime import Runtime
from comm_diag.errors import InputError


@pytest.mark.parametrize("policy", ["all", "crop+flip+rotate+jitter+grayscale+blur"])
def test_the_compiled_augmentation_draws_and_computes_what_the_eager_one_does(policy):
    aug = Augment(policy)
    x = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    fused = Runtime.create("cpu", "fp32").fuse(aug.apply, backend="aot_eager")  # fullgraph: a break would raise
    gens = [torch.Generator().manual_seed(7) for _ in range(2)]
    eager, compiled = aug(x, gens[0]), aug(x, gens[1], fused)
    torch.testing.assert_close(compiled, eager, rtol=0, atol=1e-6)
    assert torch.equal(gens[0].get_state(), gens[1].get_state())  # the same draws, in the same order
    assert eager.shape == x.shape and not torch.equal(eager, x)


def test_the_fast_path_compiles_only_on_a_gpu_and_is_bf16():
    cpu, aug = Runtime.create("cpu", "auto", fast=True), Augment()
    assert cpu.precision == "bf16" and cpu.fuse(aug.apply) == aug.apply  # the eager fallback
    assert Runtime.of(TrainConfig(device="cpu", fast=True)).fast
    with pytest.raises(InputError, match="fast is the bf16 path"):
        TrainConfig(fast=True, precision="fp32").validate()


def _loss_both_ways(method: str, encoder: str) -> tuple[torch.Tensor, torch.Tensor]:
    cfg = resolve(preset("smoke").replace(method=method, encoder=encoder, image_size=32))
    model = build_method(cfg, 2).double().train()
    xs = [torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(i), dtype=torch.float64)
          for i in range(2)]
    aug = Augment("crop+flip+jitter")

    def fns(seed):
        gen = torch.Generator().manual_seed(seed)
        model.generator = gen
        return [lambda x, g=gen: aug(x, g).double() for _ in range(2)]
    one_pass = model.step(xs, fns(3))["loss"]
    model.encode_views = lambda i, views: [model.encode(i, v) for v in views]  # each view alone, as 0.8
    per_view = model.step(xs, fns(3))["loss"]
    return one_pass, per_view


@pytest.mark.parametrize("method", ["comm", "cross_self"])
def test_both_views_in_one_encoder_pass_give_the_per_view_losses(method):
    one_pass, per_view = _loss_both_ways(method, "alexnet")
    torch.testing.assert_close(one_pass, per_view, rtol=1e-10, atol=1e-12)


def test_an_encoder_with_batch_statistics_encodes_each_view_alone():
    model = build_method(resolve(preset("cpu").replace(image_size=32)), 2)  # AlexNet-BN
    seen = []
    model.encode = lambda i, x: seen.append(len(x)) or torch.zeros(len(x), 4)
    out = model.encode_views(0, [torch.zeros(3, 3, 32, 32), torch.zeros(3, 3, 32, 32)])
    assert seen == [3, 3] and [len(o) for o in out] == [3, 3]
    plain = build_method(resolve(preset("smoke").replace(image_size=32)), 2)  # AlexNet: one pass
    seen.clear()
    plain.encode = lambda i, x: seen.append(len(x)) or torch.zeros(len(x), 4)
    assert [len(o) for o in plain.encode_views(0, [torch.zeros(3, 3, 32, 32)] * 2)] == [3, 3] and seen == [6]


def test_the_compiled_tail_gives_the_eager_losses():
    """The fast path compiles CoMM's tail after the encoders (fusion, head, n+1-term loss) whole
    (``Method.compiled_tail``): the same losses, here in float64 with the capture alone."""
    cfg = resolve(preset("smoke").replace(image_size=32))
    model = build_method(cfg, 2).double().train()
    xs = [torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(i), dtype=torch.float64) for i in range(2)]
    aug = Augment("crop+flip")

    def terms():
        gen = torch.Generator().manual_seed(3)
        torch.manual_seed(0)
        return model.step(xs, [lambda x: aug(x, gen).double()] * 2)
    eager = terms()
    model.compiled_tail = Runtime.create("cpu", "fp32").fuse(model.loss_tail, backend="aot_eager")
    compiled = terms()
    assert eager.keys() == compiled.keys()
    for k in eager:
        torch.testing.assert_close(compiled[k], eager[k], rtol=1e-10, atol=1e-12)
