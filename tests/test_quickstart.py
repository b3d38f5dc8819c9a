import json
from pathlib import Path

import pytest

from auralign.config import load_config
from auralign.experiments.acc import (
    FINETUNES,
    MINI_PAIRS,
    QuickstartConfig,
    combined_log,
    ordering_notes,
    run,
    slug,
)

ROOT = Path(__file__).resolve().parents[1]

TINY = QuickstartConfig.model_validate(
    {
        "threads": 1,
        "corpus_scale": 0.1,
        "pairs": {"train": 4, "val": 1, "test": 2},
        "base": {"epochs": 0.03, "batch_size": 4},
        "finetune": {"samples_per_stage": 4, "batch_size": 2},
        "eval": {"limit": 3, "batch_size": 8, "max_new_tokens": 6, "metrics": ["bleu_4", "rouge_l", "cider_d"],
                 "examples": 2},
    }
)  # fmt: skip


def test_shipped_config_file_equals_the_defaults() -> None:
    assert load_config(ROOT / "configs" / "quickstart.yaml", QuickstartConfig) == QuickstartConfig()
    assert QuickstartConfig().pairs == MINI_PAIRS


def test_two_stage_logs_list_the_ac_stage_first(tmp_path: Path) -> None:
    for name, stage, steps in (("AC", "ac", 3), ("AC+ACC", "acc", 2)):
        folder = tmp_path / "train" / slug(name)
        folder.mkdir(parents=True)
        rows = [{"step": k, "stage": stage, "loss": 1.0 / k} for k in range(1, steps + 1)]
        (folder / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    rows = combined_log(tmp_path, "AC+ACC", tmp_path / "train" / "ac-acc" / "log.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["stage"] for r in rows] == ["ac", "ac", "ac", "acc", "acc"]
    assert FINETUNES["AC+ACC"] == (["acc"], "AC")


def test_ordering_notes_rank_by_cider_and_report_ability_changes() -> None:
    sections = {
        "captioning": [{"rows": [{"config": "base", "metrics": {"cider_d": 0.1}},
                                 {"config": "AC", "metrics": {"cider_d": 0.3}},
                                 {"config": "ADC", "metrics": {"cider_d": None}}]}],
        "abilities": {"rows": [{"config": "base", "accuracy": {"a": 0.5, "b": 0.5}},
                               {"config": "ADC", "accuracy": {"a": 0.25, "b": 0.5}}]},
    }  # fmt: skip
    notes = ordering_notes(sections)
    assert notes[0].startswith("CIDEr-D ordering here: AC > base;")
    assert "ADC: mean ability change from the base -12.5 points" in notes[1]


# the whole job with real models: minutes on a busy 2-core machine, more than the suite's 300 s default
@pytest.mark.timeout(900)
def test_tiny_quickstart_end_to_end_then_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The whole job at a tiny scale with the real packaged models: every phase, the tables, the report."""
    first = run(tmp_path, TINY, workers=2, progress=False)
    printed = capsys.readouterr().out
    assert "[7/7]" in printed and "| base |" in printed and "| AC+ACC |" in printed
    results = json.loads((tmp_path / "results.json").read_text())
    names = ["base", *FINETUNES]
    assert [r["config"] for r in results["captioning"]["rows"]] == names
    assert [r["config"] for r in results["abilities"]["rows"]] == names
    assert results["abilities"]["mirrors"] == {"voice_type": "VSC", "speech_style": "SER",
                                               "instrument": "MIC", "rhythm": "MGC"}  # fmt: skip
    assert set(results["training"]) == set(names)
    assert len(results["examples"]) == 2 and set(results["examples"][0]["predictions"]) == set(names)
    assert (tmp_path / results["examples"][0]["audio"]).is_file()
    assert "the shipped base model was trained on other data" in printed  # tiny data: the base is trained
    html = (tmp_path / "report" / "index.html").read_text()
    assert "AC+ACC" in html and "data:image/png;base64" in html
    # a re-run skips every phase: nothing is trained or generated again
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "train").rglob("adapter_model.safetensors")}
    second = run(tmp_path, TINY, workers=2, progress=False)
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
    assert second["results"] == first["results"]
