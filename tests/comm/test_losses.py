import math

import pytest
import torch

from comm_diag.comm.losses import clip_loss, comm_loss, gaussian_masked_loss, info_nce, nce_mutual_information, nt_xent


def test_info_nce__value_on_hand_made_tensors():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # logits = I / tau with tau = 1: each row's CE is log(1 + e^-1)
    assert info_nce(a, a, temperature=1.0).item() == pytest.approx(math.log(1 + math.exp(-1)), rel=1e-6)
    b = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # positives orthogonal, negatives aligned
    assert info_nce(a, b, temperature=1.0).item() == pytest.approx(math.log(1 + math.e), rel=1e-6)


def test_info_nce__symmetric_and_scale_invariant():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(16, 8, generator=g), torch.randn(16, 8, generator=g)
    assert info_nce(a, b).item() == pytest.approx(info_nce(b, a).item(), rel=1e-6)
    assert info_nce(3 * a, b).item() == pytest.approx(info_nce(a, b).item(), rel=1e-5)


def test_info_nce__perfect_alignment_beats_random():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(32, 16, generator=g)
    aligned, rand = info_nce(a, a), info_nce(a, torch.randn(32, 16, generator=g))
    assert aligned < rand
    assert nce_mutual_information(aligned, 32) > nce_mutual_information(rand, 32)


def test_info_nce__falls_over_20_steps():
    torch.manual_seed(0)
    x, y = torch.randn(16, 10), torch.randn(16, 10)
    f, h = torch.nn.Linear(10, 8), torch.nn.Linear(10, 8)
    opt = torch.optim.SGD([*f.parameters(), *h.parameters()], lr=0.5)
    losses = []
    for _ in range(20):
        loss = info_nce(f(x), h(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_info_nce__rejects_bad_shapes():
    with pytest.raises(ValueError, match="same shape"):
        info_nce(torch.randn(4, 3), torch.randn(4, 2))
    with pytest.raises(ValueError, match="at least 2"):
        info_nce(torch.randn(1, 3), torch.randn(1, 3))


def test_clip_loss__scale_is_clamped_at_100():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(8, 4, generator=g), torch.randn(8, 4, generator=g)
    huge = clip_loss(a, b, torch.tensor(50.0))
    assert huge.item() == pytest.approx(clip_loss(a, b, torch.tensor(math.log(100.0))).item(), rel=1e-6)
    assert clip_loss(a, b, torch.tensor(0.0)).item() == pytest.approx(info_nce(a, b, 1.0).item(), rel=1e-6)


def test_comm_loss__n_plus_one_terms_and_weights():
    g = torch.Generator().manual_seed(3)
    z = [torch.randn(8, 6, generator=g) for _ in range(6)]
    t = comm_loss(z[0], z[1], [z[2], z[3]], [z[4], z[5]], temperature=0.5)
    assert set(t) == {"loss", "full", "masked_1", "masked_2"}
    m1 = 0.5 * (info_nce(z[2], z[1], 0.5) + info_nce(z[4], z[0], 0.5))
    assert t["masked_1"].item() == pytest.approx(m1.item(), rel=1e-6)
    assert t["loss"].item() == pytest.approx((t["full"] + t["masked_1"] + t["masked_2"]).item(), rel=1e-6)
    only_full = comm_loss(z[0], z[1], [z[2], z[3]], [z[4], z[5]], 0.5, w_full=1, w_masked=0)
    assert only_full["loss"].item() == pytest.approx(t["full"].item(), rel=1e-6)


def test_losses__similarities_stay_fp32_under_a_bf16_autocast():
    # nearly parallel embeddings (as at initialisation): in bf16 the loss is off by ~1e-2
    g = torch.Generator().manual_seed(0)
    base = torch.randn(1, 32, generator=g)
    a = base + 3e-2 * torch.randn(16, 32, generator=g)
    b = base + 3e-2 * torch.randn(16, 32, generator=g)
    scale = torch.tensor(math.log(1 / 0.07))
    exact = (info_nce(a, b), clip_loss(a, b, scale))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cast = (info_nce(a, b), clip_loss(a, b, scale))
    for x, y in zip(cast, exact):
        assert x.dtype == torch.float32
        torch.testing.assert_close(x, y, atol=1e-6, rtol=1e-6)


def test_nt_xent__value_on_hand_made_tensors():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # anchor 0: positive b_0 (s=1), negatives b_1 (s=0) and a_1 (t=0): -log(e / (e + 2)), same for every anchor
    assert nt_xent(a, a, temperature=1.0).item() == pytest.approx(math.log(1 + 2 * math.exp(-1)), rel=1e-6)


def test_nt_xent__equals_a_loop_over_anchors():
    g = torch.Generator().manual_seed(4)
    a, b = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    tau = 0.3
    an, bn = torch.nn.functional.normalize(a, dim=1), torch.nn.functional.normalize(b, dim=1)

    def side(x, y):
        total = 0.0
        for i in range(len(x)):
            pos = torch.exp(x[i] @ y[i] / tau)
            neg = sum(torch.exp(x[i] @ y[j] / tau) for j in range(len(x)) if j != i) + \
                sum(torch.exp(x[i] @ x[j] / tau) for j in range(len(x)) if j != i)
            total += -torch.log(pos / (pos + neg))
        return total / len(x)
    expected = 0.5 * (side(an, bn) + side(bn, an))
    assert nt_xent(a, b, tau).item() == pytest.approx(expected.item(), rel=1e-5)
    # with same-view negatives the loss is never below the cross-view one
    assert nt_xent(a, b, tau).item() > info_nce(a, b, tau).item()


def test_comm_loss__authors_form_averages_nt_xent_terms():
    g = torch.Generator().manual_seed(5)
    z = [torch.randn(8, 6, generator=g) for _ in range(6)]
    t = comm_loss(z[0], z[1], [z[2], z[3]], [z[4], z[5]], 0.5, nce="nt_xent", terms="mean")
    assert t["full"].item() == pytest.approx(nt_xent(z[0], z[1], 0.5).item(), rel=1e-6)
    assert t["loss"].item() == pytest.approx((t["full"] + t["masked_1"] + t["masked_2"]).item() / 3, rel=1e-6)
    with pytest.raises(ValueError, match="nce must be one of"):
        comm_loss(z[0], z[1], [z[2]], [z[4]], nce="triplet")


def test_gaussian_masked_loss__equals_its_formula_with_an_explicit_covariance():
    g = torch.Generator().manual_seed(6)
    q = torch.randn(5, 4, generator=g)
    ks = [torch.randn(5, 4, generator=g) for _ in range(3)]
    tau, lam = 0.5, 0.8
    qn = torch.nn.functional.normalize(q, dim=1)
    kn = torch.stack([torch.nn.functional.normalize(k, dim=1) for k in ks])  # TxBxE
    mu = kn.mean(0)
    total = 0.0
    for b in range(5):
        cov = sum(torch.outer(kn[t, b] - mu[b], kn[t, b] - mu[b]) for t in range(3)) / 3  # ExE
        v = qn[b] @ cov @ qn[b]
        pos = (qn[b] @ mu[b] + lam / (2 * tau) * v) / tau
        negs = [qn[b] @ kn[t, n] / tau for t in range(3) for n in range(5) if n != b] + \
            [qn[b] @ qn[n] / tau for n in range(5) if n != b]
        logits = torch.stack([pos, *negs])
        total += -torch.log_softmax(logits, 0)[0] + lam / (2 * tau ** 2) * v
    assert gaussian_masked_loss(q, ks, tau, lam).item() == pytest.approx((total / 5).item(), rel=1e-5)


def test_gaussian_masked_loss__identical_masked_views_have_no_covariance_term():
    g = torch.Generator().manual_seed(7)
    q, k = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    # T copies of one view: zero spread, so the weight lambda changes nothing
    assert gaussian_masked_loss(q, [k, k, k], 0.2, 0.0).item() == \
        pytest.approx(gaussian_masked_loss(q, [k, k, k], 0.2, 5.0).item(), rel=1e-6)
    with pytest.raises(ValueError, match="at least 2 masked views"):
        gaussian_masked_loss(q, [k], 0.2, 1.0)
