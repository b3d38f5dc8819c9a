"""Symmetric InfoNCE on mean-pooled tokens: the contrastive baseline DALI compares against."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from auralign.align._checks import check_tokens, masked_mean, work_dtype

__all__ = ["contrastive_infonce"]


def contrastive_infonce(
    x: Tensor,
    y: Tensor,
    *,
    x_mask: Tensor | None = None,
    y_mask: Tensor | None = None,
    temperature: float = 0.05,
) -> Tensor:
    """Symmetric InfoNCE between clips: logits = cos(mean x_i, mean y_j) / temperature.

    Loss = (CE(logits, diag) + CE(logits^T, diag)) / 2, the other clips of the batch being negatives
    (CAV-MAE / DALI's ``forward_contrastive`` with ``bidirect_contrast=True``).

    Args:
        x: (B, N, D) tokens or (B, D) already-pooled embeddings. y: (B, M, D) or (B, D).
        temperature: softmax temperature (DALI: 0.05).
        x_mask, y_mask: (B, N)/(B, M) bool padding masks for the mean pooling (token inputs only).
    """
    if not (temperature > 0):
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, Tensor) or t.dim() not in (2, 3) or not t.is_floating_point():
            shape = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(f"{name} must be a float (B, N, D) or (B, D) tensor, got {shape}")
    if x.dim() == 3 and y.dim() == 3:
        x, y, x_mask, y_mask, _ = check_tokens(x, y, x_mask, y_mask)
    elif x.dim() != y.dim():
        raise ValueError(
            f"x and y must both be tokens or both pooled; got x {tuple(x.shape)}, y {tuple(y.shape)}"
        )
    else:
        if x_mask is not None or y_mask is not None:
            raise ValueError(
                f"masks apply to (B, N, D) tokens, not pooled x {tuple(x.shape)}, y {tuple(y.shape)}"
            )
        if x.shape[0] != y.shape[0] or x.shape[1] != y.shape[1]:
            raise ValueError(f"x and y must have the same (B, D); got x {tuple(x.shape)}, y {tuple(y.shape)}")
    dtype = work_dtype(x, y)
    with torch.autocast(x.device.type, enabled=False):
        px = masked_mean(x.to(dtype), x_mask) if x.dim() == 3 else x.to(dtype)
        py = masked_mean(y.to(dtype), y_mask) if y.dim() == 3 else y.to(dtype)
        logits = F.normalize(px, dim=-1) @ F.normalize(py, dim=-1).T / temperature
        target = torch.arange(logits.shape[0], device=logits.device)
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
