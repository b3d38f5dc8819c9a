"""Vectorised n-gram counts for a corpus of tokenised candidates and their references.

pycocoevalcap counts n-grams with Python dicts twice (once for BLEU, once for CIDEr-D) and re-weights every
reference once per candidate. Here every n-gram (n = 1..4) of every sentence gets an integer id in one pass
of numpy sorts: level-n ids are unique pairs (level n-1 id at i, token at i+n-1). Counts, clipping,
document frequencies and dot products then become sorts, searchsorted and bincount over flat arrays.
"""

from dataclasses import dataclass
from itertools import chain

import numpy as np

MAX_N = 4


@dataclass(frozen=True)
class NgramTable:
    """Rows are (sentence, n-gram) pairs with their count; sentences are candidates first, then references."""

    n_cands: int
    sent_len: np.ndarray  # (S,) tokens per sentence
    owner: np.ndarray  # (S,) candidate index each sentence belongs to (a candidate owns itself)
    n_grams: int  # number of distinct n-grams over all levels
    sent: np.ndarray  # (E,) sentence of each entry
    gram: np.ndarray  # (E,) n-gram id
    level: np.ndarray  # (E,) n - 1
    count: np.ndarray  # (E,) occurrences of the n-gram in the sentence

    @property
    def is_cand(self) -> np.ndarray:
        return self.sent < self.n_cands


def _intern(sentences: list[list[str]]) -> np.ndarray:
    flat = list(chain.from_iterable(sentences))
    unique = dict.fromkeys(flat)  # first-seen order; C loops only
    ids = dict(zip(unique, range(len(unique)), strict=True))
    return np.fromiter(map(ids.__getitem__, flat), dtype=np.int64, count=len(flat))


def unique_sorted(keys: np.ndarray) -> np.ndarray:
    """np.unique for int keys by sorting (numpy 2's hash-based unique is several times slower here)."""
    keys = np.sort(keys)
    return keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if len(keys) else keys


def build_table(cand_tokens: list[list[str]], ref_tokens: list[list[list[str]]]) -> NgramTable:
    sentences = list(cand_tokens) + [r for refs in ref_tokens for r in refs]
    n_refs = np.fromiter((len(refs) for refs in ref_tokens), dtype=np.int64, count=len(ref_tokens))
    owner = np.concatenate([np.arange(len(cand_tokens)), np.repeat(np.arange(len(ref_tokens)), n_refs)])
    sent_len = np.fromiter((len(s) for s in sentences), dtype=np.int64, count=len(sentences))
    tokens = _intern(sentences)
    sent_of_tok = np.repeat(np.arange(len(sentences)), sent_len)
    # Position of each token inside its sentence, and tokens left after it (n-gram of size n fits if >= n-1).
    starts = np.concatenate([[0], np.cumsum(sent_len)[:-1]]).astype(np.int64)
    left = sent_len[sent_of_tok] - (np.arange(len(tokens)) - starts[sent_of_tok]) - 1

    sents, grams, levels = [], [], []
    prev = tokens  # level-0 ids are the token ids
    offset, width = 0, int(tokens.max()) + 1 if len(tokens) else 1
    for n in range(MAX_N):
        if n == 0:
            valid = np.ones(len(tokens), dtype=bool)
            local = tokens
        else:
            valid = left >= n
            idx = np.flatnonzero(valid)
            pair = prev[idx] * width + tokens[idx + n]
            uniq, inv = np.unique(pair, return_inverse=True)
            local = np.full(len(tokens), -1, dtype=np.int64)
            local[idx] = inv
            n_local = len(uniq)
        if n == 0:
            n_local = width
        sents.append(sent_of_tok[valid])
        grams.append(local[valid] + offset)
        levels.append(np.full(int(valid.sum()), n, dtype=np.int64))
        prev, offset = local, offset + n_local
    return _count(len(cand_tokens), sent_len, owner, offset, sents, grams, levels)


def _count(n_cands, sent_len, owner, n_grams, sents, grams, levels) -> NgramTable:
    sent, gram, level = (np.concatenate(x) for x in (sents, grams, levels))
    key = sent * max(n_grams, 1) + gram
    uniq, first, count = np.unique(key, return_index=True, return_counts=True)
    return NgramTable(
        n_cands=n_cands,
        sent_len=sent_len,
        owner=owner,
        n_grams=n_grams,
        sent=uniq // max(n_grams, 1),
        gram=uniq % max(n_grams, 1),
        level=level[first],
        count=count,
    )


def owner_keys(table: NgramTable, mask: np.ndarray) -> np.ndarray:
    """(candidate, n-gram) keys of the masked entries, comparable between candidates and references."""
    return table.owner[table.sent[mask]] * max(table.n_grams, 1) + table.gram[mask]


def lookup(sorted_keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """values[sorted_keys == q] for each query, 0 where absent."""
    if len(sorted_keys) == 0:
        return np.zeros(len(queries), dtype=values.dtype)
    pos = np.minimum(np.searchsorted(sorted_keys, queries), len(sorted_keys) - 1)
    return np.where(sorted_keys[pos] == queries, values[pos], 0)
