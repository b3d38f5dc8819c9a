"""METEOR 1.5 through the official jar (shipped in the pycocoevalcap wheel), as coco-caption and aac-metrics
run it (`-l en -norm`, 2 GB heap), in one persistent JVM per process.

The jar takes ~8 s to start (it loads its paraphrase table), so the JVM is kept and fed a whole corpus at a
time: all SCORE lines in one write, then one EVAL line, instead of coco-caption's one round trip per
candidate. The corpus score is the jar's own aggregate over all statistics (not a mean of sentence scores).
The JVM has a timeout on every answer and is restarted on the next call if it died or hung.
"""

import atexit
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from auralign.metrics._common import Outs, prepare_tokens
from auralign.metrics._inputs import MetricUnavailable
from auralign.metrics._java import JavaError, JavaProcess, find_java

JAR_ENV = "AURALIGN_METEOR_JAR"
_PROCESSES: dict[tuple[str, ...], JavaProcess] = {}
_CHUNK = 2000  # SCORE lines per write: bounds memory for huge corpora without extra round trips


def meteor_jar() -> Path:
    """meteor-1.5.jar: $AURALIGN_METEOR_JAR, else the copy inside pycocoevalcap (with its paraphrase table)."""
    if os.environ.get(JAR_ENV):
        return Path(os.environ[JAR_ENV])
    from auralign.metrics.tokenize import tokenizer_jar  # same package lookup

    return tokenizer_jar().parent.parent / "meteor" / "meteor-1.5.jar"


def _process(java: str | None, language: str, heap: str, timeout: float) -> JavaProcess:
    jar = meteor_jar()
    if not jar.is_file():
        raise MetricUnavailable(
            f"METEOR needs meteor-1.5.jar: not found at {jar}; `pip install pycocoevalcap`"
        )
    cmd = (find_java(java), "-jar", f"-Xmx{heap}", str(jar), "-", "-", "-stdio", "-l", language, "-norm")
    if cmd not in _PROCESSES:
        _PROCESSES[cmd] = JavaProcess(cmd, cwd=jar.parent, timeout=timeout)
    _PROCESSES[cmd].timeout = timeout
    return _PROCESSES[cmd]


@atexit.register
def close_all() -> None:
    """Stop every METEOR JVM of this process (also runs at interpreter exit)."""
    for proc in _PROCESSES.values():
        proc.close()


def _field(text: str) -> str:
    # "|||" separates fields in the jar's protocol; coco-caption strips it from the hypothesis only.
    return text.replace("|||", "").replace("  ", " ")


def meteor_scores(
    cand_texts: Sequence[str],
    ref_texts: Sequence[Sequence[str]],
    java: str | None = None,
    language: str = "en",
    heap: str = "2G",
    timeout: float = 120.0,
) -> tuple[float, np.ndarray]:
    """Corpus METEOR and one score per candidate, for already tokenised texts."""
    proc = _process(java, language, heap, timeout)
    lines = [
        " ||| ".join(["SCORE", *map(_field, refs), _field(c)])
        for c, refs in zip(cand_texts, ref_texts, strict=True)
    ]
    try:
        stats = []
        for start in range(0, len(lines), _CHUNK):
            chunk = lines[start : start + _CHUNK]
            stats += proc.request(chunk, len(chunk))
        answers = proc.request([" ||| ".join(["EVAL", *stats])], len(stats) + 1)
        return float(answers[-1]), np.array([float(a) for a in answers[:-1]])
    except (JavaError, ValueError) as exc:
        raise MetricUnavailable(f"METEOR failed: {exc}") from None


def meteor(
    candidates: Sequence[str],
    mult_references: Sequence[Sequence[str]],
    preprocess: bool = True,
    java: str | None = None,
    timeout: float = 120.0,
) -> Outs:
    """METEOR 1.5 (key `meteor`): the jar's corpus score and one score per candidate."""
    cand_toks, ref_toks = prepare_tokens(candidates, mult_references, preprocess, java=java)
    corpus, sents = meteor_scores(
        [" ".join(c) for c in cand_toks],
        [[" ".join(r) for r in refs] for refs in ref_toks],
        java,
        timeout=timeout,
    )
    return {"meteor": corpus}, {"meteor": sents}


class METEOR:
    """Class form of `meteor`."""

    def __init__(self, preprocess: bool = True, java: str | None = None, timeout: float = 120.0) -> None:
        self.preprocess, self.java, self.timeout = preprocess, java, timeout

    def __call__(self, candidates: Sequence[str], mult_references: Sequence[Sequence[str]]) -> Outs:
        return meteor(candidates, mult_references, self.preprocess, self.java, self.timeout)
