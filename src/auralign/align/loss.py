"""The alignment losses by config name: ``LOSSES``, the one table, and ``AlignmentLoss`` that picks from it.

Every entry is a plain function ``f(x, y, *, x_mask=None, y_mask=None, **hyper) -> Tensor``: token sets x
(B, N, D) and y (B, M, D), optional boolean padding masks (True for real tokens), keyword hyper-parameters
(a config's ``method_options``), and the batch-mean loss that the audio encoder minimises. Adding a loss is
its function plus one entry here; the DALI align config accepts every key of ``LOSSES``.

Attentive OT (``ATTENTIVE_OT``) is the one method outside the table, on purpose: it is a module with
learnable cross-attention heads that need their own optimiser and an objective that changes with the epoch
(``AttentiveOT.attention_loss``), so it cannot be a stateless ``f(x, y)``; the align recipe builds it from
the config's ``attention`` section. ``method_names()`` lists both, for configs and their error messages.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from auralign.align.contrastive import contrastive_infonce
from auralign.align.mmd import mmd
from auralign.align.transport import ot_exact, sinkhorn

__all__ = ["ATTENTIVE_OT", "LOSSES", "AlignmentLoss", "method_names"]

LOSSES: dict[str, Callable[..., Tensor]] = {
    "mmd": mmd,
    "ot_exact": ot_exact,
    "sinkhorn": sinkhorn,
    "contrastive": contrastive_infonce,
}
ATTENTIVE_OT = "attentive_ot"


def method_names() -> list[str]:
    """Every alignment method a config may name: the keys of ``LOSSES`` and attentive OT."""
    return sorted([*LOSSES, ATTENTIVE_OT])


class AlignmentLoss(nn.Module):
    """A loss of ``LOSSES`` chosen by name, with its keyword hyper-parameters fixed
    (e.g. ``AlignmentLoss("sinkhorn", eps=0.01)``).

    ``forward(x, y, *, x_mask=None, y_mask=None)`` returns the batch-mean loss.
    """

    def __init__(self, method: str = "mmd", **hyper) -> None:
        super().__init__()
        if method not in LOSSES:
            raise ValueError(f"method must be one of {sorted(LOSSES)}, got {method!r}")
        self.method, self.hyper = method, hyper

    def forward(
        self, x: Tensor, y: Tensor, *, x_mask: Tensor | None = None, y_mask: Tensor | None = None
    ) -> Tensor:
        return LOSSES[self.method](x, y, x_mask=x_mask, y_mask=y_mask, **self.hyper)

    def extra_repr(self) -> str:
        return ", ".join([repr(self.method)] + [f"{k}={v!r}" for k, v in self.hyper.items()])
