"""`auralign evaluate` on a tiny Qwen2-Audio: two rows (base, adapter), a captioning set and an ability task."""

import json
import re
from pathlib import Path

import pytest
import soundfile as sf
import yaml

from _models_fixtures import save_tiny_qwen, tone, write_corpus
from auralign.cli import main
from auralign.data.manifest import make_sample, write_manifest
from auralign.models.acc.qwen2audio import Qwen2AudioLLM
from auralign.models.lora import LoraSettings, apply_lora, save_adapter

REPO = Path(__file__).parents[1]


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
    assert "Table 2. Captioning on Mini, 3 clips" in table
    assert (
        "| Configuration | BLEU-1 | ROUGE-L | CIDEr-D |" in table
        and "| Configuration | VSC (n=2) | mean |" in table
    )
    assert "| base |" in table and "| +AC |" in table
    preds = (tmp_path / "results" / "base" / "Mini.jsonl").read_text().splitlines()
    assert len(preds) == 3
    # a finished evaluation re-scores from the cached predictions without generating again
    mtime = (tmp_path / "results" / "base" / "Mini.jsonl").stat().st_mtime_ns
    assert main(["evaluate", str(tmp_path / "eval.yaml")]) == 0
    assert (tmp_path / "results" / "base" / "Mini.jsonl").stat().st_mtime_ns == mtime


def test_eval_configs_keep_their_generation_section() -> None:
    from auralign.config import load_config
    from auralign.eval.benchmark import EvalConfig

    shipped = load_config(REPO / "configs/acc/eval.yaml", EvalConfig).generation
    assert (shipped.batch_size, shipped.max_new_tokens, shipped.do_sample) == (16, 64, False)
    minimal = EvalConfig.model_validate({"output_dir": "o", "model": {}, "rows": [{"name": "base"}]})
    assert minimal.generation.batch_size == 8  # eval's default batch


def test_tables_follow_the_paper_layout_with_the_first_row_as_base() -> None:
    from auralign.eval.benchmark import EvalConfig, report_sections, tables

    cfg = EvalConfig.model_validate(
        {
            "output_dir": "unused",
            "model": {},
            "rows": [{"name": "Qwen2-Audio"}, {"name": "ACC", "adapter": "x"}],
            "captioning": [{"name": "AudioCaps", "manifest": "x"}],
            "abilities": [
                {"name": "vsc", "manifest": "x", "mirrors": "VSC"},
                {"name": "mgc", "manifest": "x"},
            ],
        }
    )
    corpus = {"Qwen2-Audio": {"cider_d": 1.3155, "spider": 0.7948}, "ACC": {"cider_d": 2.4699, "spider": 0.7}}
    results = {
        row: {
            "AudioCaps": {"n": 975, "corpus": corpus[row]},
            "vsc": {"n": 20, "accuracy": acc[0]},
            "mgc": {"n": 10, "accuracy": acc[1]},
        }
        for row, acc in (("Qwen2-Audio", (0.9361, 0.7067)), ("ACC", (0.93, 0.7207)))
    }
    assert report_sections(cfg, results)["abilities"]["base"] == "Qwen2-Audio"
    table = tables(cfg, results)
    assert "| Qwen2-Audio | 1.315 | **0.795** |" in table and "| ACC | **2.470** | 0.700 |" in table
    assert "vsc (VSC, n=20)" in table
    assert "| ACC | 93.0 (-0.6) | 72.1 (+1.4) |" in table  # change from the first row, in points


@pytest.mark.parametrize(
    ("section", "names", "problem"),
    [
        (
            "rows",
            ["AC+ADC", "AC ADC"],
            "names 'AC+ADC' and 'AC ADC' would share one predictions folder ('AC_ADC')",
        ),
        ("rows", ["base", "Base"], "names 'base' and 'Base' would share one predictions folder"),
        ("captioning", ["Mini", "mini"], "names 'Mini' and 'mini' would share one predictions file"),
        ("abilities", ["VSC", "mini"], "names 'Mini' and 'mini' would share one predictions file"),
    ],
)
def test_names_sharing_a_predictions_folder_or_file_are_refused(tmp_path, section, names, problem) -> None:
    from auralign.config import load_config
    from auralign.errors import ConfigError
    from auralign.eval.benchmark import EvalConfig

    body = {
        "output_dir": "o",
        "model": {},
        "rows": [{"name": "base"}],
        "captioning": [{"name": "Mini", "manifest": "x"}],
    }
    if section == "rows":
        body["rows"] = [{"name": name} for name in names]
    else:
        body[section] = [{"name": name, "manifest": "x"} for name in names]
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump(body))
    with pytest.raises(ConfigError, match=rf"{section}: .*{re.escape(problem)}"):
        load_config(path, EvalConfig)


def test_cached_predictions_of_another_setup_are_refused_naming_what_differs(tmp_path, capsys) -> None:
    from safetensors.torch import load_file, save_file

    model = save_tiny_qwen(tmp_path / "tiny")
    captions = write_corpus(tmp_path / "caps", n=2)
    llm = Qwen2AudioLLM.from_pretrained(model)
    apply_lora(llm, LoraSettings())
    save_adapter(llm, tmp_path / "adapter")
    cfg = {
        "output_dir": str(tmp_path / "results"),
        "model": {"backend": "qwen2audio", "path": str(model)},
        "rows": [{"name": "+AC", "adapter": str(tmp_path / "adapter")}],
        "captioning": [{"name": "Mini", "manifest": str(captions)}],
        "metrics": ["bleu_1"],
        "generation": {"max_new_tokens": 3, "batch_size": 2},
    }
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["evaluate", str(path)]) == 0
    predictions = tmp_path / "results" / "_AC" / "Mini.jsonl"
    before = predictions.read_bytes()

    def refused(key: str, *overrides: str) -> None:
        assert main(["evaluate", str(path), *overrides]) == 2
        err = capsys.readouterr().err
        assert f"{predictions}: cached predictions of another setup (differs in: {key})" in err, err
        assert predictions.read_bytes() == before

    refused("options.max_new_tokens", "--set", "generation.max_new_tokens=5")
    path.write_text(
        yaml.safe_dump(cfg | {"captioning": [cfg["captioning"][0] | {"prompt": "tell me the difference."}]})
    )
    refused("prompts")
    path.write_text(yaml.safe_dump(cfg | {"captioning": [cfg["captioning"][0] | {"limit": 1}]}))
    refused("inputs")
    path.write_text(yaml.safe_dump(cfg))
    weights = tmp_path / "adapter" / "adapter_model.safetensors"  # the adapter retrained in place
    save_file({k: v + 1 for k, v in load_file(weights).items()}, weights)
    refused("model.adapter_files")
