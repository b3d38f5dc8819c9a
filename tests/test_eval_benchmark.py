"""`auralign evaluate` on a tiny Qwen2-Audio: two rows (base, adapter), a captioning set and an ability task."""

import json

import soundfile as sf
import yaml

from _models_fixtures import save_tiny_qwen, tone, write_corpus
from auralign.cli import main
from auralign.data.manifest import make_sample, write_manifest
from auralign.models.lora import LoraSettings, apply_lora, save_adapter
from auralign.models.qwen2audio import Qwen2AudioLLM


def test_evaluate_writes_results_and_paper_tables(tmp_path) -> None:
    model = save_tiny_qwen(tmp_path / "tiny")
    captions = write_corpus(tmp_path / "caps", n=3)
    (tmp_path / "vsc").mkdir()
    samples = []
    for i, label in enumerate(["cough", "laughter"]):
        sf.write(tmp_path / "vsc" / f"{i}.wav", tone(1.0, 300 + 100 * i), 16000)
        samples.append(make_sample(f"vsc-{i}", "vsc", "what vocal sound is this?", [f"{i}.wav"], label=label))
    write_manifest(tmp_path / "vsc" / "vsc.jsonl", samples)
    llm = Qwen2AudioLLM.from_pretrained(model)
    apply_lora(llm, LoraSettings())
    save_adapter(llm, tmp_path / "adapter")

    cfg = {
        "output_dir": str(tmp_path / "results"),
        "model": {"backend": "qwen2audio", "path": str(model)},
        "rows": [{"name": "base"}, {"name": "+AC", "adapter": str(tmp_path / "adapter")}],
        "captioning": [{"name": "Mini", "manifest": str(captions)}],
        "abilities": [{"name": "VSC", "manifest": str(tmp_path / "vsc" / "vsc.jsonl")}],
        "metrics": ["bleu_1", "rouge_l", "cider_d"],
        "generation": {"max_new_tokens": 4, "batch_size": 2},
    }
    (tmp_path / "eval.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["evaluate", str(tmp_path / "eval.yaml")]) == 0
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    assert set(results) == {"base", "+AC"}
    assert results["base"]["Mini"]["n"] == 3 and set(results["base"]["Mini"]["corpus"]) >= {
        "bleu_1",
        "cider_d",
    }
    assert results["+AC"]["VSC"]["n"] == 2 and 0.0 <= results["+AC"]["VSC"]["accuracy"] <= 1.0
    table = (tmp_path / "results" / "tables.md").read_text()
    assert "| model | bleu_1 | rouge_l | cider_d |" in table and "| model | VSC |" in table
    assert "| base |" in table and "| +AC |" in table
    preds = (tmp_path / "results" / "base" / "Mini.jsonl").read_text().splitlines()
    assert len(preds) == 3
    # a finished evaluation re-scores from the cached predictions without generating again
    mtime = (tmp_path / "results" / "base" / "Mini.jsonl").stat().st_mtime_ns
    assert main(["evaluate", str(tmp_path / "eval.yaml")]) == 0
    assert (tmp_path / "results" / "base" / "Mini.jsonl").stat().st_mtime_ns == mtime
