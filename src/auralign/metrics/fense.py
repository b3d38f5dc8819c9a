"""FENSE (Zhou et al., 2022): SBERT-sim times a fluency penalty, per candidate:
fense = sbert_sim * (1 - 0.9 * [P(error) > 0.9]); the corpus score is the mean. Both models are loaded from a
configured path or hub id (see `sbert_sim.load_sbert` and `fer.load_echecker`); nothing is downloaded.
"""

import os
from collections.abc import Sequence

from auralign.metrics._common import Outs
from auralign.metrics._inputs import check_pair
from auralign.metrics.fer import ERROR_THRESHOLD, error_probs, load_echecker
from auralign.metrics.sbert_sim import load_sbert, model_suffix, sbert_sim_scores

PENALTY = 0.9


def fense(
    candidates: Sequence[str],
    mult_references: Sequence[Sequence[str]],
    sbert_model: str | os.PathLike | None = None,
    echecker: str | os.PathLike | None = None,
    echecker_base: str | os.PathLike | None = None,
    device: str = "cpu",
    penalty: float = PENALTY,
    threshold: float = ERROR_THRESHOLD,
    batch_size: int = 32,
) -> Outs:
    """FENSE (key `fense`), with its parts `sbert_sim` and `fer`; raises MetricUnavailable if a model is missing.
    With the packaged sentence model (sbert_model=PACKAGED) the keys are `fense_minilm` and `sbert_sim_minilm`."""
    cands, refs = check_pair(candidates, mult_references)
    model, tokenizer = load_echecker(echecker, echecker_base, device)
    encoder = load_sbert(sbert_model, device)
    sims = sbert_sim_scores(cands, refs, encoder, batch_size)
    flags = (error_probs(cands, model, tokenizer, batch_size)["error"] > threshold).astype(float)
    scores = sims * (1.0 - penalty * flags)
    suffix = model_suffix(sbert_model)  # FENSE with another sentence model is not FENSE: its keys say so
    sents = {f"fense{suffix}": scores, f"sbert_sim{suffix}": sims, "fer": flags}
    return {k: float(v.mean()) for k, v in sents.items()}, sents


class FENSE:
    """Class form of `fense`."""

    def __init__(
        self, sbert_model: str | None = None, echecker: str | None = None, device: str = "cpu"
    ) -> None:
        self.sbert_model, self.echecker, self.device = sbert_model, echecker, device

    def __call__(self, candidates: Sequence[str], mult_references: Sequence[Sequence[str]]) -> Outs:
        return fense(candidates, mult_references, self.sbert_model, self.echecker, device=self.device)
