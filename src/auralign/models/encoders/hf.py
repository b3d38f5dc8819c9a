"""Audio encoders from transformers as backbones, with their own feature extractors: AST (patch tokens; CLS and
distillation tokens dropped) or Whisper's encoder (1500 frames for its 30 s window)."""

import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from auralign.models.base import SAMPLING_RATE, Audio
from auralign.models.encoders.base import load_waves


class HFAudioBackbone(nn.Module):
    """A transformers audio encoder and its feature extractor; `skip_tokens` leading tokens are dropped."""

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

    def prepare(self, waves: Sequence[Audio]) -> torch.Tensor:
        arrays = [w for w, _ in load_waves(waves)]
        out = self.feature_extractor(arrays, sampling_rate=SAMPLING_RATE, return_tensors="pt")
        return out["input_values"] if "input_values" in out else out["input_features"]

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        inputs = inputs.to(next(self.encoder.parameters()).dtype)
        return self.encoder(inputs).last_hidden_state[:, self.skip_tokens :]
