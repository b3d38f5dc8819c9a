"""METEOR through the jar: identical to pycocoevalcap's wrapper; the JVM times out and restarts cleanly."""

import io
import sys

import numpy as np
import pytest

from auralign.metrics import meteor
from auralign.metrics._java import JavaError, JavaProcess
from auralign.metrics.meteor import _PROCESSES, _process, close_all
from auralign.metrics.synthetic import caption_corpus
from auralign.metrics.tokenize import tokenize_pair

pytest.importorskip("pycocoevalcap")
pytestmark = pytest.mark.java


def test_meteor_runs_the_jar_as_coco_caption_does(monkeypatch):
    """Same jar and flags as pycocoevalcap's wrapper (captured without starting its JVM)."""
    import subprocess

    from pycocoevalcap.meteor import meteor as coco_meteor

    seen = {}

    class FakePopen:  # records the command line; pycocoevalcap's __del__ closes and kills it
        def __init__(self, cmd, **kwargs):
            seen["cmd"], self.stdin = cmd, io.BytesIO()

        def kill(self):
            pass

        def wait(self):
            pass

    monkeypatch.setattr(subprocess, "Popen", FakePopen)
    coco_meteor.Meteor()
    ours = _process(None, "en", "2G", 120.0).cmd
    assert ours[1:3] == seen["cmd"][1:3] and ours[4:] == seen["cmd"][4:]  # all but the java and jar paths
    assert ours[3].endswith(seen["cmd"][3])


def test_batched_scores_equal_the_jar_one_candidate_at_a_time():
    """Our one-write batch gives exactly what coco-caption's one-round-trip-per-candidate protocol gives."""
    cands, refs = caption_corpus(120, (1, 5), seed=4, style="odd", identical=0.1)
    cands[0] = ""  # an empty answer scores 0, as in the jar
    corpus, sents = meteor(cands, refs)
    cand_toks, ref_toks = tokenize_pair(cands, refs)
    proc = next(iter(_PROCESSES.values()))
    stats = []
    for c, group in zip(cand_toks, ref_toks, strict=True):
        hyp = " ".join(c).replace("|||", "").replace("  ", " ")
        stats += proc.request([" ||| ".join(["SCORE", *(" ".join(r) for r in group), hyp])], 1)
    answers = proc.request(["EVAL ||| " + " ||| ".join(stats)], len(stats) + 1)
    assert corpus["meteor"] == float(answers[-1])
    np.testing.assert_array_equal(sents["meteor"], np.array([float(a) for a in answers[:-1]]))
    assert sents["meteor"][0] == 0.0 and 0 < corpus["meteor"] < 1


@pytest.mark.slow
def test_meteor_restarts_a_dead_jvm():
    cands, refs = caption_corpus(10, 3, seed=5)
    first = meteor(cands, refs)[0]["meteor"]
    for proc in _PROCESSES.values():
        proc._proc.kill()  # behind its back: the next call starts a new JVM and gives the same number
    assert meteor(cands, refs)[0]["meteor"] == first
    close_all()


def test_a_hung_process_times_out_and_a_dead_one_reports_its_stderr():
    hung = JavaProcess([sys.executable, "-c", "import time; time.sleep(60)"], timeout=1, startup=0)
    with pytest.raises(JavaError, match="no answer within 1 s"):
        hung.request(["hello"], 1)
    assert hung._proc is None  # killed, restarted on the next call
    dead = JavaProcess([sys.executable, "-c", "import sys; sys.stderr.write('boom: bad heap'); sys.exit(1)"])
    with pytest.raises(JavaError, match="boom: bad heap"):
        dead.request(["hello"], 1)
    echo = JavaProcess(
        [sys.executable, "-u", "-c", "import sys\nfor line in sys.stdin: print(line.strip()[::-1])"]
    )
    assert echo.request(["abc", "xyz"] * 5000, 10000)[:2] == ["cba", "zyx"]  # large batch: no pipe deadlock
    echo.close()


def test_a_fresh_process_gets_its_startup_allowance_on_the_first_answer_only():
    slow_start = "import sys, time\ntime.sleep(2)\nfor line in sys.stdin: print(line.strip())"
    proc = JavaProcess([sys.executable, "-u", "-c", slow_start], timeout=1, startup=10)
    assert proc.request(["hello"], 1) == ["hello"]  # 2 s start-up fits 1 + 10 s
    with pytest.raises(JavaError, match="no answer within 1 s"):
        proc.request(["one"], 2)  # a second answer that never comes gets the plain timeout
    proc.close()


@pytest.mark.slow
def test_meteor_equals_pycocoevalcap_wrapper():
    from pycocoevalcap.meteor.meteor import Meteor

    coco = Meteor()
    cands, refs = caption_corpus(60, (1, 5), seed=6, style="human", identical=0.1)
    corpus, sents = meteor(cands, refs)
    cand_toks, ref_toks = tokenize_pair(cands, refs)
    res = {i: [" ".join(c)] for i, c in enumerate(cand_toks)}
    gts = {i: [" ".join(r) for r in group] for i, group in enumerate(ref_toks)}
    expected, expected_sents = coco.compute_score(gts, res)
    assert corpus["meteor"] == expected
    np.testing.assert_array_equal(sents["meteor"], np.array(expected_sents))
