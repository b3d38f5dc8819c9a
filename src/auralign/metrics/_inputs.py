"""Validation shared by every metric: one clear error naming the offending item, never a silent score.

What is accepted is what pycocoevalcap accepts: an empty reference string (or one of spaces only) is scored as
pycocoevalcap scores it (a sentence with no tokens: no n-grams, length 0; ROUGE-L's one empty token), with one
warning per corpus naming the items. A candidate with no reference at all, non-strings, NaN and runaway
lengths are errors naming the item.
"""

import logging
import math
import os
from collections.abc import Sequence

from auralign.errors import AuralignError, DataError

log = logging.getLogger(__name__)

# A caption longer than this is almost certainly a runaway generation or a file read by mistake; the Java
# tools would spend minutes on it. Users with a real need can raise it.
MAX_CHARS = 100_000


class MetricInputError(DataError, ValueError):
    """Candidates or references that no metric can score: the message names the index and the problem."""


class MetricUnavailable(AuralignError):
    """A metric whose runtime (Java, jars, model weights) is missing: the message says what to put where."""


def allow_download() -> bool:
    """Hub ids resolve from the local cache only, unless the user sets AURALIGN_ALLOW_DOWNLOAD=1."""
    return os.environ.get("AURALIGN_ALLOW_DOWNLOAD", "") == "1"


def _describe(value: object) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "NaN (a model produced no text?)"
    return f"{type(value).__name__} {value!r:.60}"


def _check_text(value: object, where: str, max_chars: int) -> str:
    if not isinstance(value, str):
        raise MetricInputError(f"{where} must be a string, got {_describe(value)}")
    if len(value) > max_chars:
        raise MetricInputError(
            f"{where} has {len(value):,} characters (limit {max_chars:,}); truncate it or raise max_chars"
        )
    return value


def check_candidates(
    candidates: Sequence[str], max_chars: int = MAX_CHARS, name: str = "candidates"
) -> list[str]:
    """Candidates may be empty strings (a model may say nothing: it then scores 0), never non-strings."""
    if isinstance(candidates, str) or not isinstance(candidates, Sequence):
        raise MetricInputError(f"{name} must be a list of strings, got {type(candidates).__name__}")
    return [_check_text(c, f"{name}[{i}]", max_chars) for i, c in enumerate(candidates)]


def check_references(mult_references: Sequence[Sequence[str]], max_chars: int = MAX_CHARS) -> list[list[str]]:
    """Every candidate needs at least one reference; empty reference strings are scored (see the module
    docstring) and named in one warning."""
    if isinstance(mult_references, str) or not isinstance(mult_references, Sequence):
        raise MetricInputError(
            f"mult_references must be a list of lists of strings, got {type(mult_references).__name__}"
        )
    out = []
    for i, refs in enumerate(mult_references):
        if isinstance(refs, str) or not isinstance(refs, Sequence):
            raise MetricInputError(f"mult_references[{i}] must be a list of strings, got {_describe(refs)}")
        if len(refs) == 0:
            raise MetricInputError(
                f"mult_references[{i}] is empty: every candidate needs at least one reference"
            )
        out.append([_check_text(r, f"mult_references[{i}][{j}]", max_chars) for j, r in enumerate(refs)])
    warn_empty_references(out)
    return out


def empty_references(mult_references: Sequence[Sequence[str]]) -> list[tuple[int, int]]:
    """(candidate, reference) indices of the references with no text (empty or spaces only)."""
    return [(i, j) for i, refs in enumerate(mult_references) for j, ref in enumerate(refs) if not ref.strip()]


def warn_empty_references(mult_references: Sequence[Sequence[str]], shown: int = 5) -> None:
    empty = empty_references(mult_references)
    if not empty:
        return
    names = ", ".join(f"mult_references[{i}][{j}]" for i, j in empty[:shown])
    more = f" and {len(empty) - shown} more" if len(empty) > shown else ""
    log.warning(
        "%d empty reference(s) (%s%s): scored as pycocoevalcap scores them, as a sentence with no words",
        len(empty),
        names,
        more,
    )


def check_pair(
    candidates: Sequence[str], mult_references: Sequence[Sequence[str]], max_chars: int = MAX_CHARS
) -> tuple[list[str], list[list[str]]]:
    cands = check_candidates(candidates, max_chars)
    refs = check_references(mult_references, max_chars)
    if len(cands) != len(refs):
        raise MetricInputError(
            f"{len(cands)} candidates but {len(refs)} reference lists: they must pair up one to one"
        )
    if not cands:
        raise MetricInputError("no candidates to score")
    return cands, refs
