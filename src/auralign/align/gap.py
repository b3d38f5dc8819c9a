"""Modality-gap figures: how far apart two modalities' token distributions sit (DALI Figure 4)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from auralign.align._checks import check_finite, check_tokens, masked_mean

__all__ = ["ModalityGap", "modality_gap"]


@dataclass
class ModalityGap:
    """Gap statistics between per-clip mean tokens of two modalities (all float64, on CPU).

    centroid_distance: |mean_i xbar_i - mean_i ybar_i|, xbar_i = clip i's mean x token.
    centroid_distance_normalized: the same on L2-normalised clip means (Liang et al.'s "gap").
    pair_distance: mean_i |xbar_i - ybar_i| (a clip's two modalities).
    pair_cosine: mean_i cos(xbar_i, ybar_i).
    pca_x, pca_y: (B, k) coordinates of xbar_i, ybar_i on the top-k principal axes of the pooled
        set {xbar} U {ybar} (the scatter of DALI's Figure 4: one point per clip and modality).
    explained_variance_ratio: (k,) share of the pooled variance on each axis.
    """

    centroid_distance: float
    centroid_distance_normalized: float
    pair_distance: float
    pair_cosine: float
    pca_x: Tensor
    pca_y: Tensor
    explained_variance_ratio: Tensor

    def to_dict(self) -> dict:
        """JSON-ready dict (tensors become nested lists) for a report or a plot."""
        return {k: (v.tolist() if isinstance(v, Tensor) else v) for k, v in asdict(self).items()}


@torch.no_grad()
def modality_gap(
    x: Tensor,
    y: Tensor,
    x_mask: Tensor | None = None,
    y_mask: Tensor | None = None,
    n_components: int = 2,
) -> ModalityGap:
    """Figures that make the modality gap visible, from (B, N, D) and (B, M, D) token sets.

    Each clip is summarised by its mean token (DALI: "PCA of average token distributions"); the
    principal axes are fitted on the 2B clip means of both modalities together, so a gap shows as
    two separated clouds. Pass ``ModalityGap.to_dict()`` to a plotting/report function.
    """
    x, y, x_mask, y_mask, _ = check_tokens(x, y, x_mask, y_mask)
    check_finite(x, x_mask, "x")
    check_finite(y, y_mask, "y")
    B, D = x.shape[0], x.shape[2]
    if not 1 <= n_components <= min(2 * B, D):
        raise ValueError(
            f"n_components must be in [1, min(2B, D)] = [1, {min(2 * B, D)}], got {n_components}"
        )
    mx = masked_mean(x.double(), x_mask).cpu()
    my = masked_mean(y.double(), y_mask).cpu()
    nx, ny = F.normalize(mx, dim=-1), F.normalize(my, dim=-1)
    z = torch.cat([mx, my])
    zc = z - z.mean(0)
    _, sv, vh = torch.linalg.svd(zc, full_matrices=False)
    axes = vh[:n_components]
    # Fix each axis' sign (largest |loading| positive) so figures are reproducible across runs.
    sign = torch.sign(axes.gather(1, axes.abs().argmax(1, keepdim=True)))
    axes = axes * torch.where(sign == 0, 1.0, sign)
    proj = zc @ axes.T
    var = sv**2
    return ModalityGap(
        centroid_distance=float((mx.mean(0) - my.mean(0)).norm()),
        centroid_distance_normalized=float((nx.mean(0) - ny.mean(0)).norm()),
        pair_distance=float((mx - my).norm(dim=1).mean()),
        pair_cosine=float((nx * ny).sum(1).mean()),
        pca_x=proj[:B],
        pca_y=proj[B:],
        explained_variance_ratio=var[:n_components] / var.sum().clamp_min(torch.finfo(var.dtype).tiny),
    )
