"""Captioning metrics with coco-caption's numbers, offline: BLEU-1..4, METEOR, ROUGE-L, CIDEr-D, SPICE, SPIDEr,
SPIDEr-FL, FENSE, SBERT-sim, FER, Vocab, and label accuracy for classification-style answers.

Each metric is a function `metric(candidates, mult_references, ...) -> (corpus, per_candidate)` of two dicts
keyed by aac-metrics' names, with a class form; `evaluate()` runs a named set and tokenises once.

    from auralign.metrics import evaluate
    scores = evaluate(["a dog barks"], [["a dog is barking", "dogs bark loudly"]], metrics="default")
    scores["bleu_4"], scores.sents["rouge_l"], scores.unavailable  # SPICE lists what to install where

Light to import: the Java tools and sentence models load only when a metric needs them.
"""

from auralign.metrics._inputs import MetricInputError, MetricUnavailable
from auralign.metrics.bleu import BLEU, bleu
from auralign.metrics.cider_d import CIDErD, cider_d
from auralign.metrics.evaluate import (
    METRIC_SETS,
    METRICS,
    Metric,
    Options,
    Run,
    Scores,
    evaluate,
    resolve_metrics,
)
from auralign.metrics.fense import FENSE, fense
from auralign.metrics.fer import fer
from auralign.metrics.labels import LabelScores, label_accuracy, normalize_label
from auralign.metrics.meteor import METEOR, meteor
from auralign.metrics.rouge_l import ROUGEL, rouge_l
from auralign.metrics.sbert_sim import PACKAGED, SBERTSim, sbert_sim
from auralign.metrics.spice import SPICE, spice, spice_runtime
from auralign.metrics.spider import spider
from auralign.metrics.spider_fl import spider_fl
from auralign.metrics.tokenize import ptb_tokenize
from auralign.metrics.vocab import vocab

__all__ = [
    "BLEU",
    "FENSE",
    "METEOR",
    "METRICS",
    "METRIC_SETS",
    "PACKAGED",
    "ROUGEL",
    "SPICE",
    "CIDErD",
    "LabelScores",
    "Metric",
    "MetricInputError",
    "MetricUnavailable",
    "Options",
    "Run",
    "SBERTSim",
    "Scores",
    "bleu",
    "cider_d",
    "evaluate",
    "fense",
    "fer",
    "label_accuracy",
    "meteor",
    "normalize_label",
    "ptb_tokenize",
    "resolve_metrics",
    "rouge_l",
    "sbert_sim",
    "spice",
    "spice_runtime",
    "spider",
    "spider_fl",
    "vocab",
]
