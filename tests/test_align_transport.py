"""auralign.align.transport against POT (ot.emd2, ot.sinkhorn sinkhorn_log) and float64 references."""

import itertools
import warnings

import numpy as np
import ot
import pytest
import torch

from auralign.align import ot_exact, sinkhorn

SEEDS = range(6)


def _problem(seed: int, dtype=torch.float64, weights: bool = True):
    g = torch.Generator().manual_seed(seed)
    B = int(torch.randint(1, 4, (1,), generator=g))
    N, M = (int(v) for v in torch.randint(2, 14, (2,), generator=g))
    D = int(torch.randint(1, 9, (1,), generator=g))
    scale = 10.0 ** float(torch.empty(1).uniform_(-1, 2, generator=g))  # costs ~1e-2 .. 1e4
    x = torch.randn(B, N, D, generator=g, dtype=dtype) * scale
    y = (torch.randn(B, M, D, generator=g, dtype=dtype) + 0.5) * scale
    a = b = None
    if weights:
        a = torch.rand(B, N, generator=g, dtype=dtype) + 0.05
        b = torch.rand(B, M, generator=g, dtype=dtype) + 0.05
        a, b = a / a.sum(1, keepdim=True), b / b.sum(1, keepdim=True)
    return x, y, a, b


def _np(t):
    return t.detach().numpy()


def _weights(w, B, n):
    return np.full((B, n), 1.0 / n) if w is None else _np(w)


# ------------------------------------------------------------------------------------------ exact


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("weights", [False, True])
def test_ot_exact_equals_pot_emd2(seed, weights):
    x, y, a, b = _problem(seed, weights=weights)
    B, N, M = x.shape[0], x.shape[1], y.shape[1]
    got = ot_exact(x, y, a=a, b=b, reduction="none")
    aw, bw = _weights(a, B, N), _weights(b, B, M)
    ref = [ot.emd2(aw[i], bw[i], ot.dist(_np(x[i]), _np(y[i]))) for i in range(B)]
    np.testing.assert_allclose(_np(got), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_ot_exact_gradients_equal_pot_torch_backend(seed):
    """Gradients w.r.t. x, y, a, b equal those of the official recipe (ot.dist + ot.emd2 per sample)."""
    x, y, a, b = _problem(seed)
    leaves = [t.clone().requires_grad_() for t in (x, y, a, b)]
    xl, yl, al, bl = leaves
    ot_exact(xl, yl, a=al, b=bl, workers=2).backward()
    refs = [t.clone().requires_grad_() for t in (x, y, a, b)]
    xr, yr, ar, br = refs
    loss = torch.stack([ot.emd2(ar[i], br[i], ot.dist(xr[i], yr[i])) for i in range(x.shape[0])]).mean()
    loss.backward()
    for got, ref in zip(leaves, refs, strict=True):
        torch.testing.assert_close(got.grad, ref.grad, rtol=1e-7, atol=1e-9 * float(ref.grad.abs().max()))


@pytest.mark.parametrize("seed", range(3))
def test_ot_exact_fp32_gradients_with_a_large_shared_offset(seed):
    """fp32 tokens far from the origin: x.grad, y.grad (from the sparse plan, centred) match the float64
    envelope gradient of POT's plan on the same values to 1e-6 of its size (~1e-5 without centring)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 9, 5, generator=g) + 300.0
    y = torch.randn(2, 11, 5, generator=g) + 300.5
    xs, ys = x.clone().requires_grad_(), y.clone().requires_grad_()
    ot_exact(xs, ys, reduction="sum").backward()
    for i in range(2):
        xd, yd = x[i].double(), y[i].double()
        G, _ = ot.emd(
            torch.full((9,), 1 / 9.0, dtype=torch.float64),
            torch.full((11,), 1 / 11.0, dtype=torch.float64),
            ot.dist(xd, yd),
            log=True,
        )
        dx = 2 * (G.sum(1, keepdim=True) * xd - G @ yd)
        dy = 2 * (G.sum(0).unsqueeze(1) * yd - G.T @ xd)
        torch.testing.assert_close(xs.grad[i].double(), dx, rtol=0, atol=1e-6 * float(dx.abs().max()))
        torch.testing.assert_close(ys.grad[i].double(), dy, rtol=0, atol=1e-6 * float(dy.abs().max()))


def test_ot_exact_plan_gradients_torch_path_equals_cpu_path():
    """The torch (GPU) and numpy/scipy (CPU) backward paths compute the same gradients."""
    from auralign.align.transport import _plan_grads_numpy, _plan_grads_torch

    g = torch.Generator().manual_seed(0)
    B, N, M, D = 3, 7, 9, 4
    xw, yw = torch.randn(B, N, D, generator=g), torch.randn(B, M, D, generator=g)
    s = torch.randn(B, D, generator=g)
    ptr, rows, cols = [0], [], []
    for _ in range(B):  # a random support of N + M - 1 entries (not a valid plan; the algebra is the same)
        k = torch.randperm(N * M, generator=g)[: N + M - 1].sort().values
        rows.append(k // M)
        cols.append(k % M)
        ptr.append(ptr[-1] + len(k))
    rows, cols = torch.cat(rows), torch.cat(cols)
    w = torch.rand(len(rows), generator=g)
    out = []
    for fn in (_plan_grads_torch, _plan_grads_numpy):
        gx, gy = torch.empty_like(xw), torch.empty_like(yw)
        fn(rows, cols, w, ptr, xw=xw, yw=yw, s=s, gx=gx, gy=gy)
        out.append((gx, gy))
    for i in range(B):
        P = torch.zeros(N, M)
        P[rows[ptr[i] : ptr[i + 1]], cols[ptr[i] : ptr[i + 1]]] = w[ptr[i] : ptr[i + 1]]
        xs, ys = xw[i] - s[i], yw[i] - s[i]
        for gx, gy in out:
            torch.testing.assert_close(gx[i], P.sum(1, keepdim=True) * xs - P @ ys)
            torch.testing.assert_close(gy[i], P.sum(0).unsqueeze(1) * ys - P.T @ xs)


def test_ot_exact_masks_equal_unpadded_problems():
    g = torch.Generator().manual_seed(0)
    x, y = (
        torch.randn(3, 9, 4, generator=g, dtype=torch.float64),
        torch.randn(3, 7, 4, generator=g, dtype=torch.float64),
    )
    xm = torch.tensor([[1] * 9, [1] * 5 + [0] * 4, [0, 1] * 4 + [1]], dtype=torch.bool)
    ym = torch.tensor([[1] * 7, [1] * 3 + [0] * 4, [1, 0] * 3 + [1]], dtype=torch.bool)
    xp, yp = x.clone(), y.clone()
    xp[~xm], yp[~ym] = float("nan"), 1e30  # garbage in padding must not matter
    xp.requires_grad_()
    got = ot_exact(xp, yp, x_mask=xm, y_mask=ym, reduction="none")
    got.sum().backward()
    for i in range(3):
        xi = x[i][xm[i]].clone().requires_grad_()
        ref = ot_exact(xi, y[i][ym[i]])
        ref.backward()
        torch.testing.assert_close(got[i], ref)
        torch.testing.assert_close(xp.grad[i][xm[i]], xi.grad)
        assert torch.all(xp.grad[i][~xm[i]] == 0)


def test_ot_exact_sequential_equals_threaded_and_no_grad():
    x, y, a, b = _problem(3)
    with torch.no_grad():
        v1 = ot_exact(x, y, a=a, b=b, workers=1, reduction="none")
    v2 = ot_exact(x, y, a=a, b=b, workers=4, reduction="none")
    torch.testing.assert_close(v1, v2, rtol=0, atol=0)


# --------------------------------------------------------------------------------------- sinkhorn


def _pot_sinkhorn(a, b, M, reg):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # self-transport (x vs x) can stall just above stopThr
        G = ot.sinkhorn(a, b, M, reg, method="sinkhorn_log", numItermax=20_000, stopThr=1e-10)
    return G


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("eps", [0.5, 0.05, 0.01])
def test_sinkhorn_matches_pot_sinkhorn_log(seed, eps):
    x, y, a, b = _problem(seed, weights=seed % 2 == 0)
    B, N, M = x.shape[0], x.shape[1], y.shape[1]
    got, info = sinkhorn(
        x, y, a=a, b=b, eps=eps, tol=1e-9, max_iter=200_000, reduction="none", return_info=True
    )
    ent, _ = sinkhorn(
        x,
        y,
        a=a,
        b=b,
        eps=eps,
        tol=1e-9,
        max_iter=200_000,
        reduction="none",
        value="entropic",
        return_info=True,
    )
    aw, bw = _weights(a, B, N), _weights(b, B, M)
    for i in range(B):
        Mi = ot.dist(_np(x[i]), _np(y[i]))
        reg = float(info["eps"][i])
        assert reg == pytest.approx(eps * Mi.mean(), rel=1e-12)  # eps relative to the mean cost
        G = _pot_sinkhorn(aw[i], bw[i], Mi, reg)
        lin = float((G * Mi).sum())
        kl = float((G * np.log(G / np.outer(aw[i], bw[i]) + 1e-300)).sum())
        assert float(got[i]) == pytest.approx(lin, rel=1e-5)
        assert float(ent[i]) == pytest.approx(lin + reg * kl, rel=1e-5, abs=1e-8 * abs(lin))


@pytest.mark.parametrize("seed", range(4))
def test_sinkhorn_converges_to_exact_ot(seed):
    x, y, a, b = _problem(seed)
    exact = ot_exact(x, y, a=a, b=b, reduction="none")
    gaps = []
    for eps in (0.1, 0.01, 1e-3, 1e-4):
        v = sinkhorn(x, y, a=a, b=b, eps=eps, tol=1e-9, max_iter=200_000, reduction="none")
        gaps.append(float(((v - exact) / exact).abs().max()))
    assert all(g2 <= g1 + 1e-9 for g1, g2 in itertools.pairwise(gaps)), gaps
    assert gaps[-1] < 1e-3, gaps


@pytest.mark.parametrize("seed", range(3))
def test_sinkhorn_gradients_are_envelope_gradients(seed):
    """da, db equal POT's dual potentials (centred); dx equals sum_j P_ij 2 (x_i - y_j) from POT's plan."""
    x, y, a, b = _problem(seed)
    eps = 0.05
    xs, ys, as_, bs = (t.clone().requires_grad_() for t in (x, y, a, b))
    out, info = sinkhorn(
        xs, ys, a=as_, b=bs, eps=eps, tol=1e-12, max_iter=200_000, reduction="sum", return_info=True
    )
    out.backward()
    for i in range(x.shape[0]):
        Mi = ot.dist(_np(x[i]), _np(y[i]))
        reg = float(info["eps"][i])
        G, log = ot.sinkhorn(
            _np(a[i]), _np(b[i]), Mi, reg, method="sinkhorn_log", log=True, stopThr=1e-13, numItermax=200_000
        )
        f = reg * (log["log_u"] - np.log(_np(a[i])))
        g = reg * (log["log_v"] - np.log(_np(b[i])))
        np.testing.assert_allclose(_np(as_.grad[i]), f - f.mean(), rtol=1e-6, atol=1e-8 * np.abs(Mi).max())
        np.testing.assert_allclose(_np(bs.grad[i]), g - g.mean(), rtol=1e-6, atol=1e-8 * np.abs(Mi).max())
        dx = 2 * (G.sum(1)[:, None] * _np(x[i]) - G @ _np(y[i]))
        np.testing.assert_allclose(_np(xs.grad[i]), dx, rtol=1e-6, atol=1e-9 * np.abs(dx).max())


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("debiased", [False, True])
def test_sinkhorn_gradcheck(seed, debiased):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 2, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 4, 2, generator=g, dtype=torch.float64, requires_grad=True)

    def f(x, y):  # the entropic value: its exact gradient is the envelope gradient
        return sinkhorn(
            x,
            y,
            eps=0.5,
            eps_scale=None,
            tol=1e-11,
            max_iter=2000,
            value="entropic",
            debiased=debiased,
            reduction="none",
        )

    assert torch.autograd.gradcheck(f, (x, y), eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("seed", range(4))
def test_sinkhorn_masks_equal_unpadded(seed):
    g = torch.Generator().manual_seed(seed)
    B, N, M, D = 3, 10, 8, 5
    x, y = torch.randn(B, N, D, generator=g), torch.randn(B, M, D, generator=g) + 1
    xm = torch.rand(B, N, generator=g) > 0.3
    ym = torch.rand(B, M, generator=g) > 0.3
    xm[:, 0] = ym[:, 0] = True
    xp, yp = x.clone(), y.clone()
    xp[~xm], yp[~ym] = float("inf"), float("nan")
    xp.requires_grad_()
    got = sinkhorn(xp, yp, eps=0.02, x_mask=xm, y_mask=ym, tol=1e-7, reduction="none")
    got.sum().backward()
    assert torch.isfinite(xp.grad).all()
    for i in range(B):
        xi = x[i][xm[i]].clone().requires_grad_()
        ref = sinkhorn(xi, y[i][ym[i]], eps=0.02, tol=1e-7)
        ref.backward()
        torch.testing.assert_close(got[i], ref, rtol=1e-5, atol=0)
        torch.testing.assert_close(xp.grad[i][xm[i]], xi.grad, rtol=1e-4, atol=1e-5)
        assert torch.all(xp.grad[i][~xm[i]] == 0)


@pytest.mark.parametrize("scale", [1.0, 30.0, 100.0])
def test_sinkhorn_small_eps_large_costs_padded_fp32_is_finite(scale):
    """eps = 1e-3 (relative) with costs up to ~1e4 and padded tokens: no NaN/Inf, close to exact OT."""
    g = torch.Generator().manual_seed(1)
    B, N, M, D = 4, 40, 48, 16
    x = (torch.randn(B, N, D, generator=g) * scale / 4).requires_grad_()
    y = torch.randn(B, M, D, generator=g) * scale / 4 + scale / 8
    xm = torch.ones(B, N, dtype=torch.bool)
    xm[1, 30:] = False
    ym = torch.ones(B, M, dtype=torch.bool)
    ym[2, 10:] = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter may be reached at this eps; finiteness is the point
        v = sinkhorn(x, y, eps=1e-3, x_mask=xm, y_mask=ym, max_iter=2000, reduction="none")
    v.sum().backward()
    assert torch.isfinite(v).all() and torch.isfinite(x.grad).all()
    C = torch.cdist(x.detach(), y) ** 2
    assert float(C.max()) > 1e3 or scale < 30
    exact = ot_exact(x.detach(), y, x_mask=xm, y_mask=ym, reduction="none")
    assert torch.all((v - exact).abs() / exact < 1e-2)


def test_sinkhorn_bf16_autocast_computes_in_fp32():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(2, 16, 8, generator=g), torch.randn(2, 20, 8, generator=g)
    ref = sinkhorn(x, y, eps=0.01, tol=1e-7, reduction="none")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = sinkhorn(x, y, eps=0.01, tol=1e-7, reduction="none")
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, ref)
    gb = sinkhorn(x.bfloat16(), y.bfloat16(), eps=0.01, tol=1e-7, reduction="none")
    assert gb.dtype == torch.float32 and torch.isfinite(gb).all()


@pytest.mark.parametrize("seed", range(4))
def test_sinkhorn_debiased_divergence(seed):
    """S = OT(x, y) - (OT(x, x) + OT(y, y)) / 2 with POT's entropic values at the same absolute eps."""
    x, y, _, _ = _problem(seed)
    kw = dict(eps=0.2, tol=1e-10, max_iter=100_000, reduction="none", value="entropic")
    s, info = sinkhorn(x, y, debiased=True, return_info=True, **kw)

    def pot_entropic(p, q, reg):
        Mi = ot.dist(_np(p), _np(q))
        wa, wb = ot.unif(len(p)), ot.unif(len(q))
        G = _pot_sinkhorn(wa, wb, Mi, reg)
        return float((G * Mi).sum() + reg * (G * np.log(G / np.outer(wa, wb) + 1e-300)).sum())

    for i in range(x.shape[0]):
        reg = float(info["eps"][i])
        ref = (
            pot_entropic(x[i], y[i], reg)
            - (pot_entropic(x[i], x[i], reg) + pot_entropic(y[i], y[i], reg)) / 2
        )
        assert float(s[i]) == pytest.approx(ref, rel=1e-5, abs=1e-7 * pot_entropic(x[i], y[i], reg))
        assert float(s[i]) >= 0
    kw.update(tol=1e-8, max_iter=300)  # x vs x: the plan is near-diagonal, tol may sit below the float floor
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zero = sinkhorn(x, x.clone(), debiased=True, **kw)
    assert torch.all(zero.abs() <= 1e-4 * sinkhorn(x, y, **kw).abs())


def test_sinkhorn_fixed_iterations_and_pot_batch():
    """n_iter runs exactly that many iterations; the value agrees with POT's ot.batch solver."""
    g = torch.Generator().manual_seed(0)
    x, y = (
        torch.randn(3, 12, 4, generator=g, dtype=torch.float64),
        torch.randn(3, 9, 4, generator=g, dtype=torch.float64),
    )
    _, info = sinkhorn(x, y, eps=0.1, n_iter=37, return_info=True)
    assert info["n_iter"] == 37
    v = sinkhorn(x, y, eps=0.1, eps_scale=None, tol=1e-12, max_iter=100_000, reduction="none")
    res = ot.batch.solve_batch(
        ot.batch.dist_batch(x, y), 0.1, method="log_sinkhorn", max_iter=100_000, tol=1e-13, grad="detach"
    )
    torch.testing.assert_close(v, res.value_linear, rtol=1e-8, atol=0)


def test_sinkhorn_warns_when_not_converged():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(2, 30, 4, generator=g), torch.randn(2, 30, 4, generator=g)
    with pytest.warns(UserWarning, match="did not converge"):
        sinkhorn(x, y, eps=1e-4, max_iter=20)


# ---------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("fn", [ot_exact, sinkhorn])
def test_bad_inputs_raise_clear_errors(fn):
    x, y = torch.randn(2, 5, 3), torch.randn(2, 6, 3)
    with pytest.raises(ValueError, match=r"same batch size.*\(2, 5, 3\).*\(3, 6, 3\)"):
        fn(x, torch.randn(3, 6, 3))
    with pytest.raises(ValueError, match=r"token dim"):
        fn(x, torch.randn(2, 6, 4))
    with pytest.raises(ValueError, match=r"both be"):
        fn(x, torch.randn(6, 3))
    with pytest.raises(ValueError, match=r"a \(2, 5\) must sum to 1"):
        fn(x, y, a=torch.full((2, 5), 0.3))
    with pytest.raises(ValueError, match=r"b \(6,\) has negative"):
        fn(x, y, b=torch.tensor([0.5, 0.5, 0.5, -0.5, 0.0, 0.0]))
    with pytest.raises(ValueError, match=r"a must have shape"):
        fn(x, y, a=torch.full((4,), 0.25))
    with pytest.raises(ValueError, match=r"x_mask must be a \(B, N\)"):
        fn(x, y, x_mask=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"x_mask leaves a sample"):
        fn(x, y, x_mask=torch.tensor([[True] * 5, [False] * 5]))
    with pytest.raises(ValueError, match=r"padded tokens"):
        fn(x, y, a=torch.full((2, 5), 0.2), x_mask=torch.tensor([[True] * 5, [True] * 4 + [False]]))
    with pytest.raises(ValueError, match=r"NaN or Inf"):
        fn(x.clone().fill_(float("nan")), y)
    with pytest.raises(ValueError, match=r"reduction"):
        fn(x, y, reduction="avg")
