"""ROUGE-L as coco-caption computes it: LCS-based precision and recall maximised separately over the
references, then F with beta = 1.2; the corpus score is the mean over candidates.

The LCS length comes from the bit-parallel algorithm of Allison & Dix (1986) / Hyyrö (2004) on Python ints:
one big-int update per reference token instead of a len(c) x len(r) table of Python steps. Same lengths,
so the same scores (tests compare with pycocoevalcap's table on random inputs).
"""

from collections.abc import Sequence

import numpy as np

from auralign.metrics._common import Outs, prepare_tokens

BETA = 1.2


def lcs_length(masks: dict[str, int], n_cand: int, ref: Sequence[str]) -> int:
    """LCS length of a candidate (given as token -> bitmask of its positions) and a reference."""
    full = (1 << n_cand) - 1
    v = full
    # A reference token absent from the candidate leaves v unchanged (u = 0): only matches need a step.
    for match in filter(None, map(masks.get, ref)):
        u = v & match
        v = ((v + u) | (v - u)) & full
    return n_cand - v.bit_count()


def _masks(tokens: Sequence[str]) -> dict[str, int]:
    masks: dict[str, int] = {}
    for i, tok in enumerate(tokens):
        masks[tok] = masks.get(tok, 0) | (1 << i)
    return masks


def rouge_l_sentence(cand: list[str], refs: list[list[str]], beta: float = BETA) -> float:
    # coco-caption splits "" into [""]: an empty sentence is one empty token (it matches an empty reference).
    cand = cand or [""]
    masks, n = _masks(cand), len(cand)
    prec = rec = 0.0
    for ref in refs:
        ref = ref or [""]
        lcs = lcs_length(masks, n, ref)
        if lcs / float(n) > prec:
            prec = lcs / float(n)
        if lcs / float(len(ref)) > rec:
            rec = lcs / float(len(ref))
    if prec == 0 or rec == 0:
        return 0.0
    return ((1 + beta**2) * prec * rec) / float(rec + beta**2 * prec)


def rouge_l_scores(
    cand_tokens: list[list[str]], ref_tokens: list[list[list[str]]], beta: float = BETA
) -> np.ndarray:
    return np.array([rouge_l_sentence(c, r, beta) for c, r in zip(cand_tokens, ref_tokens, strict=True)])


def rouge_l(
    candidates: Sequence[str],
    mult_references: Sequence[Sequence[str]],
    preprocess: bool = True,
    beta: float = BETA,
) -> Outs:
    """ROUGE-L (key `rouge_l`): corpus score (mean) and one score per candidate."""
    cand_toks, ref_toks = prepare_tokens(candidates, mult_references, preprocess)
    sents = rouge_l_scores(cand_toks, ref_toks, beta)
    return {"rouge_l": float(sents.mean())}, {"rouge_l": sents}


class ROUGEL:
    """Class form of `rouge_l`."""

    def __init__(self, preprocess: bool = True, beta: float = BETA) -> None:
        self.preprocess, self.beta = preprocess, beta

    def __call__(self, candidates: Sequence[str], mult_references: Sequence[Sequence[str]]) -> Outs:
        return rouge_l(candidates, mult_references, self.preprocess, self.beta)
