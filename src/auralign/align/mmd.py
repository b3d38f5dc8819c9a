"""DALI's multi-bandwidth Gaussian MMD^2 between token sets."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from auralign.align._checks import check_finite, check_tokens, reduce, sqeuclidean_cost, work_dtype

__all__ = ["mmd"]


def mmd(
    x: Tensor,
    y: Tensor,
    *,
    x_mask: Tensor | None = None,
    y_mask: Tensor | None = None,
    multipliers: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0),
    biased: bool = True,
    bandwidth: float | Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Squared MMD with the kernel k(u, v) = sum_m exp(-|u - v|^2 / (sigma2 * m)), per sample.

    As in DALI: Z = [x; y], sigma2 = mean off-diagonal squared distance within Z (no gradient flows
    through it), biased estimate mean K_xx - 2 mean K_xy + mean K_yy, mean over the batch.

    Args:
        x: (B, N, D) or (N, D) tokens. y: (B, M, D) or (M, D) tokens.
        x_mask, y_mask: (B, N)/(B, M) bool, True for real tokens; padding is ignored everywhere,
            including the bandwidth.
        multipliers: bandwidth multipliers m (DALI: 2^k for k in -2..2).
        biased: biased V-statistic (DALI) or the unbiased U-statistic (diagonal terms excluded from
            K_xx and K_yy; needs >= 2 valid tokens per set).
        bandwidth: fixed sigma2 (float or (B,) tensor) instead of the data-driven one.
        reduction: "mean" (DALI), "sum" or "none" ((B,) values).
    """
    x, y, x_mask, y_mask, unbatched = check_tokens(x, y, x_mask, y_mask)
    if len(multipliers) == 0 or any(not float(m) > 0 for m in multipliers):
        raise ValueError(f"multipliers must be a non-empty sequence of positive floats, got {multipliers!r}")
    check_finite(x, x_mask, "x")
    check_finite(y, y_mask, "y")
    if not biased and (int(x_mask.sum(1).min()) < 2 or int(y_mask.sum(1).min()) < 2):
        raise ValueError(
            f"unbiased MMD needs >= 2 valid tokens per set; got x {tuple(x.shape)}, y {tuple(y.shape)}"
        )
    dtype = work_dtype(x, y)
    B = x.shape[0]
    with torch.autocast(x.device.type, enabled=False):
        z = torch.cat([x, y], 1).to(dtype)
        valid = torch.cat([x_mask, y_mask], 1)
        z = z.masked_fill(~valid.unsqueeze(-1), 0)  # padding may hold anything, even NaN
        vm = valid.to(dtype).unsqueeze(-1)
        z = z - ((z.detach() * vm).sum(1, keepdim=True) / vm.sum(1, keepdim=True))  # translation invariant
        d2 = sqeuclidean_cost(z, z)
        eye = torch.eye(z.shape[1], dtype=torch.bool, device=z.device)
        d2 = d2.masked_fill(eye, 0)  # exact zeros on the diagonal (the Gram expansion leaves rounding)
        pair = valid.unsqueeze(-1) & valid.unsqueeze(-2)
        off = pair & ~eye
        if bandwidth is None:
            sigma2 = (d2.detach() * off).sum((1, 2)) / off.sum((1, 2)).clamp_min(1)
        else:
            sigma2 = torch.as_tensor(bandwidth, dtype=dtype, device=z.device).expand(B)
        sigma2 = sigma2.clamp_min(torch.finfo(dtype).tiny).view(B, 1, 1)
        k = sum(torch.exp(d2 / (-float(m) * sigma2)) for m in multipliers)
        ux = torch.cat([x_mask, torch.zeros_like(y_mask)], 1).to(dtype)
        uy = torch.cat([torch.zeros_like(x_mask), y_mask], 1).to(dtype)
        n, m = ux.sum(1), uy.sum(1)
        if not biased:
            k = k.masked_fill(eye, 0)
        kux = torch.bmm(k, ux.unsqueeze(-1)).squeeze(-1)  # padded rows/cols are zeroed by ux, uy
        kuy = torch.bmm(k, uy.unsqueeze(-1)).squeeze(-1)
        sxx, sxy, syy = (kux * ux).sum(1), (kux * uy).sum(1), (kuy * uy).sum(1)
        if biased:
            out = sxx / (n * n) - 2 * sxy / (n * m) + syy / (m * m)
        else:
            out = sxx / (n * (n - 1)) - 2 * sxy / (n * m) + syy / (m * (m - 1))
    return reduce(out, reduction, unbatched)
