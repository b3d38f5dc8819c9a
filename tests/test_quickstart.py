import json
from pathlib import Path

import pytest
import yaml

from auralign.cli import build_parser
from auralign.config import load_config
from auralign.errors import ConfigError
from auralign.experiments.acc import (
    ABILITY_TASKS,
    CAPTIONING,
    FINETUNES,
    MINI_PAIRS,
    PRESETS,
    QuickstartConfig,
    base_train_config,
    check_stage_configs,
    combined_log,
    eval_config,
    finetune_config,
    ordering_notes,
    run,
    slug,
)
from auralign.experiments.miniature import Origin, read_config
from auralign.models.factory import SHIPPED_BASE

ROOT = Path(__file__).resolve().parents[1]

TINY = QuickstartConfig.model_validate(
    {
        "threads": 1,
        "corpus_scale": 0.1,
        "pairs": {"train": 4, "val": 1, "test": 2},
        "ac_train": "per_clip",  # as the full preset
        "base_epochs": 0.03,
        "samples_per_stage": 4,
        "test_limit": 3,
        "ability_limit": 4,
        "own_task": True,
        "ability_rows": ["base", "AC", "ADC", "ACC"],  # as the full preset
        "seeds": [0, 1],
        "examples": 2,
        "base": {"batch_size": 4},
        "finetune": {"batch_size": 2},
        "eval": {
            "generation": {"batch_size": 8, "max_new_tokens": 6},
            "metrics": ["bleu_4", "rouge_l", "cider_d"],
        },
    }
)


def stage_configs(cfg: QuickstartConfig) -> dict[str, dict]:
    """Every stage config the quickstart builds from `cfg`, over a placeholder run folder, as JSON."""
    run_dir, sizes = Path("/run"), {"ac": 699, "adc": 450, "acc": 450}
    configs = {"base": base_train_config(run_dir, cfg)}
    for name, (_, start) in FINETUNES.items():
        configs[name] = finetune_config(
            run_dir, cfg, name, start=run_dir / start, sizes=sizes, seed=cfg.seeds[0]
        )
    adapters = {name: Path(c.output_dir) for name, c in configs.items()}
    configs["eval"] = eval_config(run_dir, cfg, adapters, mirrors=dict.fromkeys(ABILITY_TASKS, "VSC"))
    return {name: c.model_dump(mode="json") for name, c in configs.items()}


def test_shipped_config_file_equals_the_defaults() -> None:
    for name, file in (("quick", "quickstart.yaml"), ("full", "quickstart-full.yaml")):
        shipped = load_config(ROOT / "configs" / file, QuickstartConfig)
        preset = QuickstartConfig.model_validate(PRESETS[name])
        assert shipped.model_dump(exclude={"base", "finetune", "eval"}) == preset.model_dump(
            exclude={"base", "finetune", "eval"}
        )
        assert stage_configs(shipped) == stage_configs(preset)
    assert QuickstartConfig().pairs == MINI_PAIRS


def test_the_full_preset_is_the_protocol() -> None:
    """docs/replication.md: 3 seeds, 1 epoch over each task's pairs, every test item, own-task sets."""
    args = build_parser().parse_args(["quickstart", "--preset", "full", "--set", "seeds=[4, 5, 6]"])
    cfg, origin = read_config(args, QuickstartConfig, PRESETS)
    assert cfg.preset == "full" and cfg.seeds == [4, 5, 6] and origin.source == "the full preset"
    assert (
        cfg.finetune_epochs == 1.0 and cfg.test_limit is None and cfg.ability_limit is None and cfg.own_task
    )
    configs = stage_configs(cfg)
    sets = {row["name"]: row["sets"] for row in configs["eval"]["rows"]}
    assert sets == {
        **dict.fromkeys(["base", "AC", "ADC", "ACC"]),
        "AC+ADC": [CAPTIONING],
        "AC+ACC": [CAPTIONING],
    }
    assert cfg.ac_train == "per_clip" and cfg.pairs["train"] == 50  # docs/replication.md, "Changes"
    assert configs["ADC"]["stages"][0]["epochs"] == 1.0 and configs["AC"]["seed"] == 4
    assert configs["AC"]["output_dir"] == "/run/train/seed-4/ac"
    quick, _ = read_config(build_parser().parse_args(["quickstart"]), QuickstartConfig, PRESETS)
    assert quick == QuickstartConfig() and quick.preset == "quick" and quick.seeds == [0]


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        (["base", "ADC"], r"\['ACC'\] must answer the ability tasks"),
        (["base", "ADC", "ACC", "AC-X"], "unknown"),
    ],
)
def test_ability_rows_must_hold_the_claims_rows_and_known_names(rows: list[str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        QuickstartConfig(ability_rows=rows)


def test_the_default_recipe_in_numbers() -> None:
    configs = stage_configs(QuickstartConfig())
    base, ac, evaluation = configs["base"], configs["AC"], configs["eval"]
    assert base["optim"]["lr"] == 1e-3 and base["batch_size"] == 8 and base["lora"]["train_projector"]
    sources = base["stages"][0]["data"]
    assert [s["weight"] for s in sources] == [1.0, 1.0, 2.0, 2.0, 2.0, 2.0]
    assert [Path(s["manifest"]).name for s in sources[:2]] == [
        "events.jsonl",
        "tags.jsonl",
    ]  # not AC's captions
    assert base["stages"][0]["epochs"] == 2.0
    shipped = yaml.safe_load((SHIPPED_BASE / "config.yaml").read_text())
    assert base["optim"] == shipped["optim"]  # --from-scratch is the recipe that made the shipped base
    assert ac["optim"]["warmup_ratio"] == 0.0 and ac["optim"]["betas"] == [0.9, 0.95]  # ms-swift's defaults
    assert ac["optim"]["lr"] == 1e-4 and ac["batch_size"] == 4 and ac["stages"][0]["epochs"] == 96 / 699
    assert configs["AC+ACC"]["init_adapter"] == "/run/AC"
    assert evaluation["generation"]["batch_size"] == 16 and evaluation["generation"]["max_new_tokens"] == 32


def test_a_stage_config_key_the_quickstart_never_names_reaches_the_stage(tmp_path: Path) -> None:
    """Partial stage configs: any TrainConfig / EvalConfig key, nested as there, deep-merged over the recipe."""
    path = tmp_path / "q.yaml"
    partials = {
        "finetune": {"optim": {"warmup_ratio": 0.25}, "keep_checkpoints": 5},
        "base": {"gradient_checkpointing": True},
        "eval": {"label_mode": "exact"},
    }
    path.write_text(yaml.safe_dump(partials))
    configs = stage_configs(load_config(path, QuickstartConfig))
    assert configs["ADC"]["optim"]["warmup_ratio"] == 0.25 and configs["ADC"]["keep_checkpoints"] == 5
    assert configs["ADC"]["optim"]["lr"] == 1e-4  # the rest of the recipe's optim section stays
    assert configs["base"]["gradient_checkpointing"] and not configs["AC"]["gradient_checkpointing"]
    assert configs["eval"]["label_mode"] == "exact"


def test_a_bad_stage_key_fails_before_any_phase_naming_the_file_and_the_dotted_key(tmp_path: Path) -> None:
    bad = QuickstartConfig.model_validate({"finetune": {"optim": {"warmup_ratio": 2.0, "lr_typo": 1}}})
    with pytest.raises(ConfigError, match=r"q\.yaml: invalid config") as error:
        check_stage_configs(bad, Origin("q.yaml"))
    assert "finetune.optim.warmup_ratio:" in str(error.value)
    assert "finetune.optim.lr_typo: unknown key" in str(error.value)
    with pytest.raises(ConfigError, match=r"eval\.metrics"):
        run(tmp_path, QuickstartConfig.model_validate({"eval": {"metrics": ["bleu_9"]}}))
    assert not (tmp_path / "mini").exists()


def test_the_command_line_sets_stage_keys_and_an_error_names_the_option() -> None:
    args = build_parser().parse_args(["quickstart", "--set", "finetune.optim.lr=2.0e-4", "--seed", "3"])
    cfg, origin = read_config(args, QuickstartConfig)
    assert cfg.seed == 3 and stage_configs(cfg)["ACC"]["optim"]["lr"] == 2e-4
    assert origin == Origin("the built-in defaults", ("finetune.optim.lr",))
    args = build_parser().parse_args(["quickstart", "--set", "finetune.optim.lr=fast"])
    with pytest.raises(ConfigError, match=r"^--set finetune\.optim\.lr: Input should be a valid number"):
        check_stage_configs(*read_config(args, QuickstartConfig))


def test_two_stage_logs_list_the_ac_stage_first(tmp_path: Path) -> None:
    for name, stage, steps in (("AC", "ac", 3), ("AC+ACC", "acc", 2)):
        folder = tmp_path / slug(name)
        folder.mkdir(parents=True)
        rows = [{"step": k, "stage": stage, "loss": 1.0 / k} for k in range(1, steps + 1)]
        (folder / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    rows = combined_log(tmp_path, "AC+ACC", tmp_path / "ac-acc" / "log.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["stage"] for r in rows] == ["ac", "ac", "ac", "acc", "acc"]
    assert FINETUNES["AC+ACC"] == (["acc"], "AC")


def test_ordering_notes_rank_by_cider_and_report_ability_changes() -> None:
    sections = {
        "captioning": [
            {
                "rows": [
                    {"config": "base", "metrics": {"cider_d": 0.1}},
                    {"config": "AC", "metrics": {"cider_d": 0.3}},
                    {"config": "ADC", "metrics": {"cider_d": None}},
                ]
            }
        ],
        "abilities": {
            "rows": [
                {"config": "base", "accuracy": {"a": 0.5, "b": 0.5}},
                {"config": "ADC", "accuracy": {"a": 0.25, "b": 0.5}},
            ]
        },
    }
    notes = ordering_notes(sections)
    assert notes[0].startswith("CIDEr-D ordering here: AC > base;")
    assert "ADC: mean ability change from the base -12.5 points" in notes[1]


# the whole job with real models: minutes on a busy 2-core machine, more than the suite's 300 s default
@pytest.mark.timeout(900)
def test_tiny_quickstart_end_to_end_then_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The whole job at a tiny scale with the real packaged models: every phase, the tables, the report."""
    first = run(tmp_path, TINY, workers=2, progress=False)
    captured = capsys.readouterr()
    printed = captured.out
    # progress=False (--no-progress) silences every bar: data, features, training, captioning
    assert "stage ac" not in captured.err and "caption:" not in captured.err
    assert "[7/7]" in printed and "| base |" in printed and "| AC+ACC |" in printed
    results = json.loads((tmp_path / "results.json").read_text())
    names = ["base", *FINETUNES]
    assert [r["config"] for r in results["captioning"]["rows"]] == names
    # AC+ADC and AC+ACC only caption (ability_rows): they answer no ability question
    assert [r["config"] for r in results["abilities"]["rows"]] == ["base", "AC", "ADC", "ACC"]
    assert not list((tmp_path / "eval" / "seed-0" / "main" / "AC_ACC").glob("rhythm*"))
    assert results["abilities"]["mirrors"] == {
        "voice_type": "VSC",
        "speech_style": "SER",
        "instrument": "MIC",
        "rhythm": "MGC",
    }
    assert set(results["training"]) == set(names)
    assert len(results["examples"]) == 2 and set(results["examples"][0]["predictions"]) == set(names)
    assert (tmp_path / results["examples"][0]["audio"]).is_file()
    assert "the shipped base model was trained on other data" in printed  # tiny data: the base is trained
    assert results["preset"] == "quick" and results["seeds"] == [0, 1]
    assert {"finetune_s", "evaluate_s", "report_s", "total_s"} <= set(results["timings"])  # rewritten last
    assert [c["id"] for c in results["claims"]] == ["A1", "A2", "A3", "A4"]
    assert {c["verdict"] for c in results["claims"]} == {"not tested"}  # the quick preset tests no claim
    assert "verdicts (quick preset, seeds [0, 1]):" in printed
    ac = next(r for r in results["captioning"]["rows"] if r["config"] == "AC")
    low, high = ac["intervals"]["cider_d"]
    assert low <= ac["metrics"]["cider_d"] <= high and "event_recall" in ac["metrics"]
    assert results["abilities"]["n_samples"] == dict.fromkeys(ABILITY_TASKS, 4)  # ability_limit, round-robin
    base = results["abilities"]["rows"][0]
    assert set(base["logprob"]) == set(ABILITY_TASKS) and all(v < 0 for v in base["logprob"].values())
    own = {(r["set"], r["config"]) for r in results["own_task"]}
    assert own == {
        (s, c)
        for s, rows in (("ADC test", ("base", "ADC", "AC+ADC")), ("ACC test", ("base", "ACC", "AC+ACC")))
        for c in rows
    }
    assert (tmp_path / "train" / "seed-1" / "ac-acc" / "adapter").is_dir()
    # ac_train: per_clip trains AC on one sample per train scene, its first caption
    scenes = (tmp_path / "mini" / "scenes" / "train.csv").read_text().splitlines()[1:]
    ac_train = [json.loads(line) for line in (tmp_path / "data" / "train" / "ac.jsonl").open()]
    assert len(ac_train) == len({s.split(",")[1] for s in scenes}) == len({s["audios"][0] for s in ac_train})
    assert all(s["messages"][-1]["content"] == s["references"][0] for s in ac_train)
    html = (tmp_path / "report" / "index.html").read_text()
    assert "AC+ACC" in html and "data:image/png;base64" in html
    # a re-run skips every phase: nothing is trained or generated again
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "train").rglob("adapter_model.safetensors")}
    second = run(tmp_path, TINY, workers=2, progress=False)
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
    assert second["results"] == first["results"]
