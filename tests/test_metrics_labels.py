"""Label accuracy of free-text answers: exact, normalised and contains modes, per-class accuracy, confusion."""

import math

import numpy as np
import pytest

from auralign.metrics import MetricInputError, label_accuracy, normalize_label

CLASSES = ["cough", "laughter", "sneeze", "hip hop"]


def test_exact_mode_is_a_stripped_string_comparison():
    scores = label_accuracy(
        ["cough", " cough\n", "Cough", "cough."], ["cough"] * 4, mode="exact", classes=CLASSES
    )
    assert scores.accuracy == 0.5
    assert scores.predicted == ["cough", "cough", "<other>", "<other>"]


def test_normalised_mode_handles_case_punctuation_articles_and_synonyms():
    answers = ["Cough.", "The laughter!", "a  Sneeze", "Hip-Hop", "laughing"]
    gold = ["cough", "laughter", "sneeze", "hip hop", "laughter"]
    plain = label_accuracy(answers, gold, classes=CLASSES)
    assert plain.predicted == ["cough", "laughter", "sneeze", "hip hop", "<other>"]
    with_synonyms = label_accuracy(answers, gold, classes=CLASSES, synonyms={"laughing": "laughter"})
    assert with_synonyms.accuracy == 1.0
    assert normalize_label("The HIP-HOP.") == "hip hop"


def test_contains_mode_reads_one_mentioned_class_and_refuses_two():
    answers = ["It sounds like a cough.", "I hear laughter and a sneeze", "someone laughs", "sneeze"]
    gold = ["cough", "laughter", "laughter", "sneeze"]
    scores = label_accuracy(answers, gold, mode="contains", classes=CLASSES, synonyms={"laughs": "laughter"})
    assert scores.predicted == ["cough", "<other>", "laughter", "sneeze"]
    assert scores.accuracy == 0.75


def test_per_class_accuracy_and_confusion_matrix():
    gold = ["cough", "cough", "sneeze", "laughter", "laughter", "laughter"]
    answers = ["cough", "sneeze", "sneeze", "laughter", "cough", "no idea"]
    scores = label_accuracy(answers, gold, classes=CLASSES)
    expected = np.array([[1, 0, 1, 0, 0], [1, 1, 0, 0, 1], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(scores.confusion, expected)
    assert scores.per_class["cough"] == 0.5 and scores.per_class["laughter"] == pytest.approx(1 / 3)
    assert math.isnan(scores.per_class["hip hop"]) and scores.to_json()["per_class"]["hip hop"] is None
    assert scores.accuracy == pytest.approx(3 / 6)


def test_bad_input_is_named():
    with pytest.raises(MetricInputError, match="2 predictions but 1 labels"):
        label_accuracy(["a", "b"], ["a"])
    with pytest.raises(MetricInputError, match=r"predictions\[1\] must be a string, got NaN"):
        label_accuracy(["a", float("nan")], ["a", "a"])
    with pytest.raises(MetricInputError, match="not among the classes"):
        label_accuracy(["a"], ["dog"], classes=["cat"])
    with pytest.raises(MetricInputError, match="unknown label-matching mode"):
        label_accuracy(["a"], ["a"], mode="fuzzy")
