"""`evaluate()`: every captioning metric in one call, tokenising once, with aac-metrics' key names.

It returns `Scores`, a flat dict of corpus scores (`scores["cider_d"]`) that also carries the per-candidate
arrays (`scores.sents["cider_d"]`) and, for each metric that could not run here, the reason
(`scores.unavailable["spice"]`). An unavailable metric's corpus value is None: never a made-up number.
"""

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from auralign.metrics._common import Sents
from auralign.metrics._inputs import MetricInputError, MetricUnavailable, check_pair
from auralign.metrics._ngrams import build_table
from auralign.metrics.bleu import bleu_scores
from auralign.metrics.cider_d import cider_d_scores
from auralign.metrics.fense import PENALTY
from auralign.metrics.fer import ERROR_THRESHOLD, error_probs, load_echecker
from auralign.metrics.meteor import meteor_scores
from auralign.metrics.rouge_l import rouge_l_scores
from auralign.metrics.sbert_sim import PACKAGED, load_sbert, model_suffix, sbert_sim_scores
from auralign.metrics.spice import spice_runtime, spice_scores
from auralign.metrics.tokenize import tokenize_pair
from auralign.metrics.vocab import vocab_stats

log = logging.getLogger(__name__)

METRIC_NAMES = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider_d", "spice", "spider",
                "spider_fl", "fense", "sbert_sim", "fer", "vocab", "sbert_sim_minilm")  # fmt: skip
METRIC_SETS: dict[str, tuple[str, ...]] = {
    # coco-caption's suite, as the ACC and DALI papers report it.
    "default": ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider_d", "spice", "spider"),
    # DCASE 2024 task 6 (FENSE is the ranking metric; the others are reported beside it).
    "dcase2024": ("meteor", "cider_d", "spice", "spider", "spider_fl", "fense", "vocab"),
    "all": METRIC_NAMES[:-1],
}
_TOKEN_METRICS = {"bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider_d", "spice", "spider",
                  "spider_fl", "vocab"}  # fmt: skip


class Scores(dict):
    """Corpus scores by metric name (None where unavailable), plus `.sents` and `.unavailable`."""

    def __init__(self) -> None:
        super().__init__()
        self.sents: Sents = {}
        self.unavailable: dict[str, str] = {}

    def to_json(self, per_candidate: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"corpus": dict(self), "unavailable": dict(self.unavailable)}
        if per_candidate:
            out["sents"] = {k: [None if np.isnan(x) else float(x) for x in v] for k, v in self.sents.items()}
        return out


@dataclass
class Options:
    """Where the optional runtimes live (see each metric module); None means its documented default."""

    java: str | None = None
    spice_corenlp: str | os.PathLike | None = None
    spice_java: str | None = None
    sbert_model: str | os.PathLike | None = None
    echecker: str | os.PathLike | None = None
    echecker_base: str | os.PathLike | None = None
    device: str = "cpu"
    offline_sbert_fallback: bool = True  # FENSE unavailable -> report sbert_sim_minilm (under its own key)


def resolve_metrics(metrics: str | Iterable[str]) -> list[str]:
    """A set name ("default", "dcase2024", "all"), a metric name, or names; unknown names raise."""
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    out: list[str] = []
    for name in names:
        expanded = METRIC_SETS.get(name, (name,))
        for metric in expanded:
            if metric not in METRIC_NAMES:
                raise MetricInputError(
                    f"unknown metric {metric!r}: choose from {', '.join(METRIC_NAMES)} or a set "
                    f"({', '.join(METRIC_SETS)})"
                )
            if metric not in out:
                out.append(metric)
    return out


class _Run:
    """One evaluation: caches tokens, the n-gram table and shared parts (SPICE, FER) between metrics."""

    def __init__(self, cands: list[str], refs: list[list[str]], names: list[str], opts: Options) -> None:
        self.cands, self.refs, self.names, self.opts = cands, refs, names, opts
        self.scores = Scores()
        self._cache: dict[str, Any] = {}
        if _TOKEN_METRICS & set(names):
            self.cand_toks, self.ref_toks = tokenize_pair(cands, refs, java=opts.java)

    def texts(self) -> tuple[list[str], list[list[str]]]:
        return [" ".join(c) for c in self.cand_toks], [[" ".join(r) for r in g] for g in self.ref_toks]

    def cached(self, key: str, fn: Callable[[], Any]) -> Any:
        if key not in self._cache:
            try:
                self._cache[key] = fn()
            except MetricUnavailable as exc:
                self._cache[key] = exc
        if isinstance(self._cache[key], MetricUnavailable):
            raise self._cache[key]
        return self._cache[key]

    def put(self, name: str, sents: np.ndarray | None, corpus: float | None = None) -> None:
        if sents is not None:
            self.scores.sents[name] = sents
        self.scores[name] = float(np.mean(sents)) if corpus is None else float(corpus)

    # --- the metrics ---------------------------------------------------------------------------------------
    def bleu(self) -> tuple[np.ndarray, np.ndarray]:
        return self.cached("bleu", lambda: bleu_scores(self.table()))

    def table(self):  # type: ignore[no-untyped-def]
        return self.cached("table", lambda: build_table(self.cand_toks, self.ref_toks))

    def cider(self) -> np.ndarray:
        return self.cached("cider", lambda: cider_d_scores(self.table()))

    def spice(self) -> np.ndarray:
        def run() -> np.ndarray:
            runtime = spice_runtime(self.opts.spice_corenlp, self.opts.spice_java)
            return spice_scores(*self.texts(), runtime)

        return self.cached("spice", run)

    def fer(self) -> np.ndarray:
        def run() -> np.ndarray:
            model, tok = load_echecker(self.opts.echecker, self.opts.echecker_base, self.opts.device)
            return (error_probs(self.cands, model, tok)["error"] > ERROR_THRESHOLD).astype(float)

        return self.cached("fer", run)

    def sbert(self, model: str | os.PathLike | None) -> np.ndarray:
        key = f"sbert:{model}"
        return self.cached(
            key, lambda: sbert_sim_scores(self.cands, self.refs, load_sbert(model, self.opts.device))
        )

    def compute(self, name: str) -> None:
        if name.startswith("bleu_"):
            n = int(name[-1])
            corpus, sents = self.bleu()
            self.put(name, sents[:, n - 1], corpus[n - 1])
        elif name == "rouge_l":
            self.put(name, self.cached("rouge", lambda: rouge_l_scores(self.cand_toks, self.ref_toks)))
        elif name == "cider_d":
            self.put(name, self.cider())
        elif name == "meteor":
            corpus, sents = self.cached("meteor", lambda: meteor_scores(*self.texts(), java=self.opts.java))
            self.put(name, sents, corpus)
        elif name == "spice":
            self.put(name, self.spice())
        elif name == "spider":
            self.put(name, (self.cider() + self.spice()) / 2)
        elif name == "spider_fl":
            self.put(name, (self.cider() + self.spice()) / 2 * (1.0 - PENALTY * self.fer()))
        elif name == "fer":
            self.put(name, self.fer())
        elif name == "sbert_sim":
            self.put(name + model_suffix(self.opts.sbert_model), self.sbert(self.opts.sbert_model))
        elif name == "sbert_sim_minilm":
            self.put(name, self.sbert(PACKAGED))
        elif name == "fense":
            fense = self.sbert(self.opts.sbert_model) * (1.0 - PENALTY * self.fer())
            self.put(name + model_suffix(self.opts.sbert_model), fense)
        elif name == "vocab":
            for key, value in vocab_stats(self.cand_toks, self.ref_toks).items():
                self.scores[key] = value

    def run(self) -> Scores:
        for name in self.names:
            try:
                self.compute(name)
            except MetricUnavailable as exc:
                self.scores[name] = None
                self.scores.unavailable[name] = str(exc)
                log.info("%s unavailable: %s", name, exc)
        fense_missing = {"fense", "sbert_sim"} & set(self.scores.unavailable)
        if self.opts.offline_sbert_fallback and fense_missing and "sbert_sim_minilm" not in self.scores:
            self.compute("sbert_sim_minilm")
        return self.scores


def evaluate(
    candidates: Sequence[str],
    mult_references: Sequence[Sequence[str]],
    metrics: str | Iterable[str] = "default",
    options: Options | None = None,
    **option_kwargs: Any,
) -> Scores:
    """Score candidates against their references with the named metrics or metric set.

    Options (also as keyword arguments): java, spice_corenlp, spice_java, sbert_model, echecker,
    echecker_base, device, offline_sbert_fallback; see `Options`. Bad input raises MetricInputError
    (a ValueError); a metric whose runtime is missing is reported in `.unavailable`, not raised."""
    opts = options or Options(**option_kwargs)
    names = resolve_metrics(metrics)
    cands, refs = check_pair(candidates, mult_references)
    return _Run(cands, refs, names, opts).run()
