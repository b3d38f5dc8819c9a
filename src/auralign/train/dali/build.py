"""Building DALI's model from a config's `model:` section: the frozen LLaVA, the audio tokenizer, the captioner
around them, and the device and precision they run at.

Model sources beyond checkpoints are registries: `model.llava.loader: NAME` calls `LLAVA_LOADERS[NAME]`, and
`model.audio.loader: NAME` calls `AUDIO_LOADERS[NAME]`, with the section's `loader_args`; a name that is not
registered may be "package.module:function". Registering a loader is one `register_*_loader` call.
"""

import importlib
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import torch
from torch import nn

from auralign.errors import ConfigError
from auralign.models.dali.captioner import DALICaptioner
from auralign.models.dali.cavmae import CAVMAEConfig
from auralign.models.dali.llava import FrozenLlava
from auralign.models.encoders.base import AudioTokenizer
from auralign.train.dali.config import AudioSource, DALIModel, LlavaSource, Precision

log = logging.getLogger(__name__)

LLAVA_LOADERS: dict[str, str | Callable[..., FrozenLlava]] = {
    "tiny": "auralign.models.testing:tiny_llava",
}
AUDIO_LOADERS: dict[str, str | Callable[..., nn.Module]] = {}


def register_llava_loader(name: str, loader: str | Callable[..., FrozenLlava]) -> None:
    """Make `model.llava.loader: NAME` call `loader(**loader_args)`, which returns a FrozenLlava."""
    LLAVA_LOADERS[name] = loader


def register_audio_loader(name: str, loader: str | Callable[..., nn.Module]) -> None:
    """Make `model.audio.loader: NAME` call `loader(**loader_args)`: an AudioBackbone or an AudioTokenizer."""
    AUDIO_LOADERS[name] = loader


def _resolve(name: str, registry: dict[str, Any], key: str) -> Callable[..., Any]:
    target = registry.get(name, name)
    if callable(target):
        return target
    module, sep, attr = target.partition(":")
    if not sep:
        module, _, attr = target.rpartition(".")
    if not module:
        known = ", ".join(sorted(registry)) or "none"
        raise ConfigError(
            f"{key}: {name!r} is neither a registered loader ({known}) nor 'package.module:function'"
        )
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{key}: cannot import {target!r} ({exc})") from exc


def resolve_device(name: str) -> torch.device:
    """`auto`: cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast(precision: Precision, device: torch.device) -> AbstractContextManager:
    """bf16 autocast for `bf16`, and for `auto` on GPU; fp32 otherwise."""
    bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


def build_llava(source: LlavaSource, device: torch.device) -> FrozenLlava:
    if source.loader:
        llava = _resolve(source.loader, LLAVA_LOADERS, "model.llava.loader")(**source.loader_args)
        if not isinstance(llava, FrozenLlava):
            raise ConfigError(
                f"model.llava.loader: {source.loader!r} returned {type(llava).__name__}, not a FrozenLlava"
            )
        return llava.to(device)
    from auralign.models.factory import resolve_dtype

    return FrozenLlava.from_pretrained(source.path, dtype=resolve_dtype(source.dtype, device), device=device)


def build_audio(source: AudioSource, token_dim: int) -> AudioTokenizer:
    """The audio tokenizer (fp32: it trains) with tokens of CLIP's width `token_dim`, reading a multichannel
    file's channels as `source.channel` says."""
    tokenizer = _audio_tokenizer(source, token_dim)
    tokenizer.channel = source.channel
    return tokenizer


def _audio_tokenizer(source: AudioSource, token_dim: int) -> AudioTokenizer:
    if source.kind == "cavmae":
        sizes = CAVMAEConfig(**source.sizes.model_dump())
        tokenizer, loaded = AudioTokenizer.cavmae(source.checkpoint, sizes, token_dim, source.std_scale)
        if loaded is not None:
            log.info("%s: %s", source.checkpoint, loaded)
        else:
            log.warning(
                "model.audio.checkpoint is not set: the CAV-MAE audio branch starts from random weights"
            )
        return tokenizer
    if source.kind == "transformers":
        return AudioTokenizer.from_transformers(source.path, token_dim)
    made = _resolve(source.loader, AUDIO_LOADERS, "model.audio.loader")(**source.loader_args)
    if isinstance(made, AudioTokenizer):
        if made.token_dim != token_dim:
            raise ConfigError(
                f"model.audio.loader: tokens are {made.token_dim} wide, LLaVA takes {token_dim}"
            )
        return made
    try:
        return AudioTokenizer(made, token_dim)
    except TypeError as exc:
        raise ConfigError(f"model.audio.loader: {exc}") from exc


def build_captioner(
    model: DALIModel, device: torch.device, *, with_audio: bool = True, seed: int = 0
) -> DALICaptioner:
    """Frozen LLaVA (+ audio tokenizer) + a fresh prefix, on `device`; trained parts come from `load_parts`."""
    llava = build_llava(model.llava, device)
    audio = build_audio(model.audio, llava.token_dim) if with_audio else None
    captioner = DALICaptioner(
        llava, audio, model.prefix_length, model.prefix_position, model.prompt, seed=seed
    )
    return captioner.to(device)
