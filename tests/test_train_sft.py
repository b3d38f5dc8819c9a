"""The LoRA SFT recipe on a tiny Qwen2-Audio: stages, mixes, checkpoints, kill -9 and bit-exact resume."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from _models_fixtures import save_tiny_qwen, write_corpus
from auralign.cli import main
from auralign.config import load_config
from auralign.errors import ConfigError
from auralign.train.sft.config import TrainConfig
from auralign.train.sft.data import mix_indices
from auralign.train.sft.recipe import train


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("corpus")
    return {
        "model": save_tiny_qwen(root / "tiny"),
        "ac": write_corpus(root / "ac", n=4, task="ac"),
        "acc": write_corpus(root / "acc", n=3, pairs=True, task="acc"),
    }


def config(corpus: dict[str, Path], out: Path, **overrides) -> dict:
    cfg = {
        "output_dir": str(out),
        "model": {"backend": "qwen2audio", "path": str(corpus["model"])},
        "stages": [
            {"name": "ac", "data": [{"manifest": str(corpus["ac"])}], "epochs": 1},
            {
                "name": "acc",
                "data": [{"manifest": str(corpus["acc"])}, {"manifest": str(corpus["ac"]), "weight": 0.5}],
                "epochs": 2,
            },
        ],
        "batch_size": 2,
        "grad_accum": 2,
        "save_every": 1,
        "keep_checkpoints": 10,
        "optim": {"lr": 1e-2},
        "tensorboard": False,
    }
    cfg.update(overrides)
    return cfg


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_two_stages_with_a_mix_write_standard_adapters(corpus, tmp_path) -> None:
    out = tmp_path / "run"
    assert main(["train", str(write_config(tmp_path / "c.yaml", config(corpus, out, tensorboard=True)))]) == 0
    for adapter in (out / "adapter", out / "stages" / "ac" / "adapter", out / "stages" / "acc" / "adapter"):
        assert (adapter / "adapter_config.json").exists() and (adapter / "adapter_model.safetensors").exists()
    saved = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert saved["r"] == 8 and saved["lora_alpha"] == 32 and saved["lora_dropout"] == 0.05
    # stage ac: 4 samples / (2 x 2) = 1 step; stage acc: 2 x (3 + 2) samples = 10 -> 5 micro-batches -> 3 steps
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert names == ["ckpt-00-0000001", "ckpt-01-0000001", "ckpt-01-0000002", "ckpt-01-0000003"]
    assert any((out / "tensorboard").iterdir())
    ac, final = (
        load_file(out / "stages/ac/adapter/adapter_model.safetensors"),
        load_file(out / "adapter/adapter_model.safetensors"),
    )
    assert any(not (ac[k] == final[k]).all() for k in ac)  # the second stage kept training the same adapter
    mtime = (out / "adapter" / "adapter_model.safetensors").stat().st_mtime_ns
    assert main(["train", str(tmp_path / "c.yaml")]) == 0  # finished: a no-op
    assert (out / "adapter" / "adapter_model.safetensors").stat().st_mtime_ns == mtime


KILLER = """
import os, signal, sys
import torch
import yaml
import auralign.train.sft.recipe as sft
from auralign.config import validate
from auralign.train.sft.config import TrainConfig

saved = sft.save_checkpoint
count = 0

def save_then_die(*args, **kwargs):
    global count
    folder = saved(*args, **kwargs)
    count += 1
    if count == int(sys.argv[2]):
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no atexit: like a crash or an OOM kill
    return folder

sft.save_checkpoint = save_then_die
torch.set_num_threads(1)  # as the test process (see _models_fixtures)
sft.train(validate(yaml.safe_load(open(sys.argv[1])), TrainConfig))
"""


def test_resume_after_kill_9_is_bit_exact(corpus, tmp_path) -> None:
    straight = tmp_path / "straight"
    train(TrainConfig.model_validate(config(corpus, straight)))

    killed = tmp_path / "killed"
    cfg_path = write_config(tmp_path / "k.yaml", config(corpus, killed))
    script = tmp_path / "killer.py"
    script.write_text(textwrap.dedent(KILLER))
    proc = subprocess.run([sys.executable, str(script), str(cfg_path), "3"], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert not (killed / "adapter").exists()
    assert sorted(p.name for p in (killed / "checkpoints").iterdir())[-1] == "ckpt-01-0000002"
    # a kill between a log write and its checkpoint leaves a line past the checkpoint, maybe torn
    with (killed / "log.jsonl").open("a") as log:
        log.write(
            json.dumps({"step": 4, "stage": "acc", "stage_index": 1, "stage_step": 3, "loss": 9.9}) + "\n"
        )
        log.write('{"step": 5, "sta')

    train(TrainConfig.model_validate(config(corpus, killed)))
    logs = [
        [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
        for run in (straight, killed)
    ]
    keys = ("step", "stage", "stage_step", "loss", "lr")
    assert [[row[k] for k in keys] for row in logs[0]] == [[row[k] for k in keys] for row in logs[1]]
    assert [row["step"] for row in logs[0]] == [1, 2, 3, 4]  # runs on across the two stages
    a = load_file(straight / "adapter" / "adapter_model.safetensors")
    b = load_file(killed / "adapter" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    final_a = load_file(straight / "checkpoints" / "ckpt-01-0000003" / "trainable.safetensors")
    final_b = load_file(killed / "checkpoints" / "ckpt-01-0000003" / "trainable.safetensors")
    assert all(np.array_equal(final_a[k].numpy(), final_b[k].numpy()) for k in final_a)


def test_init_adapter_continues_from_a_trained_adapter(corpus, tmp_path) -> None:
    from auralign.models.factory import ModelConfig, build_model
    from auralign.models.lora import LoraSettings, apply_lora
    from auralign.train.sft.recipe import start_from_adapter

    base = tmp_path / "base"
    cfg = config(corpus, base)
    cfg["stages"] = cfg["stages"][:1]
    adapter = train(TrainConfig.model_validate(cfg))
    saved = load_file(adapter / "adapter_model.safetensors")

    llm = build_model(ModelConfig(backend="qwen2audio", path=str(corpus["model"])))
    peft = apply_lora(llm, LoraSettings())
    start_from_adapter(llm, adapter, LoraSettings(), "test")
    loaded = {k: v for k, v in peft.state_dict().items() if "lora_" in k}
    assert len(loaded) == len(saved)
    for key, value in saved.items():  # PEFT saves without the adapter name: "...lora_A.weight"
        match = [v for k, v in loaded.items() if k.replace(".default", "") == key]
        assert len(match) == 1 and torch.equal(match[0], value), key
    with pytest.raises(ConfigError, match="r=8, alpha=32; the config's lora has r=4"):
        start_from_adapter(llm, adapter, LoraSettings(r=4), "test")
    with pytest.raises(ConfigError, match=r"no adapter_config\.json"):
        start_from_adapter(llm, tmp_path, LoraSettings(), "test")

    follow = config(corpus, tmp_path / "follow", init_adapter=str(adapter))
    follow["stages"] = follow["stages"][1:]
    assert (train(TrainConfig.model_validate(follow)) / "adapter_model.safetensors").exists()


def test_mix_weights_subsample_and_repeat() -> None:
    rng = np.random.default_rng(0)
    assert sorted(mix_indices(4, 1.0, rng)) == [0, 1, 2, 3]
    half = mix_indices(4, 0.5, rng)
    assert len(half) == 2 and len(set(half)) == 2
    assert sorted(mix_indices(2, 2.5, rng).tolist()).count(0) in (2, 3) and len(mix_indices(2, 2.5, rng)) == 5


def test_bad_config_names_the_key(corpus, tmp_path) -> None:
    cfg = config(corpus, tmp_path / "x")
    cfg["lora"] = {"rank": 8}
    with pytest.raises(ConfigError, match=r"lora\.rank: unknown key"):
        load_config(write_config(tmp_path / "bad.yaml", cfg), TrainConfig)
    cfg = config(corpus, tmp_path / "x")
    cfg["stages"][0]["data"][0]["manifest"] = str(tmp_path / "missing.jsonl")
    with pytest.raises(ConfigError, match=r"stages\.0\.data\.0\.manifest"):
        train(TrainConfig.model_validate(cfg))


def test_resume_refuses_a_different_config(corpus, tmp_path) -> None:
    out = tmp_path / "run"
    cfg = config(corpus, out)
    cfg["stages"] = cfg["stages"][:1]
    train(TrainConfig.model_validate(cfg))
    (out / "done.json").unlink()
    cfg["optim"] = {"lr": 5e-3}
    with pytest.raises(ConfigError, match="different config"):
        train(TrainConfig.model_validate(cfg))


# ---- the defaults are ms-swift 3.x's -----------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]
MS_SWIFT_ARGS = (  # each optimiser / schedule default of configs/acc, by its ms-swift argument
    "--learning_rate",
    "--weight_decay",
    "--adam_beta1",
    "--adam_beta2",
    "--adam_epsilon",
    "--warmup_ratio",
    "--lr_scheduler_type",
    "--max_grad_norm",
    "--num_train_epochs",
    "--per_device_train_batch_size",
    "--gradient_accumulation_steps",
    "--lora_rank",
)


def test_optimizer_and_schedule_are_what_ms_swift_builds_through_transformers(tmp_path) -> None:
    """ms-swift 3.x trains through transformers' Trainer with its own defaults on top (weight_decay 0.1,
    adam_beta2 0.95, cosine; warm-up left at 0): the same AdamW settings and, step by step, the same learning
    rate as get_cosine_schedule_with_warmup at warm-up 0."""
    from transformers import Trainer, TrainingArguments
    from transformers.optimization import get_cosine_schedule_with_warmup, get_scheduler

    from auralign.train.sft.recipe import make_optimizer

    cfg = TrainConfig.model_validate(
        {"output_dir": str(tmp_path), "stages": [{"name": "s", "data": [{"manifest": "m"}]}]}
    )
    assert (cfg.optim.betas, cfg.optim.warmup_ratio, cfg.optim.weight_decay) == ((0.9, 0.95), 0.0, 0.1)
    args = TrainingArguments(
        output_dir=str(tmp_path / "hf"),
        learning_rate=1e-4,  # ms-swift: 1e-4 for LoRA
        weight_decay=0.1,
        adam_beta2=0.95,
        lr_scheduler_type="cosine",
        use_cpu=True,
        report_to=[],
    )
    _cls, hf_kwargs = Trainer.get_optimizer_cls_and_kwargs(args)
    total = 37
    ours, our_schedule = make_optimizer(torch.nn.Linear(3, 2), cfg, total)
    group = ours.param_groups[0]
    assert (group["lr"], group["betas"], group["eps"]) == (
        hf_kwargs["lr"],
        hf_kwargs["betas"],
        hf_kwargs["eps"],
    )
    assert group["weight_decay"] == args.weight_decay and cfg.optim.max_grad_norm == args.max_grad_norm
    assert args.get_warmup_steps(total) == 0

    schedules = []
    for make in (
        lambda opt: get_scheduler(args.lr_scheduler_type, opt, num_warmup_steps=0, num_training_steps=total),
        lambda opt: get_cosine_schedule_with_warmup(opt, num_warmup_steps=0, num_training_steps=total),
    ):
        opt = torch.optim.AdamW(torch.nn.Linear(3, 2).parameters(), **hf_kwargs)
        schedules.append((opt, make(opt)))
    lrs = {name: [] for name in ("ours", "trainer", "cosine")}
    for _ in range(total):
        for name, (opt, schedule) in zip(lrs, [(ours, our_schedule), *schedules], strict=True):
            lrs[name].append(opt.param_groups[0]["lr"])  # the lr this optimizer step uses
            opt.step()
            schedule.step()
    assert lrs["ours"][0] == 1e-4 and lrs["ours"][-1] < 1e-6  # no warm-up: full lr first, cosine to ~0
    np.testing.assert_allclose(lrs["ours"], lrs["trainer"], rtol=1e-12, atol=0)
    np.testing.assert_allclose(lrs["ours"], lrs["cosine"], rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    "path", sorted((REPO / "configs" / "acc").glob("qwen2audio7b-*.yaml")), ids=lambda p: p.name
)
def test_shipped_acc_configs_hold_the_ms_swift_defaults_and_name_their_sources(path: Path) -> None:
    cfg = load_config(path, TrainConfig)
    defaults = TrainConfig.model_validate(
        {"output_dir": "o", "stages": [{"name": "s", "data": [{"manifest": "m"}]}]}
    )
    assert cfg.optim == defaults.optim
    assert (cfg.batch_size, cfg.grad_accum) == (defaults.batch_size, defaults.grad_accum) == (1, 16)
    assert {s.epochs for s in cfg.stages} == {3.0}
    assert (cfg.lora.r, cfg.lora.alpha, cfg.lora.dropout, cfg.lora.train_projector) == (8, 32, 0.05, False)
    text = path.read_text()
    assert [arg for arg in MS_SWIFT_ARGS if arg not in text] == []


MS_SWIFT_4_REGEX = r"^model\.language_model\..*\.(q|k|v|o|gate|up|down)_proj$"


def test_the_ms_swift_4_target_regex_selects_what_auralign_wraps_and_all_linear_finds_nothing() -> None:
    """docs/acc.md: under transformers 5, ms-swift 4.x's `all-linear` looks the language model up at the
    path it registers for qwen2_audio (`language_model`), which the model no longer has; the regex the docs
    give selects exactly the layers auralign's LoRA wraps (PEFT matches a string with re.fullmatch)."""
    import re

    from peft import LoraConfig, get_peft_model

    from auralign.models.lora import LoraSettings, apply_lora
    from auralign.models.testing import tiny_qwen2audio

    assert MS_SWIFT_4_REGEX in (REPO / "docs" / "acc.md").read_text()
    hf = tiny_qwen2audio().hf
    names = [name for name, _ in hf.named_modules()]
    chosen = {name for name in names if re.fullmatch(MS_SWIFT_4_REGEX, name)}
    llm = tiny_qwen2audio()
    apply_lora(llm, LoraSettings())
    prefix = "base_model.model."
    wrapped = {n.removeprefix(prefix) for n, m in llm.peft.named_modules() if hasattr(m, "lora_A")}
    assert chosen == wrapped and len(chosen) == 7 * hf.config.text_config.num_hidden_layers
    assert not any(".audio_tower." in name for name in chosen)
    if getattr(hf, "language_model", None) is None:  # transformers 5: the parts live under `model.`
        assert hf.model.language_model is not None and hf.model.audio_tower is not None
        # what ms-swift's get_multimodal_target_regex builds when none of the parts is found
        with pytest.raises(ValueError, match="not found in the base model"):
            get_peft_model(tiny_qwen2audio().hf, LoraConfig(target_modules=r"^()$"))
