"""Plumbing shared by the metric modules: the (corpus, per-candidate) return type and tokenised inputs."""

from collections.abc import Sequence

import numpy as np

from auralign.metrics._inputs import check_pair
from auralign.metrics._ngrams import NgramTable, build_table
from auralign.metrics.tokenize import tokenize_pair

Corpus = dict[str, float]
Sents = dict[str, np.ndarray]
Outs = tuple[Corpus, Sents]


def prepare_tokens(
    candidates: Sequence[str],
    mult_references: Sequence[Sequence[str]],
    preprocess: bool,
    java: str | None = None,
) -> tuple[list[list[str]], list[list[list[str]]]]:
    """Validated inputs as token lists: PTB-tokenised if `preprocess`, else split on spaces (already tokenised)."""
    cands, refs = check_pair(candidates, mult_references)
    if preprocess:
        return tokenize_pair(cands, refs, java=java)
    return [c.split() for c in cands], [[r.split() for r in group] for group in refs]


def prepare_table(
    candidates: Sequence[str], mult_references: Sequence[Sequence[str]], preprocess: bool
) -> tuple[NgramTable, list[list[str]], list[list[list[str]]]]:
    cand_toks, ref_toks = prepare_tokens(candidates, mult_references, preprocess)
    return build_table(cand_toks, ref_toks), cand_toks, ref_toks


def ref_counts(table: NgramTable) -> np.ndarray:
    return np.bincount(table.owner[table.n_cands :], minlength=table.n_cands)
