"""METEOR through the jar: identical to pycocoevalcap's wrapper; the JVM times out and restarts cleanly."""

import sys

import numpy as np
import pytest

from auralign.metrics import meteor
from auralign.metrics._java import JavaError, JavaProcess
from auralign.metrics.meteor import _PROCESSES, close_all
from auralign.metrics.synthetic import caption_corpus
from auralign.metrics.tokenize import tokenize_pair

pytest.importorskip("pycocoevalcap")
pytestmark = pytest.mark.java


def test_meteor_equals_the_coco_wrapper_and_survives_a_dead_jvm():
    from pycocoevalcap.meteor.meteor import Meteor

    cands, refs = caption_corpus(120, (1, 5), seed=4, style="odd", identical=0.1)
    cands[0] = ""  # an empty answer scores 0, as in the jar
    cand_toks, ref_toks = tokenize_pair(cands, refs)
    res = {i: [" ".join(c)] for i, c in enumerate(cand_toks)}
    gts = {i: [" ".join(r) for r in group] for i, group in enumerate(ref_toks)}
    coco = Meteor()
    expected, expected_sents = coco.compute_score(gts, res)
    del coco
    corpus, sents = meteor(cands, refs)
    assert corpus["meteor"] == expected
    np.testing.assert_array_equal(sents["meteor"], np.array(expected_sents))
    assert sents["meteor"][0] == 0.0
    # Kill the JVM behind our back: the next call starts a new one and gives the same numbers.
    for proc in _PROCESSES.values():
        proc._proc.kill()
    again, _ = meteor(cands[:10], refs[:10])
    assert again["meteor"] == meteor(cands[:10], refs[:10])[0]["meteor"]
    close_all()


def test_a_hung_process_times_out_and_a_dead_one_reports_its_stderr():
    hung = JavaProcess([sys.executable, "-c", "import time; time.sleep(60)"], timeout=1)
    with pytest.raises(JavaError, match="no answer within 1 s"):
        hung.request(["hello"], 1)
    assert hung._proc is None  # killed, restarted on the next call
    dead = JavaProcess([sys.executable, "-c", "import sys; sys.stderr.write('boom: bad heap'); sys.exit(1)"])
    with pytest.raises(JavaError, match="boom: bad heap"):
        dead.request(["hello"], 1)
    echo = JavaProcess([sys.executable, "-u", "-c", "import sys\nfor line in sys.stdin: print(line.strip()[::-1])"])
    assert echo.request(["abc", "xyz"] * 5000, 10000)[:2] == ["cba", "zyx"]  # large batch: no pipe deadlock
    echo.close()
