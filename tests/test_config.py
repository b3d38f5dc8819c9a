"""`--set KEY=VALUE` on every config-reading verb: the override reaches the validated config; a bad key path,
a value that is not YAML or one the config rejects exits 2 with one line naming the option."""

from pathlib import Path

import pytest

from auralign.cli import main
from auralign.config import apply_overrides, load_config, read_yaml
from auralign.errors import ConfigError

CONFIGS = Path(__file__).parents[1] / "configs"

# a verb's command line, the function it hands its config to, an override, and where the override lands
VERBS = {
    "train": (
        ["train", f"{CONFIGS}/acc/qwen2audio7b-ac.yaml"],
        "auralign.train.sft.recipe.train",
        "optim.lr=3e-5",
        lambda cfg: cfg.optim.lr,
        3e-5,
    ),
    "dali": (
        ["dali", "align", f"{CONFIGS}/dali/align-ot.yaml", "--no-progress"],
        "auralign.train.dali.align",
        "epochs=7",
        lambda cfg: cfg.epochs,
        7,
    ),
    "data build": (
        ["data", "build", f"{CONFIGS}/data/audiocaps-acc.yaml", "--no-progress"],
        "auralign.data.build.build",
        "seed=5",
        lambda cfg: cfg.seed,
        5,
    ),
    "data merge": (
        ["data", "merge", f"{CONFIGS}/data/audiocaps-acc.yaml"],
        "auralign.data.build.merge",
        "sample_rate=8000",
        lambda cfg: cfg.sample_rate,
        8000,
    ),
    "evaluate": (
        ["evaluate", f"{CONFIGS}/acc/eval.yaml"],
        "auralign.eval.benchmark.run",
        "generation.batch_size=4",
        lambda cfg: cfg.generation.batch_size,
        4,
    ),
}


@pytest.mark.parametrize("verb", VERBS)
def test_set_reaches_the_config(monkeypatch, verb) -> None:
    argv, target, override, read, expected = VERBS[verb]
    seen = []

    def record(cfg, *args, **kwargs):
        seen.append(cfg)
        return {}  # the summary / results the verb prints

    monkeypatch.setattr(target, record)
    monkeypatch.setattr("auralign.eval.benchmark.tables", lambda cfg, results: "")
    assert main([*argv, "--set", override]) == 0
    assert main(argv) == 0
    assert read(seen[0]) == expected and read(seen[1]) != expected  # without --set: the file's value


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("no_such_key=1", "--set no_such_key: unknown key"),
        ("{key}=[1", "--set {key}: value '[1' is not YAML"),
        ("{key}.deeper=1", "--set {key}.deeper: {key} is a value"),
        ("{key}", "--set '{key}': expected KEY=VALUE"),
    ],
)
def test_a_bad_override_is_one_line_naming_the_option(capsys, verb, override, message) -> None:
    argv, _, good, *_ = VERBS[verb]
    key = good.partition("=")[0]
    assert main([*argv, "--set", override.format(key=key)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"auralign: error: {message.format(key=key)}"), err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_rejected_value_names_the_option_and_the_file_keeps_its_own_errors(tmp_path, capsys) -> None:
    config = tmp_path / "align.yaml"
    config.write_text("output_dir: o\nprefix_dir: p\ndata: {manifest: m.jsonl}\nepochs: 2\nbogus: 1\n")
    assert main(["dali", "align", str(config), "--set", "attention.lr=fast"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("auralign: error: --set attention.lr: Input should be a valid number")
    assert err[1:] == [f"{config}: invalid config", "  bogus: unknown key"]


def test_overrides_copy_sections_create_missing_ones_and_the_last_wins() -> None:
    data = {"data": {"manifest": "a.jsonl"}, "epochs": 1}
    out = apply_overrides(data, ["data.manifest=b.jsonl", "optim.lr=0.001", "epochs=2", "epochs=3", "tag="])
    assert out == {"data": {"manifest": "b.jsonl"}, "optim": {"lr": 0.001}, "epochs": 3, "tag": None}
    assert data == {"data": {"manifest": "a.jsonl"}, "epochs": 1}  # the file's mapping is left as read
    with pytest.raises(ConfigError, match=r"--set 'a\.\.b=1': expected KEY=VALUE"):
        apply_overrides(data, ["a..b=1"])


def test_without_a_file_the_overrides_apply_to_the_defaults() -> None:
    from auralign.models.base import GenerationOptions

    assert load_config(None, GenerationOptions) == GenerationOptions()
    assert load_config(None, GenerationOptions, ["num_beams=3"]) == GenerationOptions(num_beams=3)
    with pytest.raises(ConfigError, match=r"^--set beams: unknown key$"):
        load_config(None, GenerationOptions, ["beams=3"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("seed: 1\nepochs: 2\nseed: 3\n", "key 'seed' given twice (lines 1 and 3)"),
        (
            "data:\n  manifest: a.jsonl\n  manifest: b.jsonl\n",
            "key 'data.manifest' given twice (lines 2 and 3)",
        ),
        ("stages:\n  - {name: a, name: b}\n", "key 'stages[0].name' given twice (lines 2 and 2)"),
    ],
)
def test_a_key_given_twice_is_refused_naming_it_and_both_lines(tmp_path, text, message) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        read_yaml(path)
    assert str(caught.value) == f"{path}: {message}; keep one"


def test_one_key_in_different_sections_and_merge_keys_are_fine(tmp_path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text("a: {lr: 1}\nb: {lr: 2}\nbase: &base {x: 1}\nc:\n  <<: *base\n  y: 2\n")
    assert read_yaml(path) == {"a": {"lr": 1}, "b": {"lr": 2}, "base": {"x": 1}, "c": {"x": 1, "y": 2}}
