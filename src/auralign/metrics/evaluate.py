"""`evaluate()`: every captioning metric in one call, tokenising once, with aac-metrics' key names.

It returns `Scores`, a flat dict of corpus scores (`scores["cider_d"]`) that also carries the per-candidate
arrays (`scores.sents["cider_d"]`) and, for each metric that could not run here, the reason
(`scores.unavailable["spice"]`). An unavailable metric's corpus value is None: never a made-up number.

The metrics are one table, `METRICS`: name -> `Metric(score, tokens)`, in the order they are reported.
`score(run)` reads the `Run` (the inputs, their PTB tokens and the parts metrics share, each computed once)
and returns its results by key; it raises MetricUnavailable when a runtime it needs is missing. Named sets
(`METRIC_SETS`) and every check of a metric name (`resolve_metrics`, configs) read the same table.
"""

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from auralign.metrics._common import Sents
from auralign.metrics._inputs import MetricInputError, MetricUnavailable, check_pair
from auralign.metrics._ngrams import NgramTable, build_table
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


# A metric's results by key: per-candidate scores (the corpus score is their mean) or a
# (corpus, per-candidate or None) pair.
Results = dict[str, np.ndarray | tuple[float, np.ndarray | None]]


class Run:
    """One evaluation, what a metric's `score` reads: the checked `cands` and `refs`, the `opts`, the PTB
    tokens `cand_toks` / `ref_toks` (made once, when some metric has `tokens=True`) and `texts()` (the tokens
    joined again, as coco-caption feeds Java metrics), and the parts several metrics share, computed once:
    `bleu()`, `ngram_table()`, `cider()`, `spice()`, `fer()`, `sbert(model)`. `cached(key, fn)` shares a new
    part; a part that is unavailable stays so for every metric that needs it."""

    def __init__(self, cands: list[str], refs: list[list[str]], names: list[str], opts: Options) -> None:
        self.cands, self.refs, self.names, self.opts = cands, refs, names, opts
        self.scores = Scores()
        self._cache: dict[str, Any] = {}
        if any(METRICS[name].tokens for name in names):
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

    # --- the shared parts ----------------------------------------------------------------------------------
    def ngram_table(self) -> NgramTable:
        return self.cached("table", lambda: build_table(self.cand_toks, self.ref_toks))

    def bleu(self) -> tuple[np.ndarray, np.ndarray]:
        return self.cached("bleu", lambda: bleu_scores(self.ngram_table()))

    def cider(self) -> np.ndarray:
        return self.cached("cider", lambda: cider_d_scores(self.ngram_table()))

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
        return self.cached(
            f"sbert:{model}",
            lambda: sbert_sim_scores(self.cands, self.refs, load_sbert(model, self.opts.device)),
        )

    # --- the evaluation -------------------------------------------------------------------------------------
    def put(self, results: Results) -> None:
        for key, result in results.items():
            corpus, sents = result if isinstance(result, tuple) else (None, result)
            if sents is not None:
                self.scores.sents[key] = sents
            self.scores[key] = float(np.mean(sents)) if corpus is None else float(corpus)

    def run(self) -> Scores:
        for name in self.names:
            try:
                self.put(METRICS[name].score(self))
            except MetricUnavailable as exc:
                self.scores[name] = None
                self.scores.unavailable[name] = str(exc)
                log.info("%s unavailable: %s", name, exc)
        fense_missing = {"fense", "sbert_sim"} & set(self.scores.unavailable)
        if self.opts.offline_sbert_fallback and fense_missing and "sbert_sim_minilm" not in self.scores:
            self.put(METRICS["sbert_sim_minilm"].score(self))
        return self.scores


@dataclass(frozen=True)
class Metric:
    """An entry of METRICS. `score(run)` returns the metric's Results (usually under its own name) or raises
    MetricUnavailable when its runtime is missing here; `tokens`: it reads the PTB tokens."""

    score: Callable[[Run], Results]
    tokens: bool = False


def _bleu(n: int) -> Metric:
    def score(run: Run) -> Results:
        corpus, sents = run.bleu()
        return {f"bleu_{n}": (corpus[n - 1], sents[:, n - 1])}

    return Metric(score, tokens=True)


def _suffixed(name: str, run: Run) -> str:
    """FENSE and SBERT-sim computed with the packaged stand-in model are reported under their own key."""
    return name + model_suffix(run.opts.sbert_model)


# The metrics by name, in the order `evaluate` reports them. Adding one: its module, and an entry here.
METRICS: dict[str, Metric] = {
    "bleu_1": _bleu(1),
    "bleu_2": _bleu(2),
    "bleu_3": _bleu(3),
    "bleu_4": _bleu(4),
    "meteor": Metric(lambda run: {"meteor": meteor_scores(*run.texts(), java=run.opts.java)}, tokens=True),
    "rouge_l": Metric(lambda run: {"rouge_l": rouge_l_scores(run.cand_toks, run.ref_toks)}, tokens=True),
    "cider_d": Metric(lambda run: {"cider_d": run.cider()}, tokens=True),
    "spice": Metric(lambda run: {"spice": run.spice()}, tokens=True),
    "spider": Metric(lambda run: {"spider": (run.cider() + run.spice()) / 2}, tokens=True),
    "spider_fl": Metric(
        lambda run: {"spider_fl": (run.cider() + run.spice()) / 2 * (1.0 - PENALTY * run.fer())}, tokens=True
    ),
    "fense": Metric(
        lambda run: {_suffixed("fense", run): run.sbert(run.opts.sbert_model) * (1.0 - PENALTY * run.fer())}
    ),
    "sbert_sim": Metric(lambda run: {_suffixed("sbert_sim", run): run.sbert(run.opts.sbert_model)}),
    "fer": Metric(lambda run: {"fer": run.fer()}),
    "vocab": Metric(
        lambda run: {key: (value, None) for key, value in vocab_stats(run.cand_toks, run.ref_toks).items()},
        tokens=True,
    ),
    # SBERT-sim with the packaged all-MiniLM-L6-v2: the offline stand-in when FENSE's models are missing.
    "sbert_sim_minilm": Metric(lambda run: {"sbert_sim_minilm": run.sbert(PACKAGED)}),
}
METRIC_SETS: dict[str, tuple[str, ...]] = {
    # coco-caption's suite, as the ACC and DALI papers report it.
    "default": ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider_d", "spice", "spider"),
    # DCASE 2024 task 6 (FENSE is the ranking metric; the others are reported beside it).
    "dcase2024": ("meteor", "cider_d", "spice", "spider", "spider_fl", "fense", "vocab"),
    "all": tuple(name for name in METRICS if name != "sbert_sim_minilm"),
}


def resolve_metrics(metrics: str | Iterable[str]) -> list[str]:
    """A set name ("default", "dcase2024", "all"), a metric name, or names; unknown names raise."""
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    out: list[str] = []
    for name in names:
        for metric in METRIC_SETS.get(name, (name,)):
            if metric not in METRICS:
                raise MetricInputError(
                    f"unknown metric {metric!r}: choose from {', '.join(METRICS)} "
                    f"or a set ({', '.join(METRIC_SETS)})"
                )
            if metric not in out:
                out.append(metric)
    return out


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
    return Run(cands, refs, names, opts).run()
