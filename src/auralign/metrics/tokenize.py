"""PTB tokenisation exactly as coco-caption / aac-metrics do it before BLEU, METEOR, ROUGE-L, CIDEr-D, SPICE.

Those tools run Stanford CoreNLP 3.4.1's `PTBTokenizer -preserveLines -lowerCase` (the jar ships in the
pycocoevalcap wheel) and then drop a fixed list of punctuation tokens. CoreNLP's lexer is a large JFlex grammar
(abbreviations such as "etc." or "a." keep their period, quotes become `` and '', "½" becomes "1/2", ...), so a
Python rewrite would drift from the reference on exactly the inputs users never check. We therefore run the
real jar, once per call for all sentences (one JVM start, ~0.3 s), which gives identical tokens by construction.

The jar's output for a sentence can depend on the *next* line: "AT&T." keeps its period as an abbreviation
before a lower-case line and loses it before an upper-case one. coco-caption and aac-metrics tokenise all
candidates as one batch and all references (flattened, in order) as another, so we do exactly the same (the two
batches run in parallel): the same batches give the same tokens. A fast path skips Java when every sentence of
a batch is ASCII letters and single spaces (typical model output): there the lexer only lower-cases and
splits six fused words ("cannot" -> "can not", "gonna" -> "gon na", ...); tests check it against the jar.

Known quirk kept for fidelity: coco-caption's punctuation list holds "-LRB-" in upper case, but the jar emits
"-lrb-" once lower-cased, so bracket tokens stay in the token stream (pycocoevalcap scores them too).
"""

import importlib.util
import os
import re
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from auralign.metrics._inputs import MetricUnavailable
from auralign.metrics._java import find_java

# Removed after tokenisation, as coco-caption's ptbtokenizer.py does.
PUNCTUATIONS = frozenset(
    ["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";"]
)
_FUSED = {
    "cannot": "can not",
    "gonna": "gon na",
    "gotta": "got ta",
    "lemme": "lem me",
    "gimme": "gim me",
    "wanna": "wan na",
}
_SIMPLE = re.compile(r"[A-Za-z]+(?: [A-Za-z]+)*")
JAR_ENV = "AURALIGN_CORENLP_TOKENIZER_JAR"


def tokenizer_jar() -> Path:
    """The CoreNLP 3.4.1 jar: $AURALIGN_CORENLP_TOKENIZER_JAR, else the copy inside pycocoevalcap."""
    if os.environ.get(JAR_ENV):
        return Path(os.environ[JAR_ENV])
    spec = importlib.util.find_spec("pycocoevalcap")
    if spec is None or not spec.submodule_search_locations:
        raise MetricUnavailable(
            "PTB tokenisation needs stanford-corenlp-3.4.1.jar: `pip install pycocoevalcap` (it ships the jar) "
            f"or set ${JAR_ENV} to the jar's path"
        )
    return Path(next(iter(spec.submodule_search_locations)), "tokenizer", "stanford-corenlp-3.4.1.jar")


def normalize_space(sentence: str) -> str:
    # Any Unicode line or space separator becomes one space: the jar treats some (\v, \x85, \u2028) as line
    # breaks, which would shift every following line (a misalignment bug in coco-caption itself).
    return " ".join(sentence.split())


def is_simple(sentence: str) -> bool:
    """True where the Python fast path is exact: ASCII letters separated by single spaces."""
    return _SIMPLE.fullmatch(sentence) is not None


def _simple_tokens(sentence: str) -> list[str]:
    return " ".join(_FUSED.get(w, w) for w in sentence.lower().split(" ")).split(" ")


def _clean(line: str) -> list[str]:
    return [w for w in line.rstrip().split(" ") if w and w not in PUNCTUATIONS]


def run_jar(
    sentences: Sequence[str], java: str | None = None, timeout: float | None = None
) -> list[list[str]]:
    """Tokenise space-normalised sentences with one run of the CoreNLP jar."""
    jar = tokenizer_jar()
    if not jar.is_file():
        raise MetricUnavailable(
            f"tokenizer jar not found at {jar}: reinstall pycocoevalcap or set ${JAR_ENV}"
        )
    cmd = [
        find_java(java),
        "-cp",
        str(jar),
        "edu.stanford.nlp.process.PTBTokenizer",
        "-preserveLines",
        "-lowerCase",
        "-encoding",
        "UTF-8",
    ]
    text = "\n".join(sentences)
    limit = timeout if timeout is not None else 60 + len(text) / 20_000  # ~1 s per 20k characters, plus start
    try:
        done = subprocess.run(cmd, input=text.encode(), capture_output=True, timeout=limit, check=False)
    except subprocess.TimeoutExpired:
        raise MetricUnavailable(f"the PTB tokenizer did not finish within {limit:.0f} s") from None
    if done.returncode != 0:
        raise MetricUnavailable(f"the PTB tokenizer failed: {done.stderr.decode(errors='replace')[-300:]}")
    lines = done.stdout.decode("utf-8").split("\n")
    if len(lines) > len(sentences) and not any(lines[len(sentences) :]):
        lines = lines[: len(sentences)]
    if len(lines) != len(sentences):
        raise MetricUnavailable(
            f"the PTB tokenizer returned {len(lines)} lines for {len(sentences)} sentences; a sentence holds a "
            "character the lexer treats as a line break: please report it"
        )
    return [_clean(line) for line in lines]


def ptb_tokenize(
    sentences: Sequence[str], java: str | None = None, fast_path: bool = True
) -> list[list[str]]:
    """Token lists, as coco-caption computes them for this batch of sentences (same order)."""
    normed = [normalize_space(s) for s in sentences]
    if fast_path and all(not s or is_simple(s) for s in normed):
        return [_simple_tokens(s) if s else [] for s in normed]
    # Empty lines go through the jar too: they are part of the context coco-caption's jar run sees.
    return run_jar(normed, java=java)


def tokenize_pair(
    candidates: Sequence[str], mult_references: Sequence[Sequence[str]], java: str | None = None
) -> tuple[list[list[str]], list[list[list[str]]]]:
    """Tokenise candidates and references as aac-metrics does: two batches (run in parallel)."""
    flat = [r for refs in mult_references for r in refs]
    with ThreadPoolExecutor(max_workers=2) as pool:
        cand_job = pool.submit(ptb_tokenize, candidates, java)
        ref_job = pool.submit(ptb_tokenize, flat, java)
        cands, tokens = cand_job.result(), ref_job.result()
    pos, refs = 0, []
    for group in mult_references:
        refs.append(tokens[pos : pos + len(group)])
        pos += len(group)
    return cands, refs
