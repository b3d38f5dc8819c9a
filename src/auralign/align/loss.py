"""``AlignmentLoss``: one module that picks a distribution-alignment loss by name (for configs)."""

from __future__ import annotations

from torch import Tensor, nn

from auralign.align.contrastive import contrastive_infonce
from auralign.align.mmd import mmd
from auralign.align.transport import ot_exact, sinkhorn

__all__ = ["METHODS", "AlignmentLoss"]

METHODS = {"mmd": mmd, "ot": ot_exact, "sinkhorn": sinkhorn, "contrastive": contrastive_infonce}


class AlignmentLoss(nn.Module):
    """Token-distribution alignment loss chosen by name: "mmd", "ot" (exact EMD), "sinkhorn" or
    "contrastive"; keyword options go to the function (e.g. ``AlignmentLoss("sinkhorn", eps=0.01)``).
    DALI's attentive OT has learnable weights and lives in :class:`AttentiveOT`.

    ``forward(x, y, x_mask=None, y_mask=None)`` returns the batch-mean loss.
    """

    def __init__(self, method: str = "mmd", **options) -> None:
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
        self.method, self.options = method, options

    def forward(
        self, x: Tensor, y: Tensor, x_mask: Tensor | None = None, y_mask: Tensor | None = None
    ) -> Tensor:
        return METHODS[self.method](x, y, x_mask=x_mask, y_mask=y_mask, **self.options)

    def extra_repr(self) -> str:
        return ", ".join([repr(self.method)] + [f"{k}={v!r}" for k, v in self.options.items()])
