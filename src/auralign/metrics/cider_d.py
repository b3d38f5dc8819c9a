"""CIDEr-D as coco-caption computes it (pycocoevalcap's `Cider`, the "CIDEr-D" of aac-metrics).

tf-idf vectors per n-gram order (document frequencies from the references, one document per candidate),
clipped dot product min(w_cand, w_ref) * w_ref, cosine per order, Gaussian length penalty (sigma 6), mean over
orders 1..4 and references, times 10; the corpus score is the mean over candidates. Kept quirk: the "length"
in the penalty counts bigrams (len - 1), exactly as coco-caption does.

One-candidate corpus: idf = log(N / df) with N = 1 is 0 for every n-gram, so every vector is zero and the
score is 0.0 (pycocoevalcap returns the same; aac-metrics raises). CIDEr-D only means something over a corpus:
a one-candidate result is reported as 0.0 with a warning rather than invented.
"""

import logging
from collections.abc import Sequence

import numpy as np

from auralign.metrics._common import Outs, prepare_table, ref_counts
from auralign.metrics._ngrams import MAX_N, NgramTable, lookup, owner_keys, unique_sorted

log = logging.getLogger(__name__)


def _weights(table: NgramTable) -> np.ndarray:
    ref = ~table.is_cand
    # Document frequency: for how many candidates' reference sets does the n-gram occur at least once.
    docs = unique_sorted(owner_keys(table, ref)) % max(table.n_grams, 1)
    df = np.bincount(docs, minlength=table.n_grams).astype(float)
    return table.count * (np.log(float(table.n_cands)) - np.log(np.maximum(1.0, df[table.gram])))


def cider_d_scores(table: NgramTable, n: int = MAX_N, sigma: float = 6.0) -> np.ndarray:
    """One CIDEr-D score per candidate."""
    if table.n_cands == 1:
        log.warning("CIDEr-D of a one-candidate corpus is 0 by definition (every idf is log(1/1) = 0)")
    n_sents, w = len(table.sent_len), _weights(table)
    keep = table.level < n
    norm = np.sqrt(np.bincount(table.sent[keep] * n + table.level[keep], w[keep] ** 2, n_sents * n))
    norm = norm.reshape(n_sents, n)
    cand, ref = table.is_cand & keep, ~table.is_cand & keep
    cand_keys = owner_keys(table, cand)  # sorted: candidate entries are ordered by (sentence, n-gram)
    w_cand = lookup(cand_keys, w[cand], owner_keys(table, ref))
    dot = np.minimum(w_cand, w[ref]) * w[ref]
    n_refs_total = n_sents - table.n_cands
    val = np.bincount((table.sent[ref] - table.n_cands) * n + table.level[ref], dot, n_refs_total * n)
    val = val.reshape(n_refs_total, n)
    owner = table.owner[table.n_cands :]
    denom = norm[owner] * norm[table.n_cands :]
    val = np.where(denom != 0, val / np.where(denom != 0, denom, 1.0), val)
    bigrams = np.maximum(table.sent_len - 1, 0)
    delta = (bigrams[owner] - bigrams[table.n_cands :]).astype(float)
    val = val * np.exp(-(delta**2) / (2 * sigma**2))[:, None]
    per_order = np.zeros((table.n_cands, n))
    np.add.at(per_order, owner, val)
    return per_order.mean(axis=1) / ref_counts(table) * 10.0


def cider_d(
    candidates: Sequence[str],
    mult_references: Sequence[Sequence[str]],
    preprocess: bool = True,
    n: int = MAX_N,
    sigma: float = 6.0,
) -> Outs:
    """CIDEr-D (key `cider_d`): corpus score (mean) and one score per candidate."""
    table, _, _ = prepare_table(candidates, mult_references, preprocess)
    sents = cider_d_scores(table, n, sigma)
    return {"cider_d": float(sents.mean())}, {"cider_d": sents}


class CIDErD:
    """Class form of `cider_d`."""

    def __init__(self, preprocess: bool = True, n: int = MAX_N, sigma: float = 6.0) -> None:
        self.preprocess, self.n, self.sigma = preprocess, n, sigma

    def __call__(self, candidates: Sequence[str], mult_references: Sequence[Sequence[str]]) -> Outs:
        return cider_d(candidates, mult_references, self.preprocess, self.n, self.sigma)
