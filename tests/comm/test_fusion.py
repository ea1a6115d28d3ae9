"""The [CLS]-only evaluation of the fusion block equals the whole nn.TransformerEncoderLayer."""

import pytest
import torch

from comm_diag.comm.fusion import TransformerFusion

KEEPS = [None, [True, False], [False, True], [True, True]]


def _tokens(seed: int, b: int = 5, lengths=(9, 4), d: int = 32) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, n, d, generator=g, requires_grad=True) for n in lengths]


@pytest.mark.parametrize("train", [True, False])
def test_readouts__equal_the_whole_block_for_every_mask(train):
    torch.manual_seed(0)
    f = TransformerFusion(32, heads=4).train(train)
    tokens = _tokens(1)
    with torch.no_grad():
        fast = f.readouts(tokens, KEEPS)
        for keep, z in zip(KEEPS, fast):
            assert z.shape == (5, 32)
            torch.testing.assert_close(z, f.block_reference(tokens, keep), atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(f(tokens, keep), z)
    # masking out a modality changes Z: the masks reach the attention
    assert not torch.allclose(fast[0], fast[1], atol=1e-3) and not torch.allclose(fast[1], fast[2], atol=1e-3)


def test_readouts__give_the_whole_blocks_gradients():
    torch.manual_seed(0)
    f = TransformerFusion(32, heads=4)
    tokens = _tokens(2)
    weights = torch.randn(len(KEEPS), 5, 32, generator=torch.Generator().manual_seed(3))

    def grads(zs):
        loss = sum((w * z).sum() for w, z in zip(weights, zs))
        return torch.autograd.grad(loss, [*tokens, *f.parameters()])

    fast = grads(f.readouts(tokens, KEEPS))
    slow = grads([f.block_reference(tokens, keep) for keep in KEEPS])
    for a, b in zip(fast, slow):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
