"""FENSE, FER and SBERT-sim: the error-detector path runs on a tiny random model of FENSE's architecture; the
sentence-model path on the packaged all-MiniLM-L6-v2 (offline), reported under its own key."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sentence_transformers")

from auralign.metrics import PACKAGED, MetricUnavailable, evaluate, fense, fer, sbert_sim  # noqa: E402
from auralign.metrics.fer import ERROR_NAMES, build_classifier, error_probs, load_echecker  # noqa: E402
from auralign.metrics.sbert_sim import load_sbert  # noqa: E402

CANDS = ["a dog barks in the distance", "rain rain rain falls falls", "a man speaks while a car passes"]
REFS = [
    ["a dog is barking far away", "dogs bark"],
    ["heavy rain falls on a roof"],
    ["a man talks", "a car passes"],
]


@pytest.fixture(scope="module")
def tiny_echecker(tmp_path_factory):
    """A FENSE-format checkpoint of a 2-layer, 32-wide random BERT with its own small vocabulary."""
    from transformers import BertConfig, BertTokenizer

    base = tmp_path_factory.mktemp("tiny-bert")
    words = sorted({w for s in CANDS + [r for g in REFS for r in g] for w in s.split()})
    (base / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    BertTokenizer(str(base / "vocab.txt")).save_pretrained(base)
    BertConfig(
        vocab_size=5 + len(words),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
    ).save_pretrained(base)
    torch.manual_seed(0)
    model = build_classifier(base)
    state = model.state_dict()
    state["encoder.embeddings.position_ids"] = torch.arange(64)[None]  # as older FENSE checkpoints hold it

    def save(name: str, error_bias: float | None) -> str:
        tweaked = dict(state)
        if error_bias is not None:
            tweaked["clf.bias"] = torch.full((len(ERROR_NAMES),), error_bias)
        path = base / name
        torch.save({"model_type": str(base), "num_classes": len(ERROR_NAMES), "state_dict": tweaked}, path)
        return str(path)

    return {
        "random": save("random.ckpt", None),
        "always": save("always.ckpt", 30.0),
        "never": save("never.ckpt", -30.0),
        "base": str(base),
    }


def test_checkpoint_weights_are_loaded_and_drive_fer(tiny_echecker):
    model, tokenizer = load_echecker(tiny_echecker["random"])
    probs = error_probs(CANDS, model, tokenizer)
    assert set(probs) == set(ERROR_NAMES) and all(p.shape == (3,) for p in probs.values())
    assert all(np.all((p > 0) & (p < 1)) for p in probs.values())
    assert fer(CANDS, echecker=tiny_echecker["always"])[0]["fer"] == 1.0
    corpus, sents = fer(CANDS, echecker=tiny_echecker["never"])
    assert corpus["fer"] == 0.0 and sents["fer"].tolist() == [0.0, 0.0, 0.0]


def test_fense_is_sbert_sim_times_the_fluency_penalty(tiny_echecker):
    sims = sbert_sim(CANDS, REFS, model=PACKAGED)[1]["sbert_sim_minilm"]
    flagged, sents = fense(CANDS, REFS, sbert_model=PACKAGED, echecker=tiny_echecker["always"])
    np.testing.assert_allclose(sents["fense_minilm"], sims * 0.1, rtol=1e-6)
    assert flagged["fer"] == 1.0
    fluent, sents = fense(CANDS, REFS, sbert_model=PACKAGED, echecker=tiny_echecker["never"])
    np.testing.assert_allclose(sents["fense_minilm"], sims, rtol=1e-6)
    assert fluent["fense_minilm"] == pytest.approx(float(np.mean(sims)))
    assert "fense" not in fluent  # another sentence model: not FENSE, so not under its key


def test_sbert_sim_is_the_mean_cosine_to_each_reference():
    encoder = load_sbert(PACKAGED)
    corpus, sents = sbert_sim(CANDS, REFS, model=PACKAGED)
    for cand, refs, got in zip(CANDS, REFS, sents["sbert_sim_minilm"], strict=True):
        emb = encoder.encode([cand, *refs], normalize_embeddings=True)
        assert got == pytest.approx(float(np.mean(emb[1:] @ emb[0])), abs=1e-6)
    assert set(corpus) == {"sbert_sim_minilm"}  # never under FENSE's key "sbert_sim"


def test_evaluate_reports_fense_or_the_clearly_named_offline_stand_in(tiny_echecker):
    with_models = evaluate(
        CANDS, REFS, ["fense", "fer"], sbert_model=PACKAGED, echecker=tiny_echecker["never"]
    )
    assert with_models["fer"] == 0.0 and with_models["fense_minilm"] > 0 and not with_models.unavailable
    offline = evaluate(CANDS, REFS, ["fense"])
    assert offline["fense"] is None and "sbert_sim_minilm" in offline and offline["sbert_sim_minilm"] > 0
    assert (
        "paraphrase-TinyBERT-L6-v2" in offline.unavailable["fense"]
        or "error detector" in offline.unavailable["fense"]
    )


def test_missing_checkpoint_says_what_to_do(tmp_path):
    with pytest.raises(MetricUnavailable, match=r"echecker_clotho_audiocaps_base\.ckpt"):
        fer(CANDS, echecker=tmp_path / "nope.ckpt")
    with pytest.raises(MetricUnavailable, match="paraphrase-TinyBERT-L6-v2"):
        sbert_sim(CANDS, REFS, model=str(tmp_path / "no-model"))
