"""Bad input gets one clear error; evaluate() keys and sets; the `auralign score` verb end to end."""

import json
import math
import os
import random
import shutil

import numpy as np
import pytest

from auralign.cli import main
from auralign.metrics import (
    METRIC_SETS,
    METRICS,
    Metric,
    MetricInputError,
    MetricUnavailable,
    bleu,
    cider_d,
    evaluate,
    resolve_metrics,
    rouge_l,
)
from auralign.metrics.synthetic import caption_corpus

CANDS = ["a dog barks", "rain falls on a roof"]
REFS = [["a dog is barking", "dogs bark loudly"], ["heavy rain falls"]]


@pytest.mark.parametrize(
    ("cands", "refs", "message"),
    [
        (["a", "b"], [["a"]], "2 candidates but 1 reference lists"),
        (["a"], [[]], r"mult_references\[0\] is empty"),
        (["a", None], [["a"], ["b"]], r"candidates\[1\] must be a string, got NoneType"),
        (["a", math.nan], [["a"], ["b"]], r"candidates\[1\] must be a string, got NaN"),
        (["a"], [["a", 3]], r"mult_references\[0\]\[1\] must be a string, got int"),
        (["a"], ["a dog"], r"mult_references\[0\] must be a list of strings"),
        ("a dog", [["a dog"]], "candidates must be a list of strings"),
        ([], [], "no candidates"),
        (["x" * 100_001], [["a"]], "100,001 characters"),
    ],
)
def test_bad_input_raises_one_named_error(cands, refs, message):
    for fn in (bleu, rouge_l, cider_d, evaluate):
        with pytest.raises(MetricInputError, match=message):
            fn(cands, refs)


def test_metric_input_error_is_a_value_error_and_unknown_metrics_are_listed():
    assert issubclass(MetricInputError, ValueError)
    with pytest.raises(MetricInputError, match=r"unknown metric 'bleu5'.*bleu_4"):
        resolve_metrics(["bleu5"])
    assert resolve_metrics("default") == list(METRIC_SETS["default"])
    assert resolve_metrics(["bleu_4", "default"])[0] == "bleu_4"


def test_a_registered_metric_is_known_everywhere_and_reported_by_evaluate(monkeypatch):
    # a new metric: its function (here: words per candidate, and one that needs a runtime missing here)
    words = Metric(lambda run: {"words": np.array([len(c.split()) for c in run.cands], dtype=float)})

    def needs_a_runtime(run):
        raise MetricUnavailable("no such runtime here")

    monkeypatch.setitem(METRICS, "words", words)
    monkeypatch.setitem(METRICS, "elsewhere", Metric(needs_a_runtime))
    scores = evaluate(CANDS, REFS, ["words", "elsewhere"])
    assert scores["words"] == 4.0 and list(scores.sents["words"]) == [3.0, 5.0]
    assert scores["elsewhere"] is None and scores.unavailable == {"elsewhere": "no such runtime here"}
    with pytest.raises(
        MetricInputError, match=r"unknown metric 'lines': choose from .*, words, elsewhere or"
    ):
        resolve_metrics("lines")

    from auralign.eval.benchmark import EvalConfig  # configs check names against the same table

    config = {"output_dir": "o", "model": {}, "rows": [{"name": "base"}]}
    assert EvalConfig.model_validate({**config, "metrics": ["words"]}).metrics == ["words"]
    monkeypatch.delitem(METRICS, "words")
    with pytest.raises(ValueError, match="unknown metric 'words'"):
        EvalConfig.model_validate({**config, "metrics": ["words"]})


def test_empty_candidates_score_zero_and_large_inputs_finish():
    _corpus, sents = cider_d(["", "a dog barks"], [["a dog barks"], ["a dog barks"]])
    assert sents["cider_d"][0] == 0.0
    assert rouge_l(["", "x"], [["a dog"], ["x"]])[1]["rouge_l"][0] == 0.0
    long = " ".join(["dog"] * 15_000)  # 60k characters: a runaway generation still scores, and quickly
    assert 0 < bleu([long], [["a dog barks"]], n=1)[0]["bleu_1"] < 1e-3


@pytest.mark.java
def test_evaluate_returns_aac_metrics_keys_and_per_candidate_scores():
    cands, refs = caption_corpus(25, (1, 5), seed=2)
    scores = evaluate(cands, refs, ["bleu_1", "bleu_4", "rouge_l", "cider_d", "vocab"])
    assert list(scores)[:4] == ["bleu_1", "bleu_4", "rouge_l", "cider_d"]
    assert {"vocab", "vocab.mrefs_full", "vocab.ratio_full"} <= set(scores)
    assert all(len(scores.sents[k]) == 25 for k in ("bleu_1", "bleu_4", "rouge_l", "cider_d"))
    assert scores["rouge_l"] == pytest.approx(float(np.mean(scores.sents["rouge_l"])))
    json.dumps(scores.to_json(per_candidate=True))


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_score_verb_with_references_in_rows(tmp_path, capsys):
    preds = _write(
        tmp_path / "preds.jsonl",
        [{"candidate": c, "references": r} for c, r in zip(CANDS, REFS, strict=True)],
    )
    assert main(["score", str(preds), "--metrics", "bleu_1,rouge_l,cider_d", "--per-candidate"]) == 0
    out = json.loads((tmp_path / "preds.scores.json").read_text())
    expected = evaluate(CANDS, REFS, ["bleu_1", "rouge_l", "cider_d"])
    assert out["corpus"] == dict(expected) and out["n"] == 2 and len(out["sents"]["cider_d"]) == 2
    assert "rouge_l" in capsys.readouterr().out


def test_score_verb_with_a_manifest_and_label_mode(tmp_path):
    from auralign.data.manifest import make_sample, write_manifest

    samples = [
        make_sample(f"s{i}", "vsc", "What is it?", ["a.wav"], label=lab)
        for i, lab in enumerate(["cough", "sneeze"])
    ]
    manifest = tmp_path / "manifest.jsonl"
    write_manifest(manifest, samples)
    preds = _write(
        tmp_path / "p.jsonl", [{"id": "s0", "prediction": "Cough."}, {"id": "s1", "prediction": "a laugh"}]
    )
    assert (
        main(
            ["score", str(preds), "--manifest", str(manifest), "--labels", "--out", str(tmp_path / "o.json")]
        )
        == 0
    )
    assert json.loads((tmp_path / "o.json").read_text())["accuracy"] == 0.5


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"candidate": "a"}], "no 'references' key"),
        ([{"references": ["a"]}], "no 'candidate'"),
        ([{"candidate": 1.5, "references": ["a"]}], "'candidate' must be a string"),
        ([{"candidate": "a", "references": []}], "bad.jsonl:1: references is empty"),
    ],
)
def test_score_verb_reports_bad_rows_in_one_line(tmp_path, capsys, rows, message):
    preds = _write(tmp_path / "bad.jsonl", rows)
    assert main(["score", str(preds), "--metrics", "bleu_1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("auralign: error:") and message.replace("\\", "") in err.replace("\\", "")


def test_label_mode_names_the_line_of_a_bad_label(tmp_path, capsys):
    preds = _write(
        tmp_path / "labels.jsonl",
        [{"prediction": "cough", "label": "cough"}, {"prediction": "x", "label": None}],
    )
    assert main(["score", str(preds), "--labels"]) == 2
    assert "labels.jsonl:2: label must be a string, got NoneType" in capsys.readouterr().err


# ---- empty references: scored as pycocoevalcap scores them, with one warning naming them ----------------------

NGRAM_METRICS = ["bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "cider_d"]


def blank_some(refs: list[list[str]], seed: int) -> tuple[list[list[str]], list[str]]:
    """Some references made empty ("" or spaces): the very last one, every reference of one candidate, and
    a random share; returns them and their names as the warning should give them."""
    rng = random.Random(seed)
    refs = [list(group) for group in refs]
    spots = {(len(refs) - 1, len(refs[-1]) - 1)} | {(0, j) for j in range(len(refs[0]))}
    spots |= {(i, j) for i, group in enumerate(refs) for j in range(len(group)) if rng.random() < 0.15}
    for i, j in spots:
        refs[i][j] = rng.choice(["", " ", "   "])
    return refs, [f"mult_references[{i}][{j}]" for i, j in sorted(spots)]


def coco_ngram_scores(gts: dict, res: dict) -> dict[str, tuple[float, np.ndarray]]:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    bleu_c, bleu_s = Bleu(4).compute_score(gts, res, verbose=0)
    out = {f"bleu_{n + 1}": (bleu_c[n], np.array(bleu_s[n])) for n in range(4)}
    for name, scorer in (("rouge_l", Rouge()), ("cider_d", Cider())):
        corpus, sents = scorer.compute_score(gts, res)
        out[name] = (corpus, np.array(sents))
    return out


def assert_scores_equal(ours, expected) -> None:
    for name, (corpus, sents) in expected.items():
        assert abs(ours[name] - corpus) <= 1e-9, name
        np.testing.assert_allclose(ours.sents[name], sents, rtol=0, atol=1e-9, err_msg=name)


def empty_reference_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "empty reference" in r.getMessage()]


@pytest.mark.parametrize("seed", range(8))
def test_empty_references_score_as_in_pycocoevalcap_on_plain_captions(seed, caplog):
    """Plain captions need no Java (the tokenizer's fast path): pycocoevalcap's scorers get the same tokens,
    joined as its PTBTokenizer joins them ("" for an empty reference)."""
    pytest.importorskip("pycocoevalcap")
    from auralign.metrics.tokenize import tokenize_pair

    cands, refs = caption_corpus(30, (1, 5), seed=seed, style="plain", identical=0.1)
    refs, names = blank_some(refs, seed)
    scores = evaluate(cands, refs, NGRAM_METRICS)
    cand_toks, ref_toks = tokenize_pair(cands, refs)
    gts = {i: [" ".join(r) for r in group] for i, group in enumerate(ref_toks)}
    res = {i: [" ".join(c)] for i, c in enumerate(cand_toks)}
    assert "" in gts[0]
    assert_scores_equal(scores, coco_ngram_scores(gts, res))
    (warning,) = empty_reference_warnings(caplog)
    assert warning.startswith(f"{len(names)} empty reference(s) ({', '.join(names[:5])}")


def java_here() -> bool:
    return shutil.which("java") is not None or bool(os.environ.get("AURALIGN_JAVA"))


@pytest.mark.java
@pytest.mark.skipif(not java_here(), reason="needs Java")
@pytest.mark.parametrize(("seed", "style"), [(0, "human"), (1, "odd"), (2, "human")])
def test_empty_references_score_as_in_pycocoevalcap_end_to_end(seed, style, caplog):
    """Raw text through pycocoevalcap's own PTBTokenizer and scorers, as COCOEvalCap runs them."""
    pytest.importorskip("pycocoevalcap")
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    cands, refs = caption_corpus(40, (1, 5), seed=seed, style=style, identical=0.1)
    refs, names = blank_some(refs, seed)
    tok = PTBTokenizer()
    gts = tok.tokenize({i: [{"caption": r} for r in group] for i, group in enumerate(refs)})
    res = tok.tokenize({i: [{"caption": c}] for i, c in enumerate(cands)})
    assert_scores_equal(evaluate(cands, refs, NGRAM_METRICS), coco_ngram_scores(gts, res))
    (warning,) = empty_reference_warnings(caplog)
    assert names[0] in warning and f"{len(names)} empty" in warning


@pytest.mark.java
@pytest.mark.skipif(not java_here(), reason="needs Java")
def test_empty_references_score_as_in_pycocoevalcap_meteor(caplog):
    pytest.importorskip("pycocoevalcap")
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    from auralign.metrics import meteor

    cands, refs = caption_corpus(25, (1, 5), seed=5, style="human", identical=0.1)
    refs, names = blank_some(refs, 5)
    tok = PTBTokenizer()
    gts = tok.tokenize({i: [{"caption": r} for r in group] for i, group in enumerate(refs)})
    res = tok.tokenize({i: [{"caption": c}] for i, c in enumerate(cands)})
    expected, expected_sents = Meteor().compute_score(gts, res)
    corpus, sents = meteor(cands, refs)
    assert corpus["meteor"] == expected
    np.testing.assert_array_equal(sents["meteor"], np.array(expected_sents))
    (warning,) = empty_reference_warnings(caplog)
    assert names[0] in warning


def test_only_empty_references_still_score_and_each_call_warns_once(caplog):
    # pycocoevalcap scores them: BLEU and CIDEr-D 0; ROUGE-L 1 for an empty candidate ("" matches "")
    scores = evaluate(["a dog barks", ""], [[""], [" "]], NGRAM_METRICS)
    assert scores.sents["cider_d"].tolist() == [0.0, 0.0] and scores.sents["rouge_l"].tolist() == [0.0, 1.0]
    assert scores["bleu_1"] < 1e-6
    (warning,) = empty_reference_warnings(caplog)
    assert "2 empty reference(s) (mult_references[0][0], mult_references[1][0])" in warning
    caplog.clear()
    many = [[""] for _ in range(8)]
    bleu(["a"] * 8, many, n=1)
    (warning,) = empty_reference_warnings(caplog)
    assert "8 empty reference(s)" in warning and "mult_references[4][0] and 3 more" in warning


def test_score_verb_scores_a_row_with_an_empty_reference_and_names_it(tmp_path, caplog):
    rows = [{"candidate": "a", "references": ["x"]}, {"candidate": "b", "references": ["ok", " "]}]
    preds = _write(tmp_path / "p.jsonl", rows)
    assert main(["score", str(preds), "--metrics", "bleu_1,cider_d"]) == 0
    (warning,) = empty_reference_warnings(caplog)
    assert "mult_references[1][1]" in warning
    out = json.loads((tmp_path / "p.scores.json").read_text())
    assert out["corpus"] == dict(evaluate(["a", "b"], [["x"], ["ok", " "]], ["bleu_1", "cider_d"]))
