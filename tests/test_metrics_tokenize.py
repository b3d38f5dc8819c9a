"""Our PTB tokenisation against pycocoevalcap's PTBTokenizer (the CoreNLP 3.4.1 jar) on many inputs."""

import random

import pytest

from auralign.metrics import MetricUnavailable
from auralign.metrics.synthetic import SOURCES, caption
from auralign.metrics.tokenize import is_simple, ptb_tokenize

pytest.importorskip("pycocoevalcap")
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

pytestmark = pytest.mark.java

TRICKY = [
    "A dog barks.", "It's raining; the man doesn't stop!", "Mr. Smith said: no.", "Vitamin A. U.S. etc.",
    "bird-song 1,000 3.5 AT&T", '"quoted" (paren) [square] {curly}', "café naïve — … “hi” ½ ﬁne",
    "a\u00a0non-breaking space", "rock'n'roll -- and ... more", "?!", "...", "'", "` `` '' ' --",
    "CANNOT gonna Gotta lemme gimme wanna", "日本語のテキスト", "emoji 🙂 here", "tabs\tand   spaces",
    "über Zürich niño", "e-mail a.m. p.m. 3:45 $5 50% #1 @home", "the end .",
]  # fmt: skip


def reference_tokens(sentences: list[str]) -> list[list[str]]:
    # pycocoevalcap only replaces "\n"; our inputs below hold no other line separators.
    out = PTBTokenizer().tokenize({i: [{"caption": s}] for i, s in enumerate(sentences)})
    return [out[i][0].split(" ") if out[i][0] else [] for i in range(len(sentences))]


def test_tricky_and_random_odd_sentences_match_the_jar():
    rng = random.Random(0)
    sentences = TRICKY + [caption(rng, rng.choice(["odd", "human", "plain"])) for _ in range(600)]
    assert ptb_tokenize(sentences) == reference_tokens(sentences)


def test_fast_path_equals_the_jar_on_letter_only_sentences():
    rng = random.Random(1)
    words = [w for s in SOURCES for w in s.split()] + ["cannot", "CANNOT", "gonna", "Gotta", "lemme", "gimme",
             "wanna", "gonnas", "wannabe", "cannots", "gotten", "Mr", "etc", "No", "I", "A", "US", "am", "pm"]  # fmt: skip
    sentences = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 12))) for _ in range(400)]
    assert all(is_simple(s) for s in sentences)
    assert ptb_tokenize(sentences, fast_path=True) == ptb_tokenize(sentences, fast_path=False)


def test_line_separators_inside_a_sentence_do_not_shift_lines():
    # \v, \x85 and \u2028 are line breaks for the jar: coco-caption would misalign every later caption.
    sentences = ["a dog\vbarks.", "rain\x85falls.", "a car\u2028passes.", "birds sing."]
    assert ptb_tokenize(sentences) == [["a", "dog", "barks"], ["rain", "falls"], ["a", "car", "passes"],
                                       ["birds", "sing"]]  # fmt: skip


def test_empty_and_punctuation_only_sentences():
    assert ptb_tokenize(["", "   ", "...", "A dog."]) == [[], [], [], ["a", "dog"]]


def test_letter_only_batches_need_no_java_and_others_say_how_to_get_it(tmp_path):
    missing = str(tmp_path / "no-java")
    assert ptb_tokenize(["A dog CANNOT bark", ""], java=missing) == [["a", "dog", "can", "not", "bark"], []]
    with pytest.raises(MetricUnavailable, match="AURALIGN_JAVA"):
        ptb_tokenize(["A dog barks."], java=missing)
