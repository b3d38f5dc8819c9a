"""BLEU-1..4, ROUGE-L and CIDEr-D against pycocoevalcap's own scorers on many random caption sets."""

import random

import numpy as np
import pytest

from auralign.metrics import bleu, cider_d, evaluate, rouge_l
from auralign.metrics._ngrams import build_table
from auralign.metrics.bleu import bleu_scores
from auralign.metrics.cider_d import cider_d_scores
from auralign.metrics.rouge_l import lcs_length, rouge_l_scores
from auralign.metrics.synthetic import caption_corpus
from auralign.metrics.tokenize import tokenize_pair

pytest.importorskip("pycocoevalcap")
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge, my_lcs

TOL = 1e-9


def coco_scores(cand_toks, ref_toks):
    res = {i: [" ".join(c)] for i, c in enumerate(cand_toks)}
    gts = {i: [" ".join(r) for r in refs] for i, refs in enumerate(ref_toks)}
    b, bs = Bleu(4).compute_score(gts, res, verbose=0)
    c, cs = Cider().compute_score(gts, res)
    r, rs = Rouge().compute_score(gts, res)
    return np.array(b), np.array(bs).T, c, np.array(cs), r, np.array(rs)


def ours(cand_toks, ref_toks):
    table = build_table(cand_toks, ref_toks)
    b, bs = bleu_scores(table)
    cs = cider_d_scores(table)
    rs = rouge_l_scores(cand_toks, ref_toks)
    return b, bs, cs.mean(), cs, rs.mean(), rs


def assert_same(cand_toks, ref_toks):
    expected, got = coco_scores(cand_toks, ref_toks), ours(cand_toks, ref_toks)
    for name, e, g in zip(
        ("bleu", "bleu sents", "cider", "cider sents", "rouge", "rouge sents"), expected, got, strict=True
    ):
        np.testing.assert_allclose(g, e, rtol=0, atol=TOL, err_msg=name)


def random_token_corpus(rng: random.Random):
    """Token lists over a small vocabulary: many repeated words and shared n-grams, some empty candidates."""
    vocab = [f"w{i}" for i in range(rng.randint(3, 40))]
    n = rng.randint(1, 60)
    n_refs = rng.choice([1, 5, (1, 5)])

    def sent(lo=0):
        k = rng.randint(lo, 18)
        return [rng.choice(vocab) for _ in range(k)]

    cands, refs = [], []
    for _ in range(n):
        k = n_refs if isinstance(n_refs, int) else rng.randint(*n_refs)
        group = [sent(1) for _ in range(k)]
        cand = list(rng.choice(group)) if rng.random() < 0.1 else sent(0)
        cands.append(cand)
        refs.append(group)
    return cands, refs


@pytest.mark.parametrize("seed", range(60))
def test_random_token_corpora_match_pycocoevalcap(seed):
    assert_same(*random_token_corpus(random.Random(seed)))


@pytest.mark.java
@pytest.mark.parametrize(
    ("seed", "style", "n", "n_refs"),
    [
        (0, "human", 200, 5),
        (1, "odd", 120, (1, 5)),
        (2, "plain", 80, 1),
        (3, "odd", 40, 5),
        (4, "human", 2, 1),
    ],
)
def test_realistic_captions_match_pycocoevalcap(seed, style, n, n_refs):
    cands, refs = caption_corpus(n, n_refs, seed=seed, style=style, identical=0.15)
    assert_same(*tokenize_pair(cands, refs))


@pytest.mark.java
def test_identical_candidates_and_one_candidate_corpus():
    cands, refs = caption_corpus(30, 5, seed=9, identical=1.0)
    cand_toks, ref_toks = tokenize_pair(cands, refs)
    assert_same(cand_toks, ref_toks)
    _b, bs, _c, _cs, _r, rs = ours(cand_toks, ref_toks)
    assert np.allclose(rs, 1.0) and np.allclose(bs[:, 0], 1.0)
    # One candidate: idf log(1/1) = 0 makes CIDEr-D 0 (documented); BLEU and ROUGE-L are ordinary.
    assert_same(cand_toks[:1], ref_toks[:1])
    corpus, sents = cider_d(cands[:1], refs[:1])
    assert corpus["cider_d"] == 0.0 and sents["cider_d"].tolist() == [0.0]


def test_lcs_matches_the_dynamic_programme():
    rng = random.Random(5)
    for _ in range(500):
        a = [rng.choice("abcde") for _ in range(rng.randint(1, 70))]
        b = [rng.choice("abcde") for _ in range(rng.randint(1, 70))]
        masks = {}
        for i, tok in enumerate(a):
            masks[tok] = masks.get(tok, 0) | (1 << i)
        assert lcs_length(masks, len(a), b) == my_lcs(b, a)


@pytest.mark.java
def test_functions_and_evaluate_agree_with_each_other():
    cands, refs = caption_corpus(40, (1, 5), seed=11, style="odd")
    scores = evaluate(cands, refs, ["bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "cider_d"])
    for n in range(1, 5):
        corpus, sents = bleu(cands, refs, n=n)
        assert corpus[f"bleu_{n}"] == scores[f"bleu_{n}"]
        np.testing.assert_array_equal(sents[f"bleu_{n}"], scores.sents[f"bleu_{n}"])
    assert rouge_l(cands, refs)[0]["rouge_l"] == scores["rouge_l"]
    assert cider_d(cands, refs)[0]["cider_d"] == scores["cider_d"]
    assert len(scores.sents["cider_d"]) == 40


def test_pretokenised_input_skips_the_tokenizer():
    corpus, _ = bleu(["a dog barks"], [["a dog barks"]], n=1, preprocess=False)
    assert corpus["bleu_1"] == pytest.approx(1.0)


@pytest.mark.java
@pytest.mark.parametrize(("seed", "style", "n_refs"), [(21, "odd", (1, 5)), (22, "human", 5)])
def test_end_to_end_with_coco_tokenisation(seed, style, n_refs):
    """evaluate() on raw text equals pycocoevalcap's PTBTokenizer + scorers run the way COCOEvalCap runs them."""
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    cands, refs = caption_corpus(150, n_refs, seed=seed, style=style, identical=0.1)
    tok = PTBTokenizer()
    gts = tok.tokenize({i: [{"caption": r} for r in group] for i, group in enumerate(refs)})
    res = tok.tokenize({i: [{"caption": c}] for i, c in enumerate(cands)})
    b, bs = Bleu(4).compute_score(gts, res, verbose=0)
    c, cs = Cider().compute_score(gts, res)
    r, rs = Rouge().compute_score(gts, res)
    scores = evaluate(cands, refs, ["bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "cider_d"])
    for n in range(4):
        assert abs(scores[f"bleu_{n + 1}"] - b[n]) <= TOL
        np.testing.assert_allclose(scores.sents[f"bleu_{n + 1}"], bs[n], rtol=0, atol=TOL)
    assert abs(scores["cider_d"] - c) <= TOL and abs(scores["rouge_l"] - r) <= TOL
    np.testing.assert_allclose(scores.sents["cider_d"], cs, rtol=0, atol=TOL)
    np.testing.assert_allclose(scores.sents["rouge_l"], rs, rtol=0, atol=TOL)
