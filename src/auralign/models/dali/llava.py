"""LLaVA-1.5 through transformers, frozen, taken apart into the pieces DALI needs.

`FrozenLlava` gives CLIP's image tokens as LLaVA-1.5 feeds them to its projector (hidden states of
`vision_feature_layer`, -2, without CLS: (B, 576, 1024) for ViT-L/14-336), the 2-layer projector, the token
embeddings, the language model and its head. Nothing in it trains; DALI's trainable parts live beside it.
"""

import os
from typing import Any

import torch
from torch import nn

from auralign.errors import ConfigError


def pad_to_square(image: Any, fill: tuple[int, ...]) -> Any:
    """LLaVA-1.5's `expand2square`: centre the image on a square canvas of colour `fill` (its 'pad' aspect mode)."""
    from PIL import Image

    w, h = image.size
    if w == h:
        return image
    side = max(w, h)
    canvas = Image.new(image.mode, (side, side), fill)
    canvas.paste(image, ((side - w) // 2, (side - h) // 2))
    return canvas


def load_image_processor(name_or_path: str | os.PathLike) -> Any:
    """The checkpoint's image processor. Without torchvision, transformers 5 already swaps CLIPImageProcessor for
    CLIPImageProcessorPil; the explicit fallback covers versions that raise instead."""
    from transformers import AutoImageProcessor

    try:
        return AutoImageProcessor.from_pretrained(name_or_path)
    except (ImportError, ValueError):
        from transformers import CLIPImageProcessorPil

        return CLIPImageProcessorPil.from_pretrained(name_or_path)


class FrozenLlava(nn.Module):
    """A `LlavaForConditionalGeneration` with its tokenizer and image processor; eval mode, no gradients."""

    def __init__(self, model: nn.Module, tokenizer: Any, image_processor: Any = None) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        cfg = model.config
        if cfg.vision_feature_select_strategy not in ("default", "full"):
            raise ConfigError(
                f"unsupported vision_feature_select_strategy {cfg.vision_feature_select_strategy!r}"
            )
        if not isinstance(cfg.vision_feature_layer, int):
            raise ConfigError("DALI expects one vision_feature_layer (LLaVA-1.5 uses -2), got a list")

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        dtype: torch.dtype = torch.float16,
        device: str | torch.device = "cpu",
    ) -> "FrozenLlava":
        """From a local folder or hub id in the transformers layout (e.g. llava-hf/llava-1.5-7b-hf)."""
        from transformers import AutoTokenizer, LlavaForConditionalGeneration

        try:
            model = LlavaForConditionalGeneration.from_pretrained(name_or_path, dtype=dtype)
        except OSError as e:
            raise ConfigError(
                f"{name_or_path}: cannot load a transformers LLaVA checkpoint (config.json + weights) ({e})"
            ) from e
        return cls(
            model.to(device), AutoTokenizer.from_pretrained(name_or_path), load_image_processor(name_or_path)
        )

    def train(self, mode: bool = True) -> "FrozenLlava":
        return super().train(False)  # frozen means eval even inside a module being trained

    # the parts, under transformers 5's module paths
    @property
    def vision_tower(self) -> nn.Module:
        return self.model.model.vision_tower

    @property
    def projector(self) -> nn.Module:
        """The original LLaVA-1.5 projector: Linear(1024, W) - GELU - Linear(W, W)."""
        return self.model.model.multi_modal_projector

    @property
    def language_model(self) -> nn.Module:
        return self.model.model.language_model

    @property
    def lm_head(self) -> nn.Module:
        return self.model.lm_head

    @property
    def width(self) -> int:
        return self.model.config.text_config.hidden_size

    @property
    def token_dim(self) -> int:
        return self.model.config.vision_config.hidden_size

    @property
    def dtype(self) -> torch.dtype:
        return self.lm_head.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.lm_head.weight.device

    def preprocess(self, images: list[Any], square: bool = True) -> torch.Tensor:
        """PIL images -> pixel_values (B, 3, 336, 336). `square` pads to a square first, as LLaVA-1.5 and DALI do
        (llava-hf's processor alone would centre-crop instead)."""
        if self.image_processor is None:
            raise ConfigError("this FrozenLlava has no image processor; pass pixel_values directly")
        if square:
            fill = tuple(int(255 * m) for m in self.image_processor.image_mean)
            images = [pad_to_square(im.convert("RGB"), fill) for im in images]
        return self.image_processor(images, return_tensors="pt")["pixel_values"]

    @torch.no_grad()
    def image_tokens(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """CLIP tokens (B, 3, H, W) -> (B, (H/14)^2, 1024), before the projector: what DALI aligns audio tokens to."""
        if pixel_values.ndim != 4:
            raise ValueError(
                f"pixel_values must be (batch, 3, height, width), got {tuple(pixel_values.shape)}"
            )
        cfg = self.model.config
        out = self.vision_tower(
            pixel_values.to(self.device, self.vision_tower.dtype), output_hidden_states=True, return_dict=True
        )
        tokens = out.hidden_states[cfg.vision_feature_layer]
        return tokens[:, 1:] if cfg.vision_feature_select_strategy == "default" else tokens

    def project(self, tokens: torch.Tensor, projector: nn.Module | None = None) -> torch.Tensor:
        """Tokens (B, N, 1024) -> LLM inputs (B, N, W) through `projector` (default: the original one)."""
        projector = self.projector if projector is None else projector
        if tokens.shape[-1] != self.token_dim:
            raise ValueError(f"projector expects tokens of width {self.token_dim}, got {tuple(tokens.shape)}")
        weight = next(projector.parameters())
        return projector(tokens.to(weight.device, weight.dtype))

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.get_input_embeddings()(ids.to(self.device))
