"""Audio token encoders for DALI: a backbone with its own front end, plus a linear adapter into CLIP's token space.

Every backbone answers the same three things: `dim` (token width), `prepare(waves)` (16 kHz mono waveforms ->
a batch of model inputs, on CPU) and `forward(inputs)` (-> tokens (B, N, dim)). `AudioTokenizer` puts the
Linear(dim, 1024) adapter after it, so distribution alignment compares (B, N, 1024) audio tokens with CLIP's
(B, 576, 1024) image tokens and the LLaVA projector can take either.

Backbones: CAV-MAE's audio branch (our code, official checkpoints) and any transformers AST or Whisper encoder.
"""

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from auralign.audio.fbank import cavmae_fbank
from auralign.models.dali.cavmae import (
    CAVMAE_BASE,
    CAVMAEAudio,
    CAVMAEConfig,
    LoadResult,
    load_cavmae_checkpoint,
)

SAMPLING_RATE = 16000
Wave = np.ndarray | torch.Tensor | str | os.PathLike


@runtime_checkable
class AudioBackbone(Protocol):
    dim: int

    def prepare(self, waves: Sequence[Wave]) -> torch.Tensor: ...

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor: ...


def load_waves(waves: Sequence[Wave]) -> list[tuple[np.ndarray, str]]:
    """Waveforms as float32 arrays, each with a name for error messages; paths load mono at 16 kHz."""
    from auralign.audio import load_audio

    out = []
    for i, w in enumerate(waves):
        if isinstance(w, str | os.PathLike):
            out.append((load_audio(Path(w), sr=SAMPLING_RATE), str(w)))
        else:
            out.append((np.asarray(torch.as_tensor(w, dtype=torch.float32)), f"waveform {i}"))
    return out


class CAVMAEBackbone(CAVMAEAudio):
    """CAV-MAE's audio branch with its Kaldi fbank front end: waves -> (B, 1024, 128) -> (B, 512, 768)."""

    def __init__(self, config: CAVMAEConfig = CAVMAE_BASE, std_scale: float = 1.0) -> None:
        super().__init__(config)
        self.std_scale = std_scale  # 1 as CAV-MAE and DALI normalise; 2 for AST's convention

    def prepare(self, waves: Sequence[Wave]) -> torch.Tensor:
        from auralign.audio import AudioError

        feats = []
        for wave, name in load_waves(waves):
            try:
                feats.append(
                    cavmae_fbank(
                        wave,
                        frames=self.config.frames,
                        num_mel_bins=self.config.freq_bins,
                        std_scale=self.std_scale,
                    )
                )
            except ValueError as e:
                raise AudioError(f"{name}: {e}") from e
        return torch.stack(feats)


class HFAudioBackbone(nn.Module):
    """A transformers audio encoder and its feature extractor: AST (patch tokens, CLS and distillation tokens
    dropped) or Whisper's encoder (1500 frames for its 30 s window)."""

    def __init__(self, encoder: nn.Module, feature_extractor: Any, skip_tokens: int = 0) -> None:
        super().__init__()
        self.encoder = encoder
        self.feature_extractor = feature_extractor
        self.skip_tokens = skip_tokens
        self.dim = int(
            encoder.config.d_model if hasattr(encoder.config, "d_model") else encoder.config.hidden_size
        )

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | os.PathLike, dtype: torch.dtype = torch.float32
    ) -> "HFAudioBackbone":
        from transformers import AutoConfig, AutoFeatureExtractor

        from auralign.errors import ConfigError

        try:
            config = AutoConfig.from_pretrained(name_or_path)
        except (OSError, ValueError) as e:
            raise ConfigError(f"{name_or_path}: not a transformers model folder or hub id ({e})") from e
        kinds = {"audio-spectrogram-transformer": "ASTModel", "whisper": "WhisperModel"}
        if config.model_type not in kinds:
            raise ConfigError(
                f"{name_or_path}: model type {config.model_type!r} is not a supported audio backbone "
                f"({' or '.join(kinds)})"
            )
        try:
            extractor = AutoFeatureExtractor.from_pretrained(name_or_path)
        except OSError as e:
            raise ConfigError(
                f"{name_or_path}: no feature extractor (preprocessor_config.json) beside the model"
            ) from e
        import transformers

        model = getattr(transformers, kinds[config.model_type]).from_pretrained(name_or_path, dtype=dtype)
        if config.model_type == "whisper":
            return cls(model.get_encoder(), extractor)  # the decoder is dropped with the full model
        # AST puts CLS and distillation tokens first; ASTForAudioClassification checkpoints load here too
        return cls(model, extractor, skip_tokens=2)

    def prepare(self, waves: Sequence[Wave]) -> torch.Tensor:
        arrays = [w for w, _ in load_waves(waves)]
        out = self.feature_extractor(arrays, sampling_rate=SAMPLING_RATE, return_tensors="pt")
        return out["input_values"] if "input_values" in out else out["input_features"]

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        inputs = inputs.to(next(self.encoder.parameters()).dtype)
        return self.encoder(inputs).last_hidden_state[:, self.skip_tokens :]


class AudioTokenizer(nn.Module):
    """Backbone + Linear(dim, token_dim) adapter: model inputs (from `prepare`) -> tokens (B, N, token_dim)."""

    def __init__(self, backbone: nn.Module, token_dim: int = 1024) -> None:
        super().__init__()
        if not isinstance(backbone, AudioBackbone):
            raise TypeError(
                f"{type(backbone).__name__} lacks the AudioBackbone interface (dim, prepare, forward)"
            )
        self.backbone = backbone
        self.adapter = nn.Linear(backbone.dim, token_dim)

    @classmethod
    def cavmae(
        cls,
        checkpoint: str | os.PathLike | dict | None = None,
        config: CAVMAEConfig = CAVMAE_BASE,
        token_dim: int = 1024,
        std_scale: float = 1.0,
    ) -> tuple["AudioTokenizer", LoadResult | None]:
        """CAV-MAE tokens through the adapter; with `checkpoint`, its audio branch (and DALI's `proj`, if any)
        loaded. The LoadResult says what the file lacked (`proj.*` for a plain CAV-MAE checkpoint)."""
        tokenizer = cls(CAVMAEBackbone(config, std_scale), token_dim)
        if checkpoint is None:
            return tokenizer, None
        return tokenizer, load_cavmae_checkpoint(tokenizer.backbone, checkpoint, adapter=tokenizer.adapter)

    @classmethod
    def from_transformers(cls, name_or_path: str | os.PathLike, token_dim: int = 1024) -> "AudioTokenizer":
        return cls(HFAudioBackbone.from_pretrained(name_or_path), token_dim)

    @property
    def token_dim(self) -> int:
        return self.adapter.out_features

    def prepare(self, waves: Sequence[Wave]) -> torch.Tensor:
        return self.backbone.prepare(waves)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.adapter(self.backbone(inputs))

    def encode(self, waves: Sequence[Wave]) -> torch.Tensor:
        """Waveforms (or audio paths) -> tokens (B, N, token_dim) on the adapter's device."""
        return self(self.prepare(waves).to(self.adapter.weight.device))
