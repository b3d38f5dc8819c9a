"""Distribution-alignment losses between token sets (DALI): MMD, exact OT, Sinkhorn, attentive OT,
contrastive InfoNCE, and modality-gap figures. Plain functions over batched torch tensors (any
device; half/bf16 inputs are computed in fp32), in the style of POT.

x: (B, N, D) and y: (B, M, D) token sets (e.g. 512 audio tokens vs 576 CLIP tokens, D = 1024);
optional boolean padding masks (B, N)/(B, M), True for real tokens, always passed by keyword. ``LOSSES``
(`auralign.align.loss`) is the one table of losses by config name; attentive OT sits beside it.
"""

from auralign.align._checks import sqeuclidean_cost
from auralign.align.attentive import AttentiveOT, AttentiveOTOutput, EntropySchedule
from auralign.align.contrastive import contrastive_infonce
from auralign.align.gap import ModalityGap, modality_gap
from auralign.align.loss import ATTENTIVE_OT, LOSSES, AlignmentLoss, method_names
from auralign.align.mmd import mmd
from auralign.align.transport import ot_exact, sinkhorn

__all__ = [
    "ATTENTIVE_OT",
    "LOSSES",
    "AlignmentLoss",
    "AttentiveOT",
    "AttentiveOTOutput",
    "EntropySchedule",
    "ModalityGap",
    "contrastive_infonce",
    "method_names",
    "mmd",
    "modality_gap",
    "ot_exact",
    "sinkhorn",
    "sqeuclidean_cost",
]
