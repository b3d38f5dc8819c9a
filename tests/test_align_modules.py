"""AttentiveOT, EntropySchedule, contrastive_infonce, modality_gap and AlignmentLoss."""

import math

import numpy as np
import pytest
import torch

from auralign.align import (
    AlignmentLoss,
    AttentiveOT,
    EntropySchedule,
    contrastive_infonce,
    mmd,
    modality_gap,
    ot_exact,
    sinkhorn,
)


def test_entropy_schedule_is_dalis():
    s = EntropySchedule()
    assert [s(e) for e in range(1, 9)] == [None, 500.0, 400.0, 300.0, 200.0, 100.0, 100.0, 100.0]
    assert s.frozen(1) and not s.frozen(2)
    with pytest.raises(ValueError, match="1-based"):
        s(0)
    custom = EntropySchedule(frozen_epochs=0, values=(7.0,), final=1.0)
    assert [custom(e) for e in (1, 2, 3)] == [7.0, 1.0, 1.0]


def _tokens(seed, B=3, N=7, M=9, D=16):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, N, D, generator=g), torch.randn(B, M, D, generator=g) + 0.5


@pytest.mark.parametrize("seed", range(3))
def test_attentive_weights_match_a_direct_computation(seed):
    torch.manual_seed(seed)
    aot = AttentiveOT(dim=16, num_heads=4)
    x, y = _tokens(seed)
    a, b = aot.weights(x, y)
    h = aot.attn_x(aot.q_x(x), aot.k_y(y), aot.v_y(y))[0]
    ref_a = 0.5 * torch.softmax(h.mean(-1) / 20, 1) + 0.5 / x.shape[1]
    h = aot.attn_y(aot.q_y(y), aot.k_x(x), aot.v_x(x))[0]
    ref_b = 0.5 * torch.softmax(h.mean(-1) / 20, 1) + 0.5 / y.shape[1]
    torch.testing.assert_close(a, ref_a)
    torch.testing.assert_close(b, ref_b)
    torch.testing.assert_close(a.sum(1), torch.ones(3))
    assert torch.all(a >= 0.5 / x.shape[1] - 1e-7) and torch.all(b >= 0.5 / y.shape[1] - 1e-7)


def test_attentive_forward_loss_entropy_and_masks():
    torch.manual_seed(0)
    aot = AttentiveOT(dim=16, num_heads=4)
    x, y = _tokens(0)
    out = aot(x, y)
    ref = ot_exact(x, y, a=out.a.detach(), b=out.b.detach(), reduction="none")
    torch.testing.assert_close(out.cost.detach(), ref)
    torch.testing.assert_close(out.loss, out.cost.mean())
    H = -(out.a * out.a.log()).sum(1) - (out.b * out.b.log()).sum(1)
    torch.testing.assert_close(out.entropy, H)
    assert torch.all(out.entropy <= math.log(7) + math.log(9) + 1e-5)
    # Padding: masked tokens get zero weight and their content does not change anything.
    ym = torch.ones(3, 9, dtype=torch.bool)
    ym[1, 6:] = False
    y2 = y.clone()
    y2[1, 6:] = 1e3
    out2 = aot(x, y2, y_mask=ym)
    assert torch.all(out2.b[1, 6:] == 0)
    torch.testing.assert_close(out2.b[1].sum(), torch.tensor(1.0))
    out3 = aot(x[1:2], y[1:2, :6])
    torch.testing.assert_close(out2.cost[1], out3.cost[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out2.a[1], out3.a[0], rtol=1e-5, atol=1e-6)


def test_attentive_training_step_and_schedule():
    """Heads frozen at epoch 1; later their objective OT - lambda H(a, b) moves only their parameters."""
    torch.manual_seed(0)
    enc = torch.nn.Linear(16, 16)
    aot = AttentiveOT(dim=16, num_heads=4, solver="sinkhorn", solver_kwargs={"eps": 0.05})
    x, y = _tokens(1)
    out = aot(enc(x), y)
    assert aot.attention_loss(out, epoch=1) is None
    att = aot.attention_loss(out, epoch=2)
    torch.testing.assert_close(att, out.loss - 500 * out.entropy.mean())
    enc_params, att_params = list(enc.parameters()), list(aot.parameters())
    out.loss.backward(retain_graph=True, inputs=enc_params)
    att.backward(inputs=att_params)
    assert all(p.grad is not None for p in enc_params)
    assert sum(float(p.grad.abs().sum()) for p in att_params if p.grad is not None) > 0
    # Gradient through the OT weights: d loss / d a equals the centred dual potential (envelope).
    a = out.a.detach().requires_grad_()
    b = out.b.detach().requires_grad_()
    sinkhorn(
        x.detach() @ enc.weight.T.detach() + enc.bias.detach(), y, a=a, b=b, eps=0.05, reduction="sum"
    ).backward()
    assert torch.allclose(a.grad.sum(1), torch.zeros(3), atol=1e-4)
    adv = AttentiveOT(dim=16, num_heads=4, adversarial=True)
    o = adv(x, y)
    torch.testing.assert_close(adv.attention_loss(o, 7), -o.loss - 100 * o.entropy.mean())


def test_encoder_objective_adds_the_official_heads_loss_once_they_train():
    """official: the encoder's loss is OT + lossX, lossX = OT - H * 100 (6 - epoch + 1) for epochs 2-5 and
    OT - H * 100 from epoch 6 (traintest_distribution_alignment.py), whatever the heads' own objective;
    ot_only: OT. Epoch 1 (heads frozen): OT for both."""
    torch.manual_seed(0)
    x, y = _tokens(3)
    for adversarial in (False, True):
        for objective in ("official", "ot_only"):
            aot = AttentiveOT(dim=16, num_heads=4, adversarial=adversarial, encoder_objective=objective)
            out = aot(x, y)
            assert aot.encoder_loss(out, 1) is out.loss
            for epoch in (2, 3, 5, 6, 9):
                loss_x = out.loss - out.entropy.mean() * (100 * (6 - epoch + 1) if epoch < 6 else 100)
                expected = out.loss + loss_x if objective == "official" else out.loss
                torch.testing.assert_close(aot.encoder_loss(out, epoch), expected)
    assert AttentiveOT(dim=16, num_heads=4).encoder_objective == "official"
    with pytest.raises(ValueError, match="encoder_objective"):
        AttentiveOT(dim=16, num_heads=4, encoder_objective="both")


def test_attentive_eval_uses_uniform_weights():
    aot = AttentiveOT(dim=16, num_heads=4).eval()
    x, y = _tokens(2)
    out = aot(x, y)
    torch.testing.assert_close(out.a, torch.full((3, 7), 1 / 7))
    torch.testing.assert_close(out.cost, ot_exact(x, y, reduction="none"))
    with pytest.raises(ValueError, match="D = 16"):
        aot(torch.randn(2, 3, 8), torch.randn(2, 4, 8))


@pytest.mark.parametrize("seed", range(4))
def test_contrastive_equals_official_formula(seed):
    g = torch.Generator().manual_seed(seed)
    x, y = (
        torch.randn(5, 7, 6, generator=g, dtype=torch.float64),
        torch.randn(5, 9, 6, generator=g, dtype=torch.float64),
    )
    # Independent reference: DALI/CAV-MAE forward_contrastive with bidirect_contrast=True, in numpy.
    ax, vy = x.mean(1).numpy(), y.mean(1).numpy()
    ax /= np.linalg.norm(ax, axis=1, keepdims=True)
    vy /= np.linalg.norm(vy, axis=1, keepdims=True)
    t = ax @ vy.T / 0.05

    def diag_log_softmax_dim0(m):
        m = m - m.max(0, keepdims=True)
        return np.diag(m - np.log(np.exp(m).sum(0, keepdims=True)))

    ref = (-diag_log_softmax_dim0(t).mean() - diag_log_softmax_dim0(t.T).mean()) / 2
    assert float(contrastive_infonce(x, y)) == pytest.approx(ref, rel=1e-10)
    assert float(contrastive_infonce(x.mean(1), y.mean(1))) == pytest.approx(ref, rel=1e-10)
    xm = torch.ones(5, 7, dtype=torch.bool)
    xm[:, 4:] = False
    x2 = x.clone()
    x2[:, 4:] = 1e6
    torch.testing.assert_close(contrastive_infonce(x2, y, x_mask=xm), contrastive_infonce(x[:, :4], y))
    with pytest.raises(ValueError, match="temperature"):
        contrastive_infonce(x, y, temperature=0)
    with pytest.raises(ValueError, match="both be tokens or both pooled"):
        contrastive_infonce(x, y.mean(1))


def test_modality_gap_figures():
    g = torch.Generator().manual_seed(0)
    B, D = 12, 8
    x = torch.randn(B, 5, D, generator=g)
    shift = torch.zeros(D)
    shift[0] = 10.0
    y = torch.randn(B, 6, D, generator=g) + shift
    gap = modality_gap(x, y)
    mx, my = x.double().mean(1), y.double().mean(1)
    assert gap.centroid_distance == pytest.approx(float((mx.mean(0) - my.mean(0)).norm()))
    assert gap.pair_distance == pytest.approx(float((mx - my).norm(dim=1).mean()))
    assert gap.pca_x.shape == (B, 2) and gap.pca_y.shape == (B, 2)
    # The gap dominates: the first principal axis separates the two modalities.
    assert float(gap.explained_variance_ratio[0]) > 0.9
    assert torch.all(torch.sign(gap.pca_x[:, 0]) != torch.sign(gap.pca_y[0, 0]))
    # PCA agrees with numpy's SVD up to sign.
    z = torch.cat([mx, my]).numpy()
    z = z - z.mean(0)
    _, sv, vh = np.linalg.svd(z, full_matrices=False)
    np.testing.assert_allclose(np.abs(gap.pca_x.numpy()), np.abs(z[:B] @ vh[:2].T), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(gap.explained_variance_ratio.numpy(), sv[:2] ** 2 / (sv**2).sum(), rtol=1e-10)
    d = gap.to_dict()
    assert isinstance(d["pca_x"], list) and len(d["pca_x"]) == B
    same = modality_gap(x, x.clone())
    assert same.centroid_distance < 1e-9 and same.pair_cosine == pytest.approx(1.0)
    with pytest.raises(ValueError, match="n_components"):
        modality_gap(x, y, n_components=99)


def test_alignment_loss_dispatch():
    x, y = _tokens(3)
    torch.testing.assert_close(AlignmentLoss("mmd")(x, y), mmd(x, y))
    torch.testing.assert_close(AlignmentLoss("ot_exact")(x, y), ot_exact(x, y))
    torch.testing.assert_close(AlignmentLoss("sinkhorn", eps=0.1)(x, y), sinkhorn(x, y, eps=0.1))
    torch.testing.assert_close(AlignmentLoss("contrastive")(x, y), contrastive_infonce(x, y))
    assert "eps=0.1" in repr(AlignmentLoss("sinkhorn", eps=0.1))
    with pytest.raises(ValueError, match="method must be one of"):
        AlignmentLoss("wasserstein")
