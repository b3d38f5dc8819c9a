"""auralign.align.mmd against a direct float64 double-loop implementation of DALI's estimator."""

import math

import pytest
import torch

from auralign.align import mmd

MULTS = (0.25, 0.5, 1.0, 2.0, 4.0)


def _loop_mmd(x, y, multipliers=MULTS, biased=True, sigma2=None):
    """One sample, Python double loops in float64: Z = [x; y], DALI's bandwidth and kernel."""
    z = [list(map(float, r)) for r in torch.cat([x, y]).double()]
    n, nz = len(x), len(z)
    d = [[sum((p - q) ** 2 for p, q in zip(z[i], z[j], strict=True)) for j in range(nz)] for i in range(nz)]
    if sigma2 is None:
        sigma2 = sum(d[i][j] for i in range(nz) for j in range(nz) if i != j) / (nz * nz - nz)
    k = [[sum(math.exp(-d[i][j] / (sigma2 * m)) for m in multipliers) for j in range(nz)] for i in range(nz)]

    def block_mean(r0, r1, c0, c1, skip_diag):
        vals = [k[i][j] for i in range(r0, r1) for j in range(c0, c1) if not (skip_diag and i == j)]
        return sum(vals) / len(vals)

    xx = block_mean(0, n, 0, n, not biased)
    yy = block_mean(n, nz, n, nz, not biased)
    xy = block_mean(0, n, n, nz, False)
    return xx - 2 * xy + yy


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("biased", [True, False])
def test_mmd_equals_double_loop(seed, biased):
    g = torch.Generator().manual_seed(seed)
    B = int(torch.randint(1, 4, (1,), generator=g))
    N, M = (int(v) for v in torch.randint(2, 9, (2,), generator=g))
    D = int(torch.randint(1, 6, (1,), generator=g))
    scale = 10.0 ** float(torch.empty(1).uniform_(-2, 2, generator=g))
    x = torch.randn(B, N, D, generator=g, dtype=torch.float64) * scale
    y = (torch.randn(B, M, D, generator=g, dtype=torch.float64) + 0.3) * scale
    mults = MULTS if seed % 2 == 0 else (0.1, 1.0, 3.0)
    got = mmd(x, y, multipliers=mults, biased=biased, reduction="none")
    ref = torch.tensor([_loop_mmd(x[i], y[i], mults, biased) for i in range(B)], dtype=torch.float64)
    torch.testing.assert_close(got, ref, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(mmd(x, y, multipliers=mults, biased=biased), ref.mean(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_mmd_masks_equal_unpadded(seed):
    g = torch.Generator().manual_seed(seed)
    x, y = (
        torch.randn(3, 7, 4, generator=g, dtype=torch.float64),
        torch.randn(3, 6, 4, generator=g, dtype=torch.float64),
    )
    xm, ym = torch.rand(3, 7, generator=g) > 0.4, torch.rand(3, 6, generator=g) > 0.4
    xm[:, :2] = ym[:, :2] = True
    xp, yp = x.clone(), y.clone()
    xp[~xm], yp[~ym] = float("nan"), 1e6
    xp.requires_grad_()
    got = mmd(xp, yp, x_mask=xm, y_mask=ym, reduction="none")
    got.sum().backward()
    for i in range(3):
        ref = _loop_mmd(x[i][xm[i]], y[i][ym[i]])
        assert float(got[i].detach()) == pytest.approx(ref, rel=1e-9, abs=1e-12)
        xi = x[i][xm[i]].clone().requires_grad_()
        mmd(xi, y[i][ym[i]]).backward()
        torch.testing.assert_close(xp.grad[i][xm[i]], xi.grad)
        assert torch.all(xp.grad[i][~xm[i]] == 0)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("biased", [True, False])
def test_mmd_gradcheck_fixed_bandwidth(seed, biased):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, y: mmd(x, y, biased=biased, bandwidth=2.5, reduction="none"), (x, y)
    )


def test_mmd_bandwidth_carries_no_gradient():
    """The data-driven sigma2 is detached (DALI): same gradient as with that sigma2 fixed."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 5, 3, generator=g, dtype=torch.float64)
    z = torch.cat([x.detach(), y], 1)
    d2 = torch.cdist(z, z) ** 2
    n = z.shape[1]
    sigma2 = d2.sum((1, 2)) / (n * n - n)
    (gx,) = torch.autograd.grad(mmd(x, y, reduction="sum"), x)
    (gf,) = torch.autograd.grad(mmd(x, y, bandwidth=sigma2, reduction="sum"), x)
    torch.testing.assert_close(gx, gf)


def test_mmd_properties_and_dtypes():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 10, 4, generator=g)
    assert float(mmd(x, x.clone()).abs()) < 1e-6
    assert float(mmd(x, x + 3.0)) > 0.5
    with torch.autocast("cpu", dtype=torch.bfloat16):
        v = mmd(x, x + 1.0)
    assert v.dtype == torch.float32
    torch.testing.assert_close(v, mmd(x, x + 1.0))
    assert mmd(x[0], x[1]).shape == ()  # unbatched (N, D) inputs


def test_mmd_bad_inputs():
    x = torch.randn(2, 5, 3)
    with pytest.raises(ValueError, match=r"same token dim"):
        mmd(x, torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match=r"multipliers"):
        mmd(x, x, multipliers=(1.0, -1.0))
    with pytest.raises(ValueError, match=r"unbiased MMD needs >= 2"):
        mmd(x, x, x_mask=torch.tensor([[True] + [False] * 4, [True] * 5]), biased=False)
    with pytest.raises(ValueError, match=r"y_mask must be"):
        mmd(x, x, y_mask=torch.ones(5, dtype=torch.bool))
