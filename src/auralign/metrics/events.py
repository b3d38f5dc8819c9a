"""The event score: which of a scene's sound sources a caption names.

The mini world records each scene's sources (`scenes/composition.jsonl`); `event_synonyms.yaml` (in
auralign/data/mini, written before any full run) lists, per label, the terms that name it. A caption is read
as lower-case words; terms are whole-word sequences matched leftmost-longest, one match per word ("alarm
clock" is not a ticking "clock", "catalogue" is not a "cat"). A term listed under several labels ("voice")
names those of them the caption names by a term of their own, else all of them.

Per caption: recall = |named & present| / |present|; precision = |named & present| / |named| (NaN when the
caption names nothing). Corpus: mean recall, mean precision over captions that name something,
named_fraction (how many name anything) and the F1 of the two means.
"""

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from auralign.errors import DataError

SYNONYMS_FILE = Path(__file__).parents[1] / "data" / "mini" / "event_synonyms.yaml"
_WORD = re.compile(r"[^\W_]+")

Synonyms = Mapping[str, Sequence[str]]
# first word -> [(term as words, the labels it names)], longest term first
_Index = dict[str, list[tuple[tuple[str, ...], frozenset[str]]]]


def words(text: str) -> list[str]:
    """Lower-case words of letters and digits: how captions and terms are compared."""
    return _WORD.findall(text.lower())


# --- the vocabulary -----------------------------------------------------------------------------------------


def load_synonyms(path: str | Path | None = None) -> dict[str, tuple[str, ...]]:
    """label -> its terms (lower-case words joined by spaces), from `path` (default: the packaged
    event_synonyms.yaml, read once)."""
    return dict(_packaged()) if path is None else _read_synonyms(Path(path))


@functools.cache
def _packaged() -> dict[str, tuple[str, ...]]:
    return _read_synonyms(SYNONYMS_FILE)


@functools.cache
def _packaged_index() -> _Index:
    return _index(_packaged())


def _read_synonyms(path: Path) -> dict[str, tuple[str, ...]]:
    if not path.is_file():
        raise DataError(f"{path}: event synonyms file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise DataError(f"{path}: not valid YAML ({' '.join(str(err).split())})") from None
    if not isinstance(data, dict) or not data:
        raise DataError(f"{path}: expected a mapping of label -> list of terms")
    return {str(label): _terms(path, str(label), terms) for label, terms in data.items()}


def _terms(path: Path, label: str, terms: Any) -> tuple[str, ...]:
    if not isinstance(terms, list) or not terms:
        raise DataError(f"{path}: {label}: expected a non-empty list of terms")
    out: list[str] = []
    for term in terms:
        if not isinstance(term, str) or not words(term):
            raise DataError(f"{path}: {label}: term {term!r} is not a word or phrase")
        norm = " ".join(words(term))
        if norm in out:
            raise DataError(f"{path}: {label}: term {term!r} is listed twice")
        out.append(norm)
    return tuple(out)


def _index(synonyms: Synonyms) -> _Index:
    by_term: dict[tuple[str, ...], set[str]] = {}
    for label, terms in synonyms.items():
        for term in terms:
            by_term.setdefault(tuple(words(term)), set()).add(label)
    index: _Index = {}
    for term, labels in sorted(by_term.items(), key=lambda kv: -len(kv[0])):
        if term:
            index.setdefault(term[0], []).append((term, frozenset(labels)))
    return index


# --- reading a caption --------------------------------------------------------------------------------------


def _matches(tokens: list[str], index: _Index) -> list[frozenset[str]]:
    """The labels of each term found, leftmost-longest, no word in two matches."""
    found, i = [], 0
    while i < len(tokens):
        for term, labels in index.get(tokens[i], ()):
            if tuple(tokens[i : i + len(term)]) == term:
                found.append(labels)
                i += len(term)
                break
        else:
            i += 1
    return found


def _named(caption: str, index: _Index) -> frozenset[str]:
    found = _matches(words(caption), index)
    specific = {label for labels in found if len(labels) == 1 for label in labels}
    named = set(specific)
    for labels in found:
        if len(labels) > 1:  # a shared term: the labels named on their own, else all it may mean
            named |= (labels & specific) or labels
    return frozenset(named)


def named_labels(caption: str, synonyms: Synonyms | None = None) -> set[str]:
    """The labels a caption names (default vocabulary: the packaged event_synonyms.yaml)."""
    return set(_named(caption, _packaged_index() if synonyms is None else _index(synonyms)))


# --- scoring ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventScores:
    recall: np.ndarray  # per caption: named & present / present
    precision: np.ndarray  # per caption: named & present / named; NaN where nothing is named
    named: tuple[frozenset[str], ...]  # the labels each caption names
    corpus: dict[str, float]  # recall, precision, f1, named_fraction

    def to_json(self) -> dict[str, float | None]:
        return {k: None if np.isnan(v) else v for k, v in self.corpus.items()}


def _check_scenes(captions: Sequence[str], labels: Sequence[Sequence[str]], known: Synonyms) -> None:
    if len(captions) != len(labels):
        raise ValueError(f"event_scores: {len(captions)} captions but {len(labels)} label lists")
    if not captions:
        raise ValueError("event_scores: no captions to score")
    for i, (caption, present) in enumerate(zip(captions, labels, strict=True)):
        if not isinstance(caption, str):
            raise ValueError(f"event_scores: captions[{i}] is a {type(caption).__name__}, not a string")
        if not present:
            raise ValueError(f"event_scores: labels[{i}] is empty; a scene holds at least one event")
        unknown = sorted(set(present) - set(known))
        if unknown:
            raise ValueError(f"event_scores: labels[{i}] has labels without synonyms: {unknown}")


def _corpus(recall: np.ndarray, precision: np.ndarray) -> dict[str, float]:
    named = ~np.isnan(precision)
    r = float(recall.mean())
    p = float(precision[named].mean()) if named.any() else float("nan")
    f1 = float("nan") if np.isnan(p) else (0.0 if p + r == 0 else 2 * p * r / (p + r))
    return {"recall": r, "precision": p, "f1": f1, "named_fraction": float(named.mean())}


def event_scores(
    captions: Sequence[str], labels: Sequence[Sequence[str]], synonyms: Synonyms | None = None
) -> EventScores:
    """Score each caption against its scene's labels (`labels[i]`: the sources present in scene i)."""
    _check_scenes(captions, labels, _packaged() if synonyms is None else synonyms)
    index = _packaged_index() if synonyms is None else _index(synonyms)
    named = tuple(_named(caption, index) for caption in captions)
    hits = np.array([len(n & set(p)) for n, p in zip(named, labels, strict=True)], dtype=float)
    recall = hits / np.array([len(set(p)) for p in labels], dtype=float)
    sizes = np.array([len(n) for n in named], dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(sizes > 0, hits / sizes, np.nan)
    return EventScores(recall, precision, named, _corpus(recall, precision))


# --- the scenes ---------------------------------------------------------------------------------------------


def _scene_line(path: Path, lineno: int, line: str) -> tuple[str, list[str]]:
    where = f"{path}:{lineno}"
    try:
        row = json.loads(line)
    except json.JSONDecodeError as err:
        raise DataError(f"{where}: not valid JSON ({err.msg})") from None
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object, found {type(row).__name__}")
    if not isinstance(row.get("file"), str) or not row["file"]:
        raise DataError(f"{where}: 'file' must be a non-empty path string")
    events = row.get("events")
    if not isinstance(events, list) or not events:
        raise DataError(f"{where}: 'events' must be a non-empty list")
    if not all(isinstance(e, dict) and isinstance(e.get("label"), str) and e["label"] for e in events):
        raise DataError(f"{where}: every event must be an object with a non-empty 'label' string")
    return Path(row["file"]).stem, [e["label"] for e in events]


def scene_labels(composition_path: str | Path) -> dict[str, list[str]]:
    """Scene id (its audio file's stem, the captions' youtube_id) -> its labels, in the file's event order."""
    path = Path(composition_path)
    if not path.is_file():
        raise DataError(f"{path}: scene composition file not found")
    scenes: dict[str, list[str]] = {}
    first_line: dict[str, int] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        stem, labels = _scene_line(path, lineno, line)
        if stem in scenes:
            raise DataError(f"{path}:{lineno}: scene {stem!r} again (first on line {first_line[stem]})")
        scenes[stem], first_line[stem] = labels, lineno
    return scenes
