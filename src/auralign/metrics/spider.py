"""SPIDEr = (CIDEr-D + SPICE) / 2 per candidate; the corpus score is the mean. Needs SPICE's runtime: where it is
missing this raises MetricUnavailable (and `evaluate` reports SPIDEr as unavailable, never a half score)."""

import os
from collections.abc import Sequence

from auralign.metrics._common import Outs, prepare_tokens
from auralign.metrics._ngrams import build_table
from auralign.metrics.cider_d import cider_d_scores
from auralign.metrics.spice import spice_runtime, spice_scores


def spider(
    candidates: Sequence[str],
    mult_references: Sequence[Sequence[str]],
    preprocess: bool = True,
    corenlp_dir: str | os.PathLike | None = None,
    java: str | None = None,
) -> Outs:
    """SPIDEr (key `spider`) with its parts `cider_d` and `spice`."""
    runtime = spice_runtime(corenlp_dir, java)  # fail before any work when SPICE cannot run
    cand_toks, ref_toks = prepare_tokens(candidates, mult_references, preprocess)
    cider = cider_d_scores(build_table(cand_toks, ref_toks))
    spice = spice_scores(
        [" ".join(c) for c in cand_toks], [[" ".join(r) for r in g] for g in ref_toks], runtime
    )
    sents = {"cider_d": cider, "spice": spice, "spider": (cider + spice) / 2}
    return {k: float(v.mean()) for k, v in sents.items()}, sents
