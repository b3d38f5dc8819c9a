"""Caption text helpers for the ACC recipe: mixture captions and the longest shared phrase."""

import re

# Connectors never start or end a shared-content caption, and articles never end one:
# "Keys jingle, with a dog" vs "Keys jingle, with a cat" must give "Keys jingle", not "Keys jingle, with a",
# while "A dog barks" keeps its article.
CONNECTOR_WORDS = frozenset(
    [
        "and",
        "or",
        "but",
        "with",
        "while",
        "as",
        "then",
        "followed",
        "by",
        "of",
        "in",
        "on",
        "at",
        "to",
        "from",
        "into",
        "onto",
        "over",
        "under",
        "near",
        "along",
        "during",
        "after",
        "before",
        "plus",
        "also",
    ]
)
TRAILING_WORDS = CONNECTOR_WORDS | {"a", "an", "the", "some"}
_WORD = re.compile(r"\S+")
_PUNCT_EDGES = re.compile(r"^[^\w]+|[^\w]+$")


def _normalise(word: str) -> str:
    return _PUNCT_EDGES.sub("", word.casefold())


def longest_common_phrase(a: str, b: str) -> str:
    """The longest contiguous word span shared by captions `a` and `b`, as it is written in `a`.

    Matching ignores case and punctuation at word edges; ties go to the span that starts first in `a`.
    Length is counted after trimming, so a long run of shared function words never beats real content.
    The span is trimmed of connectors at both ends (", with", "and", "while"...), of articles at its end,
    and of edge punctuation, so it reads as a caption. Returns "" when nothing but such words is shared.
    """
    words_a = _WORD.findall(a)
    keys_a = [_normalise(w) for w in words_a]
    keys_b = [_normalise(w) for w in _WORD.findall(b)]
    best = (0, 0)  # (start, end) in words_a of the best trimmed span
    previous = [0] * (len(keys_b) + 1)
    for i, key in enumerate(keys_a, start=1):
        current = [0] * (len(keys_b) + 1)
        for j, other in enumerate(keys_b, start=1):
            if key and key == other:
                current[j] = previous[j - 1] + 1
                start, end = _trim(keys_a, i - current[j], i)
                if end - start > best[1] - best[0] or (
                    end - start == best[1] - best[0] > 0 and start < best[0]
                ):
                    best = (start, end)
        previous = current
    start, end = best
    if start == end:
        return ""
    span = words_a[start:end]
    span[0] = re.sub(r"^[^\w]+", "", span[0])
    span[-1] = re.sub(r"[^\w]+$", "", span[-1])
    return " ".join(span)


def _trim(keys: list[str], start: int, end: int) -> tuple[int, int]:
    """Shrink keys[start:end] past leading connectors and trailing connectors/articles."""
    while start < end and (not keys[start] or keys[start] in CONNECTOR_WORDS):
        start += 1
    while end > start and (not keys[end - 1] or keys[end - 1] in TRAILING_WORDS):
        end -= 1
    return start, end


def strip_final_punctuation(caption: str) -> str:
    return caption.strip().rstrip(".!?;:, ")


def mixture_caption(base_caption: str, connector: str, event_phrase: str) -> str:
    """Caption of an edited clip: "<caption A><connector> <event phrase>", as in AUDIT-style data.

    >>> mixture_caption("Keys jingle as a car attempts to start.", ", with", "yapping dog barking sound")
    'Keys jingle as a car attempts to start, with yapping dog barking sound'
    """
    return f"{strip_final_punctuation(base_caption)}{connector} {event_phrase.strip()}"
