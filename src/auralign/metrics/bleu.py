"""BLEU-1..4 as coco-caption computes it: clipped n-gram precision, "closest" reference length, corpus score
from summed counts (not the mean of sentence scores), and the same 1e-9 / 1e-15 smoothing constants."""

from collections.abc import Sequence

import numpy as np

from auralign.metrics._common import Outs, prepare_table
from auralign.metrics._ngrams import MAX_N, NgramTable, lookup, owner_keys

_SMALL, _TINY = 1e-9, 1e-15


def bleu_stats(table: NgramTable) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per candidate: clipped matches (C, 4), n-gram counts (C, 4), length (C,), closest reference length (C,)."""
    n_cands, is_cand = table.n_cands, table.is_cand
    # Max count of each n-gram over one candidate's references (the clipping ceiling).
    ref_mask = ~is_cand
    keys = owner_keys(table, ref_mask)
    order = np.argsort(keys, kind="stable")
    keys, counts = keys[order], table.count[ref_mask][order]
    uniq, first = np.unique(keys, return_index=True)
    ceiling = np.maximum.reduceat(counts, first) if len(counts) else counts
    cand_keys = owner_keys(table, is_cand)
    clipped = np.minimum(table.count[is_cand], lookup(uniq, ceiling, cand_keys))
    slot = table.sent[is_cand] * MAX_N + table.level[is_cand]
    correct = np.bincount(slot, weights=clipped, minlength=n_cands * MAX_N).reshape(n_cands, MAX_N)
    test_len = table.sent_len[:n_cands]
    guess = np.maximum(0, test_len[:, None] - np.arange(MAX_N)[None, :])
    return correct, guess, test_len, _closest_ref_len(table, test_len)


def _closest_ref_len(table: NgramTable, test_len: np.ndarray) -> np.ndarray:
    # min over references of (|len_r - len_c|, len_r): ties go to the shorter reference, as in coco-caption.
    owner, ref_len = table.owner[table.n_cands :], table.sent_len[table.n_cands :]
    big = int(ref_len.max(initial=0)) + 1
    rank = np.abs(ref_len - test_len[owner]) * big + ref_len
    best = np.full(table.n_cands, np.iinfo(np.int64).max)
    np.minimum.at(best, owner, rank)
    return best % big


def bleu_scores(table: NgramTable, n: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Corpus BLEU-1..n (n,) and sentence BLEU-1..n (C, n), operation for operation as coco-caption."""
    correct, guess, test_len, ref_len = bleu_stats(table)
    sents = _geo_means(correct[:, :n], guess[:, :n])
    ratio = (test_len + _TINY) / (ref_len + _SMALL)
    sents = sents * np.where(ratio < 1, np.exp(1 - 1 / ratio), 1.0)[:, None]
    corpus = _geo_means(correct[:, :n].sum(0, keepdims=True), guess[:, :n].sum(0, keepdims=True))[0]
    ratio_c = (test_len.sum() + _TINY) / (ref_len.sum() + _SMALL)
    if ratio_c < 1:
        corpus = corpus * np.exp(1 - 1 / ratio_c)
    return corpus, sents


def _geo_means(correct: np.ndarray, guess: np.ndarray) -> np.ndarray:
    prod = np.cumprod((correct + _TINY) / (guess + _SMALL), axis=1)
    return prod ** (1.0 / np.arange(1, correct.shape[1] + 1))


def bleu(
    candidates: Sequence[str], mult_references: Sequence[Sequence[str]], n: int = 4, preprocess: bool = True
) -> Outs:
    """BLEU-n (key `bleu_n`): corpus score and one score per candidate."""
    if not 1 <= n <= MAX_N:
        raise ValueError(f"BLEU order n must be 1..{MAX_N}, got {n}")
    table, _, _ = prepare_table(candidates, mult_references, preprocess)
    corpus, sents = bleu_scores(table, n)
    return {f"bleu_{n}": float(corpus[n - 1])}, {f"bleu_{n}": sents[:, n - 1]}


class BLEU:
    """Class form of `bleu`."""

    def __init__(self, n: int = 4, preprocess: bool = True) -> None:
        self.n, self.preprocess = n, preprocess

    def __call__(self, candidates: Sequence[str], mult_references: Sequence[Sequence[str]]) -> Outs:
        return bleu(candidates, mult_references, self.n, self.preprocess)
