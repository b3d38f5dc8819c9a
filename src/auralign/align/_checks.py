"""Input validation and small helpers shared by the alignment losses.

Every public loss takes token sets ``x`` (B, N, D) and ``y`` (B, M, D), optional boolean padding masks
(True = real token) and optional token weights. Bad input raises one ``ValueError`` that names the
argument and the shapes involved.
"""

from __future__ import annotations

import torch
from torch import Tensor

REDUCTIONS = ("mean", "sum", "none")


def work_dtype(*ts: Tensor) -> torch.dtype:
    """float64 if any input is float64, else float32 (half/bf16 inputs are computed in fp32)."""
    return torch.float64 if any(t is not None and t.dtype == torch.float64 for t in ts) else torch.float32


def check_tokens(
    x: Tensor, y: Tensor, x_mask: Tensor | None = None, y_mask: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor, Tensor, bool]:
    """Validate a pair of token sets; returns (x, y, x_mask, y_mask, unbatched).

    2-D inputs (N, D) and (M, D) are treated as a batch of one (``unbatched`` is then True).
    Masks are returned as bool (B, N) and (B, M), all True when not given.
    """
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")
    if x.dim() != y.dim() or x.dim() not in (2, 3):
        raise ValueError(
            f"x and y must both be (B, N, D)/(B, M, D) or both (N, D)/(M, D); "
            f"got x {tuple(x.shape)} and y {tuple(y.shape)}"
        )
    unbatched = x.dim() == 2
    if unbatched:
        x, y = x.unsqueeze(0), y.unsqueeze(0)
        x_mask = None if x_mask is None else x_mask.unsqueeze(0)
        y_mask = None if y_mask is None else y_mask.unsqueeze(0)
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"x and y must have the same batch size; got x {tuple(x.shape)} and y {tuple(y.shape)}"
        )
    if x.shape[2] != y.shape[2]:
        raise ValueError(
            f"x and y must have the same token dim D; got x {tuple(x.shape)} and y {tuple(y.shape)}"
        )
    if x.shape[1] == 0 or y.shape[1] == 0:
        raise ValueError(f"x and y need at least one token; got x {tuple(x.shape)} and y {tuple(y.shape)}")
    if x.device != y.device:
        raise ValueError(f"x and y must be on the same device; got {x.device} and {y.device}")
    x_mask = _check_mask(x_mask, x, "x_mask", "x")
    y_mask = _check_mask(y_mask, y, "y_mask", "y")
    return x, y, x_mask, y_mask, unbatched


def _check_mask(mask: Tensor | None, t: Tensor, name: str, tname: str) -> Tensor:
    B, N = t.shape[:2]
    if mask is None:
        return torch.ones(B, N, dtype=torch.bool, device=t.device)
    if not isinstance(mask, Tensor) or tuple(mask.shape) != (B, N):
        shape = tuple(mask.shape) if isinstance(mask, Tensor) else type(mask).__name__
        raise ValueError(
            f"{name} must be a (B, N) = {(B, N)} tensor matching {tname} {tuple(t.shape)}; got {shape}"
        )
    mask = mask.to(device=t.device, dtype=torch.bool)
    if not bool(mask.any(1).all()):
        raise ValueError(f"{name} leaves a sample of {tname} {tuple(t.shape)} with no valid token")
    return mask


def check_weights(w: Tensor | None, mask: Tensor, name: str, dtype: torch.dtype, unbatched: bool) -> Tensor:
    """Validate token weights against a (B, N) mask; returns (B, N) weights of ``dtype`` summing to 1.

    ``None`` means uniform over the valid tokens. Weights may be (N,) (shared by the batch) or (B, N);
    they must be finite, non-negative, zero on padded tokens and sum to 1 per sample.
    """
    B, N = mask.shape
    if w is None:
        m = mask.to(dtype)
        return m / m.sum(1, keepdim=True)
    if not isinstance(w, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor or None, got {type(w).__name__}")
    shape = tuple(w.shape)
    if unbatched and w.dim() == 1:
        w = w.unsqueeze(0)
    elif w.dim() == 1:
        w = w.unsqueeze(0).expand(B, -1)
    if tuple(w.shape) != (B, N):
        raise ValueError(f"{name} must have shape (N,) or (B, N) = {(B, N)}; got {shape}")
    w = w.to(device=mask.device, dtype=dtype)
    wd = w.detach()
    if not bool(torch.isfinite(wd).all()):
        raise ValueError(f"{name} {shape} contains NaN or Inf")
    if bool((wd < 0).any()):
        raise ValueError(f"{name} {shape} has negative weights (min {wd.min().item():.3g})")
    if bool((wd.masked_fill(mask, 0) > 0).any()):
        raise ValueError(f"{name} {shape} puts weight on padded tokens (mask False)")
    sums = wd.sum(1)
    tol = 1e-4 if dtype == torch.float64 else 1e-3
    if bool(((sums - 1).abs() > tol).any()):
        bad = sums[(sums - 1).abs().argmax()].item()
        raise ValueError(f"{name} {shape} must sum to 1 per sample (got a sum of {bad:.6g})")
    # Exact renormalisation (as POT does for b) with an identity gradient, so da stays POT's u - mean(u).
    return w + (w / w.sum(1, keepdim=True) - w).detach()


def check_finite(t: Tensor, mask: Tensor, name: str) -> None:
    # Fast path: NaN/Inf anywhere makes the sum non-finite, so a finite sum proves every token finite
    # without the masked copy. The sum in the input's own dtype is cheap (a float64 sum of float32 input
    # casts every element); only if it overflows is it redone in float64. Padding garbage or an overflowing
    # sum fall through to the exact check.
    x = t.detach()
    if bool(torch.isfinite(x.sum())) or bool(torch.isfinite(x.sum(dtype=torch.float64))):
        return
    if not bool(torch.isfinite(x[mask]).all()):
        raise ValueError(f"{name} {tuple(t.shape)} contains NaN or Inf in non-padded tokens")


def reduce(v: Tensor, reduction: str, unbatched: bool) -> Tensor:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if reduction == "mean":
        return v.mean()
    if reduction == "sum":
        return v.sum()
    return v[0] if unbatched else v


def masked_mean(t: Tensor, mask: Tensor) -> Tensor:
    """Mean over dim 1 of (B, N, D) restricted to mask (B, N)."""
    m = mask.to(t.dtype).unsqueeze(-1)
    return (t.masked_fill(~mask.unsqueeze(-1), 0) * m).sum(1) / m.sum(1)


def sqeuclidean_cost(x: Tensor, y: Tensor) -> Tensor:
    """Squared-Euclidean cost (batched ``ot.dist``): (B, N, D), (B, M, D) -> (B, N, M); also 2-D.

    Uses the Gram expansion (one bmm); callers centre x and y first so that the expansion does not
    cancel catastrophically when tokens share a large offset.
    """
    xx = (x * x).sum(-1)
    yy = (y * y).sum(-1)
    mm = torch.baddbmm if x.dim() == 3 else torch.addmm  # (B, N, D) or (N, D)
    c = mm(xx.unsqueeze(-1) + yy.unsqueeze(-2), x, y.transpose(-1, -2), alpha=-2.0)
    return c.clamp_min(0)
