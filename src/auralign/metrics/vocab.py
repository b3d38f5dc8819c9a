"""Vocab: the number of distinct words the candidates use (after PTB tokenisation), with the references'
vocabulary and the ratio for context. Corpus-level only: there is no per-candidate score."""

from collections.abc import Sequence

from auralign.metrics._common import Outs, prepare_tokens


def vocab_stats(cand_tokens: list[list[str]], ref_tokens: list[list[list[str]]]) -> dict[str, float]:
    cands = {t for toks in cand_tokens for t in toks}
    refs = {t for group in ref_tokens for toks in group for t in toks}
    return {
        "vocab": float(len(cands)),
        "vocab.mrefs_full": float(len(refs)),
        "vocab.ratio_full": len(cands) / len(refs) if refs else 0.0,
    }


def vocab(
    candidates: Sequence[str], mult_references: Sequence[Sequence[str]], preprocess: bool = True
) -> Outs:
    """Vocab (key `vocab`, plus `vocab.mrefs_full` and `vocab.ratio_full`); no per-candidate scores."""
    return vocab_stats(*prepare_tokens(candidates, mult_references, preprocess)), {}
