"""The vLLM engine against the transformers engine on a tiny random Qwen2-Audio and an adapter `auralign
train` made: the same prompt token ids, the same greedy tokens, the same captions (base and adapter).

Runs in .venv-vllm (`make test-vllm`: vLLM's CPU build, its own torch). The model is `tiny_qwen2audio`'s
tokenizer, processor and audio tower over a language model of head size 32, since vLLM's CPU attention
kernels take head sizes 32, 64, 80, ... ("Unsupported CPU attention configuration: head_dim=8" for the
default tiny model's), written by `export_checkpoint` in the released layout (transformers 5.19, the newest
vLLM 0.32 allows, saves Qwen2-Audio weights as `language_model.model.model.*`, which vLLM cannot load).
"""

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from safetensors.torch import load_file, save_file

from _models_fixtures import SR, tone, write_corpus
from auralign.audio import AudioError
from auralign.cli import main
from auralign.data.manifest import make_sample, write_manifest
from auralign.errors import ConfigError
from auralign.infer import vllm_engine
from auralign.infer.caption import caption, collect
from auralign.infer.vllm_engine import (
    RELEASE_PREFIXES,
    VllmQwen2Audio,
    export_checkpoint,
    merged_checkpoint,
    sampling_params,
)
from auralign.models.acc.qwen2audio import Qwen2AudioLLM
from auralign.models.base import Chat, GenerationOptions
from auralign.models.factory import ModelConfig, build_with_adapter
from auralign.models.testing import tiny_qwen2audio

GREEDY = GenerationOptions(max_new_tokens=12, batch_size=3)
#: a small KV cache: the machine is shared (tokens: 2 MiB holds thousands of this model's)
ENGINE = {"dtype": "float32", "enforce_eager": True, "kv_cache_memory_bytes": 1 << 26}


def tiny_for_vllm() -> tuple[torch.nn.Module, Any]:
    """A random Qwen2-Audio like `tiny_qwen2audio`'s with a language model of 2 heads of 32 (seed 0)."""
    from transformers import Qwen2AudioConfig, Qwen2AudioForConditionalGeneration

    small = tiny_qwen2audio()
    text = small.hf.config.text_config.to_dict()
    text.pop("head_dim", None)
    text.update(hidden_size=64, intermediate_size=128, num_attention_heads=2, num_key_value_heads=1)
    config = Qwen2AudioConfig(
        audio_config=small.hf.config.audio_config.to_dict(),
        text_config=text,
        audio_token_index=small.hf.config.audio_token_index,
    )
    torch.manual_seed(0)
    model = Qwen2AudioForConditionalGeneration(config).eval()
    model.generation_config = small.hf.generation_config
    return model, small.processor


def write_clips(folder: Path) -> Path:
    """Three clips to caption and a pair to compare, none of them seen in training."""
    (folder / "audio").mkdir(parents=True)
    names = []
    for i, (freq, seconds) in enumerate([(300, 1.0), (660, 1.5), (1200, 0.7)]):
        name = f"audio/t{i}.wav"
        sf.write(folder / name, tone(seconds, freq, seed=10 + i), SR)
        names.append(name)
    describe, compare = (
        "describe the audio in one sentence.",
        "tell me the difference between the two audios.",
    )
    samples = [make_sample(f"t{i}", "ac", describe, [n]) for i, n in enumerate(names)]
    samples.append(make_sample("pair", "acc", compare, names[:2]))
    write_manifest(folder / "test.jsonl", samples)
    return folder / "test.jsonl"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("vllm")
    model, processor = tiny_for_vllm()
    base = export_checkpoint(model, processor, root / "base")
    ac, acc = write_corpus(root / "ac", n=4), write_corpus(root / "acc", n=3, pairs=True, task="acc")
    config = {
        "output_dir": str(root / "run"),
        "model": {"backend": "qwen2audio", "path": str(base)},
        "lora": {"train_projector": True},
        "stages": [{"name": "sft", "data": [{"manifest": str(ac)}, {"manifest": str(acc)}], "epochs": 6}],
        "batch_size": 2,
        "grad_accum": 1,
        "optim": {"lr": 1e-2},
        "tensorboard": False,
    }
    (root / "train.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", str(root / "train.yaml")]) == 0
    items = list(collect([write_clips(root / "test")], None))
    return {"root": root, "model": model, "base": base, "adapter": root / "run" / "adapter", "items": items}


@pytest.fixture(scope="module")
def engines(world) -> dict:
    cache = world["root"] / "merged"
    vllm = {
        "base": VllmQwen2Audio(str(world["base"]), **ENGINE),
        "lora": VllmQwen2Audio(str(world["base"]), world["adapter"], cache=cache, **ENGINE),
    }
    cfg = ModelConfig(backend="qwen2audio", path=str(world["base"]), dtype="float32")
    hf = {"base": build_with_adapter(cfg), "lora": build_with_adapter(cfg, world["adapter"])}
    return {"vllm": vllm, "transformers": hf}


def transformers_ids(llm: Qwen2AudioLLM, chats: list[Chat], options: GenerationOptions) -> list[list[int]]:
    """The transformers engine's generated ids, each up to and including its end-of-turn token."""
    batch = llm.collate(chats, train=False)
    out = llm.hf.generate(**batch, **options.kwargs(), pad_token_id=llm.pad_id)
    eos = llm.hf.generation_config.eos_token_id
    stops = set(eos) if isinstance(eos, list) else {eos}
    rows = []
    for row in out[:, batch["input_ids"].shape[1] :].tolist():
        end = next((i + 1 for i, t in enumerate(row) if t in stops), len(row))
        rows.append(row[:end])
    return rows


def test_the_export_is_in_the_released_layout_and_loads_back_whole(world) -> None:
    names = set(load_file(world["base"] / "model.safetensors"))
    assert all(n.startswith(RELEASE_PREFIXES) for n in names)
    assert {"language_model.lm_head.weight", "language_model.model.embed_tokens.weight"} <= names
    assert "language_model.model.layers.1.self_attn.q_proj.weight" in names
    assert json.loads((world["base"] / "config.json").read_text())["architectures"] == [
        "Qwen2AudioForConditionalGeneration"
    ]
    loaded = Qwen2AudioLLM.from_pretrained(world["base"]).hf.state_dict()
    built = world["model"].state_dict()
    assert loaded.keys() == built.keys() and all(torch.equal(loaded[k], built[k]) for k in built)


def test_a_merged_checkpoint_is_the_base_plus_the_scaled_lora_and_the_trained_projector(world) -> None:
    merged_dir = merged_checkpoint(str(world["base"]), world["adapter"], world["root"] / "merge-check")
    base, merged = load_file(world["base"] / "model.safetensors"), load_file(merged_dir / "model.safetensors")
    lora = load_file(world["adapter"] / "adapter_model.safetensors")
    settings = json.loads((world["adapter"] / "adapter_config.json").read_text())
    scale = settings["lora_alpha"] / settings["r"]
    checked = 0
    for layer in (0, 1):
        for proj in ("self_attn.q_proj", "mlp.down_proj"):
            a = next(v for k, v in lora.items() if f"layers.{layer}.{proj}.lora_A" in k)
            b = next(v for k, v in lora.items() if f"layers.{layer}.{proj}.lora_B" in k)
            name = f"language_model.model.layers.{layer}.{proj}.weight"
            assert (b != 0).any()  # trained: the merge has something to add
            torch.testing.assert_close(merged[name], base[name] + scale * b @ a, rtol=0, atol=1e-6)
            checked += 1
    projector = next(
        v for k, v in lora.items() if "multi_modal_projector" in k and k.endswith("linear.weight")
    )
    assert not torch.equal(projector, base["multi_modal_projector.linear.weight"])
    assert torch.equal(merged["multi_modal_projector.linear.weight"], projector)
    assert all(torch.equal(merged[k], base[k]) for k in base if k.startswith("audio_tower."))
    assert checked == 4 and merged.keys() == base.keys()


def test_a_merge_is_written_once_per_base_and_adapter(world, tmp_path) -> None:
    cache = tmp_path / "cache"
    first = merged_checkpoint(str(world["base"]), world["adapter"], cache)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert merged_checkpoint(str(world["base"]), world["adapter"], cache) == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp
    other = shutil.copytree(world["adapter"], tmp_path / "other")
    state = load_file(other / "adapter_model.safetensors")
    save_file({k: v * 2 for k, v in state.items()}, other / "adapter_model.safetensors")
    assert merged_checkpoint(str(world["base"]), other, cache) != first
    with pytest.raises(ConfigError, match=r"no adapter_config\.json"):
        merged_checkpoint(str(world["base"]), tmp_path, cache)


@pytest.mark.parametrize("which", ["base", "lora"])
def test_vllm_builds_the_prompt_token_ids_of_the_transformers_engine(world, engines, which) -> None:
    from vllm import SamplingParams

    vllm, hf = engines["vllm"][which], engines["transformers"][which]
    chats = [item.chat for item in world["items"]]
    outputs = vllm.llm.generate(vllm.requests(chats), SamplingParams(max_tokens=1), use_tqdm=False)
    batch = hf.collate(chats, train=False)
    expected = [
        ids[mask.bool()].tolist()
        for ids, mask in zip(batch["input_ids"], batch["attention_mask"], strict=True)
    ]
    assert [list(o.prompt_token_ids) for o in outputs] == expected
    audio_id = hf.tokenizer.convert_tokens_to_ids("<|AUDIO|>")
    # 100 mel frames a second through two stride-2 stages: 1 s -> 25, 1.5 s -> 37, 0.7 s -> 17, the pair 25 + 37
    assert [ids.count(audio_id) for ids in expected] == [25, 37, 17, 62]


@pytest.mark.parametrize("which", ["base", "lora"])
def test_vllm_decodes_the_greedy_tokens_of_the_transformers_engine(world, engines, which) -> None:
    chats = [item.chat for item in world["items"]]
    got = engines["vllm"][which].generate_ids(chats, GREEDY)
    expected = transformers_ids(engines["transformers"][which], chats, GREEDY)
    assert got == expected
    assert sum(len(ids) for ids in got) > 2 * len(chats)  # not a run of immediate end-of-turn tokens


@pytest.mark.parametrize("which", ["base", "lora"])
def test_both_engines_give_the_greedy_tokens_the_same_log_probabilities(world, engines, which) -> None:
    from vllm import SamplingParams

    vllm, hf = engines["vllm"][which], engines["transformers"][which]
    chats = [item.chat for item in world["items"]]
    params = SamplingParams(max_tokens=GREEDY.max_new_tokens, temperature=0.0, logprobs=0)
    outputs = vllm.llm.generate(vllm.requests(chats), params, use_tqdm=False)
    batch = hf.collate(chats, train=False)
    out = hf.hf.generate(
        **batch, **GREEDY.kwargs(), pad_token_id=hf.pad_id, output_logits=True, return_dict_in_generate=True
    )
    logprobs = torch.stack(out.logits, 1).log_softmax(-1)  # (chat, step, vocab), the model's own logits
    for row, output in enumerate(outputs):
        ids = output.outputs[0].token_ids
        got = [step[token].logprob for step, token in zip(output.outputs[0].logprobs, ids, strict=True)]
        expected = [logprobs[row, i, token].item() for i, token in enumerate(ids)]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


def test_the_adapter_changes_what_both_engines_say(world, engines) -> None:
    chats = [item.chat for item in world["items"]]
    vllm = engines["vllm"]
    assert vllm["base"].generate_ids(chats, GREEDY) != vllm["lora"].generate_ids(chats, GREEDY)


@pytest.mark.parametrize("which", ["base", "lora"])
def test_caption_writes_the_same_predictions_with_either_engine(world, engines, which, tmp_path) -> None:
    files = {}
    for engine in ("vllm", "transformers"):
        out = caption(engines[engine][which], world["items"], tmp_path / f"{engine}.jsonl", options=GREEDY)
        files[engine] = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in files["vllm"]] == ["t0", "t1", "t2", "pair"]
    assert [r["prediction"] for r in files["vllm"]] == [r["prediction"] for r in files["transformers"]]
    assert all(r["prediction"] for r in files["vllm"])


def test_the_caption_verb_serves_an_adapter_with_vllm(world, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AURALIGN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(vllm_engine, "CPU_KV_CACHE_BYTES", 1 << 26)
    out = tmp_path / "pred.jsonl"
    manifest = world["root"] / "test" / "test.jsonl"
    args = ["caption", str(manifest), "-o", str(out), "--engine", "vllm", "--backend", "qwen2audio"]
    assert main([*args, "--model", str(world["base"]), "--adapter", str(world["adapter"])]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["t0", "t1", "t2", "pair"] and all(r["prediction"] for r in rows)
    assert len(list((tmp_path / "cache" / "vllm-merged").iterdir())) == 1


def test_a_clip_over_the_window_is_refused_naming_it(world, engines, tmp_path) -> None:
    long = tmp_path / "long.wav"
    sf.write(long, np.zeros(31 * SR, dtype=np.float32), SR)
    chat = Chat([{"role": "user", "content": "<audio>describe the audio in one sentence."}], [str(long)], "x")
    with pytest.raises(AudioError, match=r"long\.wav: 31\.0 s long"):
        engines["vllm"]["base"].requests([chat])


def test_split_windows_are_refused_before_an_engine_is_built(world) -> None:
    with pytest.raises(ConfigError, match="--long-audio split is not supported"):
        VllmQwen2Audio(str(world["base"]), long_audio="split")


def test_decoding_options_map_onto_vllms_sampling_params() -> None:
    from vllm import SamplingParams

    greedy = sampling_params(GenerationOptions(max_new_tokens=7), SamplingParams(repetition_penalty=1.1))
    assert (greedy.temperature, greedy.top_p, greedy.top_k, greedy.max_tokens) == (0.0, 1.0, 0, 7)
    assert greedy.repetition_penalty == 1.1  # the model's generation config applies in both engines
    sample = GenerationOptions(do_sample=True, temperature=0.7, top_p=0.9, seed=3)
    drawn = sampling_params(sample, SamplingParams())
    assert (drawn.temperature, drawn.top_p, drawn.top_k, drawn.seed) == (0.7, 0.9, 50, 3)
    assert sampling_params(sample, SamplingParams(top_k=20)).top_k == 20
    off = sample.model_copy(update={"top_k": 0})
    assert sampling_params(off, SamplingParams(top_k=20)).top_k == 0
    with pytest.raises(ConfigError, match="beam search"):
        sampling_params(GenerationOptions(num_beams=2), SamplingParams())
