"""Label accuracy for the general-ability tasks (VocalSound, IEMOCAP, NSynth, GTZAN): accuracy of free-text
answers against class labels, per-class accuracy and a confusion matrix.

Modes:
- "exact": the stripped answer equals the label, character for character (what Qwen2-Audio's evaluation
  scripts do: `pred.strip() == gt`).
- "normalized": both sides lower-cased, punctuation and articles (a, an, the) dropped, whitespace collapsed,
  then mapped through `synonyms` (e.g. {"hip hop": "hiphop", "angry": "anger"}) before comparing.
- "contains": as "normalized", and an answer that is not itself a class but mentions exactly one class as
  a whole phrase ("it sounds like a cough.") counts as that class; answers mentioning several stay unmatched.

Answers that match no class land in the confusion matrix's last column, "<other>".
"""

import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from auralign.metrics._inputs import MetricInputError, check_candidates

OTHER = "<other>"
MODES = ("exact", "normalized", "contains")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans({c: " " for c in string.punctuation})


def _norm(text: str) -> str:
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def normalize_label(text: str, synonyms: Mapping[str, str] | None = None) -> str:
    """Lower case, no punctuation, no articles, single spaces; then the synonym table (keys normalised too)."""
    norm = _norm(text)
    if synonyms:
        norm = {_norm(k): v for k, v in synonyms.items()}.get(norm, norm)
    return norm


def _phrases(classes: list[str], synonyms: Mapping[str, str] | None) -> dict[str, str]:
    """Normalised phrase -> class, for the class names and every synonym that names a class."""
    phrases = {_norm(c): c for c in classes}
    by_norm = dict(phrases)
    for key, value in (synonyms or {}).items():
        target = value if value in classes else by_norm.get(_norm(value))
        if target is not None:
            phrases[_norm(key)] = target
    return phrases


@dataclass
class LabelScores:
    accuracy: float
    per_class: dict[str, float]  # accuracy (recall) per true class; NaN for a class with no samples
    classes: list[str]
    confusion: np.ndarray  # (n_classes, n_classes + 1): true class x predicted class, last column <other>
    predicted: list[str] = field(repr=False)  # the class each answer was read as (or <other>)

    def to_json(self) -> dict:
        return {
            "accuracy": self.accuracy,
            "per_class": {k: None if np.isnan(v) else v for k, v in self.per_class.items()},
            "classes": self.classes,
            "confusion": self.confusion.tolist(),
        }


def _read(answer: str, classes: list[str], phrases: dict[str, str], mode: str) -> str:
    if mode == "exact":
        return answer.strip() if answer.strip() in classes else OTHER
    norm = _norm(answer)
    if norm in phrases:
        return phrases[norm]
    if mode == "contains":
        words = f" {norm} "
        hits = {cls for key, cls in phrases.items() if key and f" {key} " in words}
        if len(hits) == 1:
            return hits.pop()
    return OTHER


def label_accuracy(
    predictions: Sequence[str],
    labels: Sequence[str],
    mode: str = "normalized",
    classes: Sequence[str] | None = None,
    synonyms: Mapping[str, str] | None = None,
) -> LabelScores:
    """Accuracy of free-text `predictions` against `labels` (the class set is `classes`, else the labels seen)."""
    if mode not in MODES:
        raise MetricInputError(f"unknown label-matching mode {mode!r}: choose from {', '.join(MODES)}")
    preds = check_candidates(predictions, name="predictions")
    gold = check_candidates(labels, name="labels")
    if len(preds) != len(gold):
        raise MetricInputError(
            f"{len(preds)} predictions but {len(gold)} labels: they must pair up one to one"
        )
    if not preds:
        raise MetricInputError("no predictions to score")
    class_list = list(dict.fromkeys(classes if classes is not None else sorted(set(gold))))
    unknown = sorted(set(gold) - set(class_list))
    if unknown:
        raise MetricInputError(f"labels not among the classes: {', '.join(map(repr, unknown[:5]))}")
    phrases = _phrases(class_list, synonyms)
    read = [_read(p, class_list, phrases, mode) for p in preds]
    index = {c: i for i, c in enumerate(class_list)}
    confusion = np.zeros((len(class_list), len(class_list) + 1), dtype=np.int64)
    for truth, guess in zip(gold, read, strict=True):
        confusion[index[truth], index.get(guess, len(class_list))] += 1
    totals = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.diag(confusion[:, :-1]) / totals
    return LabelScores(
        accuracy=float(np.trace(confusion[:, :-1]) / len(preds)),
        per_class={c: float(v) for c, v in zip(class_list, per_class, strict=True)},
        classes=class_list,
        confusion=confusion,
        predicted=read,
    )
