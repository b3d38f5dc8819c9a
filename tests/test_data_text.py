import random
import re

import pytest

from auralign.data import longest_common_phrase
from auralign.data.text import CONNECTOR_WORDS, TRAILING_WORDS, mixture_caption


def _keys(text: str) -> list[str]:
    return [re.sub(r"^[^\w]+|[^\w]+$", "", w.casefold()) for w in text.split()]


def _brute_force(a: str, b: str) -> int:
    """Length of the longest shared word run that is non-empty after trimming, by enumeration."""
    ka, kb = _keys(a), _keys(b)
    best = 0
    for i in range(len(ka)):
        for j in range(i + 1, len(ka) + 1):
            span = ka[i:j]
            if any(span == kb[k : k + len(span)] for k in range(len(kb) - len(span) + 1)) and all(span):
                s, e = 0, len(span)
                while s < e and span[s] in CONNECTOR_WORDS:
                    s += 1
                while e > s and span[e - 1] in TRAILING_WORDS:
                    e -= 1
                best = max(best, e - s)
    return best


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (
            "Keys jingle as a car attempts to start, with yapping dog barking sound",
            "Keys jingle as a car attempts to start, while a siren wails",
            "Keys jingle as a car attempts to start",
        ),
        ("A DOG barks!", "a dog barks loudly", "A DOG barks"),
        ("rain falls, and thunder", "Rain falls, and birds chirp", "rain falls"),
        ("wind, with a", "wind, with a", "wind"),
        ("and the with", "and the with", ""),
        ("", "a dog", ""),
        ("completely different", "nothing shared", ""),
        ("birds chirp. A man speaks", "A man speaks while birds chirp", "A man speaks"),
    ],
)
def test_longest_common_phrase_examples(a: str, b: str, expected: str) -> None:
    assert longest_common_phrase(a, b) == expected


def test_longest_common_phrase_matches_brute_force_on_random_captions() -> None:
    vocab = [
        "a",
        "dog",
        "barks",
        "the",
        "car",
        "with",
        "and",
        "while",
        "rain,",
        "Wind",
        "falls.",
        "man",
        "speaks",
    ]
    rng = random.Random(0)
    for _ in range(300):
        a = " ".join(rng.choice(vocab) for _ in range(rng.randint(0, 9)))
        b = " ".join(rng.choice(vocab) for _ in range(rng.randint(0, 9)))
        phrase = longest_common_phrase(a, b)
        assert len(phrase.split()) == _brute_force(a, b), (a, b, phrase)
        if phrase:
            words = _keys(phrase)
            assert words[0] not in CONNECTOR_WORDS and words[-1] not in TRAILING_WORDS
            assert " ".join(words) in " ".join(_keys(b))  # really shared


def test_mixture_caption_strips_final_punctuation() -> None:
    assert mixture_caption("A dog barks.", ", while", "a siren wails") == "A dog barks, while a siren wails"
