"""SPIDEr-FL (DCASE 2023): SPIDEr with FENSE's fluency penalty, spider * (1 - 0.9 * [P(error) > 0.9])."""

import os
from collections.abc import Sequence

from auralign.metrics._common import Outs
from auralign.metrics.fense import PENALTY
from auralign.metrics.fer import fer
from auralign.metrics.spider import spider


def spider_fl(
    candidates: Sequence[str],
    mult_references: Sequence[Sequence[str]],
    echecker: str | os.PathLike | None = None,
    echecker_base: str | os.PathLike | None = None,
    corenlp_dir: str | os.PathLike | None = None,
    java: str | None = None,
    device: str = "cpu",
) -> Outs:
    """SPIDEr-FL (key `spider_fl`) with `spider`, `cider_d`, `spice` and `fer`."""
    fer_corpus, fer_sents = fer(candidates, echecker, echecker_base, device)
    corpus, sents = spider(candidates, mult_references, corenlp_dir=corenlp_dir, java=java)
    sents = {**sents, **fer_sents, "spider_fl": sents["spider"] * (1.0 - PENALTY * fer_sents["fer"])}
    return {**corpus, **fer_corpus, "spider_fl": float(sents["spider_fl"].mean())}, sents
