"""Audio backbones: audio -> frames of features, one interface for ACC's composed backend and for DALI.

A backbone answers three things: `dim` (feature width), `prepare(waves)` (16 kHz mono waveforms or audio file
paths -> a batch of model inputs, on CPU, no gradients: the front end) and `forward(inputs)` (-> frames
(B, N, dim)). A frozen backbone outside torch does all its work in `prepare` and passes the frames through
(YAMNet runs in onnxruntime and caches them per file); a trainable one does its torch work in `forward`
(CAV-MAE turns fbank into tokens).

The composed ACC backend projects each clip's frames into its language model; DALI's `AudioTokenizer` puts a
Linear(dim, token_dim) adapter after the backbone, so distribution alignment compares (B, N, 1024) audio tokens
with CLIP's (B, 576, 1024) image tokens and the LLaVA projector can take either. The tokenizer also picks what
a multichannel file gives (`channel`): its first channel, as the official DALI extraction, or the channels'
mean (what every backbone's own loading gives; ACC's loading is unchanged).

Backbones: YAMNet (`yamnet.py`, packaged, the offline default), CAV-MAE's audio branch (`cavmae.py`, our code,
official checkpoints), AST or Whisper encoders from transformers (`hf.py`).
"""

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from auralign.models.base import SAMPLING_RATE, Audio, load_wave

if TYPE_CHECKING:
    from auralign.models.dali.cavmae import CAVMAEConfig, LoadResult


@runtime_checkable
class AudioBackbone(Protocol):
    dim: int

    def prepare(self, waves: Sequence[Audio]) -> torch.Tensor: ...

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor: ...


def load_waves(waves: Sequence[Audio]) -> list[tuple[np.ndarray, str]]:
    """Float32 waveforms, each with a name for error messages; files are loaded mono at 16 kHz."""
    return [
        (load_wave(w), str(w) if isinstance(w, str | os.PathLike) else f"waveform {i}")
        for i, w in enumerate(waves)
    ]


Channel = Literal["first", "mean"]


def first_channel(path: str | os.PathLike) -> np.ndarray:
    """The first channel of an audio file at 16 kHz, float32."""
    from auralign.audio import load_audio

    return load_audio(path, sr=SAMPLING_RATE, channel="first")


def pick_channel(wave: Audio, channel: Channel) -> Audio:
    """A multichannel file's first channel as a waveform when `channel` is "first"; anything else unchanged
    (a mono file stays a path, so a backbone's per-file cache still applies)."""
    if channel == "mean" or not isinstance(wave, str | os.PathLike):
        return wave
    from auralign.audio import audio_info

    return first_channel(wave) if audio_info(Path(wave))[2] > 1 else wave


class AudioTokenizer(nn.Module):
    """Backbone + Linear(dim, token_dim) adapter: model inputs (from `prepare`) -> tokens (B, N, token_dim).
    A multichannel file gives its first channel (`channel="first"`, the official DALI extraction) or the mean
    of its channels ("mean")."""

    def __init__(self, backbone: nn.Module, token_dim: int = 1024, channel: Channel = "first") -> None:
        super().__init__()
        if not isinstance(backbone, AudioBackbone):
            raise TypeError(
                f"{type(backbone).__name__} lacks the AudioBackbone interface (dim, prepare, forward)"
            )
        if channel not in ("first", "mean"):
            raise ValueError(f"channel must be 'first' or 'mean', got {channel!r}")
        self.backbone = backbone
        self.adapter = nn.Linear(backbone.dim, token_dim)
        self.channel: Channel = channel

    @classmethod
    def cavmae(
        cls,
        checkpoint: str | os.PathLike | dict | None = None,
        config: "CAVMAEConfig | None" = None,
        token_dim: int = 1024,
        std_scale: float = 1.0,
    ) -> tuple["AudioTokenizer", "LoadResult | None"]:
        """CAV-MAE tokens through the adapter (`config` default: CAV-MAE base); with `checkpoint`, its audio
        branch (and DALI's `proj`, if any) loaded. The LoadResult says what the file lacked (`proj.*` for a
        plain CAV-MAE checkpoint)."""
        from auralign.models.dali.cavmae import CAVMAE_BASE, load_cavmae_checkpoint
        from auralign.models.encoders.cavmae import CAVMAEBackbone

        tokenizer = cls(CAVMAEBackbone(config or CAVMAE_BASE, std_scale), token_dim)
        if checkpoint is None:
            return tokenizer, None
        return tokenizer, load_cavmae_checkpoint(tokenizer.backbone, checkpoint, adapter=tokenizer.adapter)

    @classmethod
    def from_transformers(cls, name_or_path: str | os.PathLike, token_dim: int = 1024) -> "AudioTokenizer":
        from auralign.models.encoders.hf import HFAudioBackbone

        return cls(HFAudioBackbone.from_pretrained(name_or_path), token_dim)

    @property
    def token_dim(self) -> int:
        return self.adapter.out_features

    def prepare(self, waves: Sequence[Audio]) -> torch.Tensor:
        return self.backbone.prepare([pick_channel(w, self.channel) for w in waves])

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.adapter(self.backbone(inputs))

    def encode(self, waves: Sequence[Audio]) -> torch.Tensor:
        """Waveforms (or audio paths) -> tokens (B, N, token_dim) on the adapter's device."""
        return self(self.prepare(waves).to(self.adapter.weight.device))
