"""`auralign evaluate` on a tiny Qwen2-Audio: two rows (base, adapter), a captioning set and an ability task."""

import json
import re
from pathlib import Path
from typing import Any

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


def ability_set(folder: Path, labels: list[str]) -> Path:
    """An ability manifest of one tone per label (the tiny tokenizer knows the words `dog`, `car`, `bird`)."""
    folder.mkdir()
    samples = []
    for i, label in enumerate(labels):
        sf.write(folder / f"{i}.wav", tone(1.0 + 0.25 * i, 300 + 100 * i), 16000)
        samples.append(make_sample(f"vsc-{i}", "vsc", "what is this?", [f"{i}.wav"], label, label=label))
    write_manifest(folder / "vsc.jsonl", samples)
    return folder / "vsc.jsonl"


def evaluate_tiny(tmp_path: Path, labels: list[str], **cfg: Any) -> Path:
    """`auralign evaluate` with a tiny Qwen2-Audio on two captioned clips ("Mini") and one tone per label
    ("VSC"), `cfg` over the defaults; returns the model's folder."""
    model = save_tiny_qwen(tmp_path / "tiny")
    body = {
        "output_dir": str(tmp_path / "results"),
        "model": {"backend": "qwen2audio", "path": str(model)},
        "rows": [{"name": "base"}],
        "captioning": [{"name": "Mini", "manifest": str(write_corpus(tmp_path / "caps", n=2))}],
        "abilities": [{"name": "VSC", "manifest": str(ability_set(tmp_path / "vsc", labels))}],
        "metrics": ["bleu_1"],
        **cfg,
    }
    (tmp_path / "eval.yaml").write_text(yaml.safe_dump(body))
    assert main(["evaluate", str(tmp_path / "eval.yaml")]) == 0
    return model


def test_ability_sets_get_label_logprobs_per_item_and_their_mean(tmp_path, monkeypatch) -> None:
    import torch

    from auralign.data.manifest import load_manifest
    from auralign.models.base import chat_from_sample
    from auralign.models.lora import load_adapter

    model = save_tiny_qwen(tmp_path / "tiny")
    captions = write_corpus(tmp_path / "caps", n=3)
    abilities = ability_set(tmp_path / "vsc", ["dog", "car passes", "bird"])
    llm = Qwen2AudioLLM.from_pretrained(model)
    apply_lora(llm, LoraSettings())
    for name, p in llm.named_parameters():  # LoRA B starts at zero: make the adapter matter
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.5)
    save_adapter(llm, tmp_path / "adapter")
    cfg = {
        "output_dir": str(tmp_path / "results"),
        "model": {"backend": "qwen2audio", "path": str(model)},
        "rows": [{"name": "+AC", "adapter": str(tmp_path / "adapter")}],
        "captioning": [{"name": "Mini", "manifest": str(captions)}],
        "abilities": [{"name": "VSC", "manifest": str(abilities)}],
        "metrics": ["bleu_1", "rouge_l"],
        "generation": {"max_new_tokens": 4, "batch_size": 2},
    }
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["evaluate", str(path)]) == 0

    # independently: the adapter's model, one sample at a time, minus the mean loss x the answer tokens
    fresh = Qwen2AudioLLM.from_pretrained(model)
    load_adapter(fresh, tmp_path / "adapter")
    fresh.eval()
    expected = {}
    with torch.no_grad():
        for sample in load_manifest(abilities):
            batch = fresh.collate([chat_from_sample(sample, abilities.parent)])
            expected[sample.id] = -float(fresh.loss(batch)) * fresh.label_token_count(batch)
    predictions = tmp_path / "results" / "_AC" / "VSC.jsonl"
    lines = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert [r["id"] for r in lines] == ["vsc-0", "vsc-1", "vsc-2"]
    assert all(abs(r["logprob"] - expected[r["id"]]) < 1e-4 for r in lines), (lines, expected)
    result = json.loads((tmp_path / "results" / "results.json").read_text())["+AC"]
    vsc = result["VSC"]
    assert vsc["per_item"]["id"] == ["vsc-0", "vsc-1", "vsc-2"]
    assert vsc["per_item"]["logprob"] == [r["logprob"] for r in lines]
    assert abs(vsc["logprob"] - sum(expected.values()) / 3) < 1e-4
    assert sum(vsc["per_item"]["correct"]) / 3 == vsc["accuracy"]
    assert [r["correct"] for r in lines] == vsc["per_item"]["correct"]
    mini = result["Mini"]
    assert mini["per_item"]["id"] == ["ac-0", "ac-1", "ac-2"]
    assert abs(sum(mini["per_item"]["rouge_l"]) / 3 - mini["corpus"]["rouge_l"]) < 1e-9

    # a cached file from before logprobs (same origin) is stale: logprobs are computed, answers are kept
    answers = [{k: v for k, v in r.items() if k != "logprob"} for r in lines]
    predictions.write_text("".join(json.dumps(r) + "\n" for r in answers))

    def no_generation(*args, **kwargs):
        raise AssertionError("cached answers were generated again")

    monkeypatch.setattr("auralign.infer.caption.caption", no_generation)
    assert main(["evaluate", str(path)]) == 0
    again = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert [{k: v for k, v in r.items() if k != "logprob"} for r in again] == answers
    assert all(abs(r["logprob"] - expected[r["id"]]) < 1e-4 for r in again)
    # complete files are reused as they are: a third run touches nothing
    mtime = predictions.stat().st_mtime_ns
    assert main(["evaluate", str(path)]) == 0
    assert predictions.stat().st_mtime_ns == mtime


def test_score_keeps_per_item_values_in_the_items_order(tmp_path) -> None:
    from auralign.eval.benchmark import BenchSet, EvalConfig, score
    from auralign.metrics import evaluate

    cfg = EvalConfig.model_validate(
        {"output_dir": "o", "model": {}, "rows": [{"name": "base"}], "metrics": ["rouge_l", "cider_d"]}
    )
    labels = tmp_path / "labels.jsonl"
    rows = [
        ("a", "cough", "cough", -0.5),
        ("b", "it is laughter", "laughter", -1.5),
        ("c", "a dog", "cough", -4.0),
    ]
    labels.write_text(
        "".join(
            json.dumps({"id": i, "prediction": p, "label": g, "references": [g], "logprob": lp}) + "\n"
            for i, p, g, lp in rows
        )
    )
    got = score(cfg, labels, BenchSet(name="VSC", manifest="m", kind="label"))
    assert got["per_item"] == {"id": ["a", "b", "c"], "correct": [1, 1, 0], "logprob": [-0.5, -1.5, -4.0]}
    assert got["logprob"] == -2.0 and abs(got["accuracy"] - 2 / 3) < 1e-12

    caps = tmp_path / "caps.jsonl"
    pairs = [("x", "a dog barks", ["a dog barks loudly"]), ("y", "rain falls", ["a car passes", "rain"])]
    caps.write_text(
        "".join(json.dumps({"id": i, "prediction": p, "references": r}) + "\n" for i, p, r in pairs)
    )
    got = score(cfg, caps, BenchSet(name="Mini", manifest="m"))
    assert got["per_item"]["id"] == ["x", "y"] and set(got["per_item"]) == {"id", "rouge_l", "cider_d"}
    alone = [evaluate([p], [r], metrics=["rouge_l"])["rouge_l"] for _, p, r in pairs]  # per sentence
    assert got["per_item"]["rouge_l"] == pytest.approx(alone) and alone[0] != alone[1]
    assert set(got["corpus"]) == {"rouge_l", "cider_d"}  # the tables' scores are undisturbed


def test_label_max_new_tokens_caps_ability_answers_only(tmp_path) -> None:
    from transformers import AutoTokenizer

    generation = {"max_new_tokens": 6, "batch_size": 2}
    model = evaluate_tiny(tmp_path, ["dog", "car"], generation=generation, label_max_new_tokens=1)
    folder = tmp_path / "results" / "base"
    origin = {name: json.loads((folder / f"{name}.origin.json").read_text()) for name in ("Mini", "VSC")}
    assert (
        origin["VSC"]["options"]["max_new_tokens"] == 1 and origin["Mini"]["options"]["max_new_tokens"] == 6
    )
    tok = AutoTokenizer.from_pretrained(model)

    def lengths(name: str) -> list[int]:
        rows = [json.loads(line) for line in (folder / f"{name}.jsonl").read_text().splitlines()]
        return [len(tok(r["prediction"], add_special_tokens=False).input_ids) for r in rows]

    assert max(lengths("VSC")) <= 1 < max(lengths("Mini"))


def test_label_max_new_tokens_unset_keeps_the_generation_options() -> None:
    from auralign.eval.benchmark import BenchSet, EvalConfig, generation_options

    body = {"output_dir": "o", "model": {}, "rows": [{"name": "base"}], "generation": {"max_new_tokens": 32}}
    label = BenchSet(name="VSC", manifest="m", kind="label")
    unset = EvalConfig.model_validate(body)
    assert generation_options(unset, label) == unset.generation  # older caches keep their origin
    capped = EvalConfig.model_validate(body | {"label_max_new_tokens": 8})
    assert generation_options(capped, label).max_new_tokens == 8
    assert generation_options(capped, BenchSet(name="Mini", manifest="m")).max_new_tokens == 32


def test_ability_rows_carry_the_mean_label_logprob() -> None:
    from auralign.eval.benchmark import EvalConfig, report_sections

    cfg = EvalConfig.model_validate(
        {
            "output_dir": "o",
            "model": {},
            "rows": [{"name": "base"}, {"name": "AC", "adapter": "x"}],
            "abilities": [{"name": "vsc", "manifest": "x"}, {"name": "mgc", "manifest": "x"}],
        }
    )
    results = {
        "base": {"vsc": {"n": 2, "accuracy": 0.5, "logprob": -1.25}, "mgc": {"n": 2, "accuracy": 1.0}},
        "AC": {"vsc": {"n": 2, "accuracy": 0.0, "logprob": -3.5}, "mgc": {"n": 2, "accuracy": 0.5}},
    }
    rows = report_sections(cfg, results)["abilities"]["rows"]
    assert rows[0] == {
        "config": "base",
        "accuracy": {"vsc": 0.5, "mgc": 1.0},
        "logprob": {"vsc": -1.25, "mgc": None},
    }
    assert rows[1]["logprob"] == {"vsc": -3.5, "mgc": None}


def test_each_run_marks_correct_answers_as_its_label_mode_reads_them(tmp_path) -> None:
    from auralign.eval.benchmark import BenchSet, EvalConfig, mark_correct

    predictions = tmp_path / "VSC.jsonl"
    rows = [("a", "cough", "cough"), ("b", "it is laughter", "laughter"), ("c", "a dog", "cough")]
    predictions.write_text(
        "".join(
            json.dumps({"id": i, "prediction": p, "label": g, "logprob": -1.0}) + "\n" for i, p, g in rows
        )
    )
    bench = BenchSet(name="VSC", manifest="m", kind="label")

    def marked(mode: str) -> list[int]:
        cfg = EvalConfig.model_validate(
            {"output_dir": "o", "model": {}, "rows": [{"name": "base"}], "label_mode": mode}
        )
        mark_correct(cfg, predictions, bench)
        lines = [json.loads(line) for line in predictions.read_text().splitlines()]
        assert all(r["logprob"] == -1.0 for r in lines)  # the rest of each line is kept
        return [r["correct"] for r in lines]

    assert marked("contains") == [1, 1, 0]
    mtime = predictions.stat().st_mtime_ns
    assert marked("contains") == [1, 1, 0] and predictions.stat().st_mtime_ns == mtime  # unchanged: kept
    assert marked("exact") == [1, 0, 0]


def test_a_row_scored_on_some_sets_only_is_left_out_of_the_others_tables() -> None:
    from auralign.eval.benchmark import EvalConfig, report_sections, tables

    cfg = EvalConfig.model_validate(
        {
            "output_dir": "unused",
            "model": {},
            "rows": [
                {"name": "AC+ACC", "adapter": "x", "sets": ["AudioCaps"]},
                {"name": "base"},
                {"name": "ACC", "adapter": "y"},
            ],
            "captioning": [{"name": "AudioCaps", "manifest": "x"}],
            "abilities": [{"name": "vsc", "manifest": "x"}],
        }
    )
    results = {
        "AC+ACC": {"AudioCaps": {"n": 5, "corpus": {"cider_d": 2.0}}},
        "base": {"AudioCaps": {"n": 5, "corpus": {"cider_d": 1.0}}, "vsc": {"n": 7, "accuracy": 0.8}},
        "ACC": {"AudioCaps": {"n": 5, "corpus": {"cider_d": 1.5}}, "vsc": {"n": 7, "accuracy": 0.7}},
    }
    sections = report_sections(cfg, results)
    assert [r["config"] for r in sections["captioning"][0]["rows"]] == ["AC+ACC", "base", "ACC"]
    abilities = sections["abilities"]
    # the first row that answers the ability sets is the base the changes are measured from
    assert abilities["base"] == "base" and abilities["n_samples"] == {"vsc": 7}
    assert [r["config"] for r in abilities["rows"]] == ["base", "ACC"]
    table = tables(cfg, results)
    assert "| ACC | 70.0 (-10.0) |" in table and "| AC+ACC | **2.000** |" in table
    assert table.count("AC+ACC") == 1  # in Table 2 only


def test_a_row_naming_a_set_the_config_lacks_is_refused() -> None:
    from pydantic import ValidationError

    from auralign.eval.benchmark import EvalConfig

    with pytest.raises(ValidationError, match=r"row 'AC': sets \['Clotho'\] are not in this config"):
        EvalConfig.model_validate(
            {
                "output_dir": "o",
                "model": {},
                "rows": [{"name": "AC", "sets": ["Clotho"]}],
                "captioning": [{"name": "AudioCaps", "manifest": "x"}],
            }
        )


def test_a_row_restricted_to_captioning_never_answers_the_ability_sets(tmp_path) -> None:
    rows = [{"name": "base"}, {"name": "captions only", "sets": ["Mini"]}]
    evaluate_tiny(tmp_path, ["dog", "bird"], rows=rows, generation={"max_new_tokens": 3, "batch_size": 2})
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    assert set(results["base"]) == {"Mini", "VSC"} and set(results["captions only"]) == {"Mini"}
    assert sorted(p.name for p in (tmp_path / "results" / "captions_only").glob("*.jsonl")) == ["Mini.jsonl"]
    assert "| captions only |" not in (tmp_path / "results" / "tables.md").read_text().split("Table 3")[1]


def test_no_progress_turns_off_the_weight_loading_bars_for_any_verb(tmp_path: Path) -> None:
    """`--no-progress` is read once, by the command line, before the verb runs (here one that then fails)."""
    from transformers.utils import logging as hf_logging

    hf_logging.enable_progress_bar()
    try:
        assert main(["evaluate", str(tmp_path / "missing.yaml")]) != 0
        assert hf_logging.is_progress_bar_enabled()
        assert main(["evaluate", str(tmp_path / "missing.yaml"), "--no-progress"]) != 0
        assert not hf_logging.is_progress_bar_enabled()
    finally:
        hf_logging.enable_progress_bar()
