"""Tiny random DALI parts of the real architectures, built offline, for tests and smoke runs of the stages.

`tiny_llava` is a LLaVA-1.5 in miniature (CLIP vision tower + 2-layer projector + Llama), built from config
alone as transformers' own tests do, with a small BPE tokenizer trained on the spot; `tiny_cavmae_config` keeps
CAV-MAE's real input layout (128 bins x 1024 frames -> 512 tokens) with a narrow, shallow encoder.
"""

import os
from pathlib import Path

import torch

from auralign.models.dali.captioner import DALI_PROMPT, LLAVA_V1_SYSTEM
from auralign.models.dali.cavmae import CAVMAEConfig
from auralign.models.dali.llava import FrozenLlava

CORPUS = [
    LLAVA_V1_SYSTEM,
    f"USER: <image>\n{DALI_PROMPT} ASSISTANT:",
    "a dog barks while a car passes by on a wet road",
    "birds chirp and a man speaks in the distance",
    "water runs from a tap and a woman laughs",
    "an engine idles then accelerates loudly",
    "music plays as people talk and clap their hands",
]
SPECIALS = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]


def tiny_tokenizer(vocab_size: int = 400):
    """A Llama-like (metaspace BPE, BOS prepended) fast tokenizer trained on a few sentences, no hub needed."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE(unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
    core.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first")
    core.train_from_iterator(CORPUS * 4, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS))
    core.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>"
    )


def tiny_llava(folder: str | os.PathLike | None = None, image_size: int = 56, seed: int = 0) -> FrozenLlava:
    """A random LLaVA of the 1.5 layout: CLIP (patch 14, layer -2, CLS dropped) -> GELU MLP -> Llama.

    With `folder`, it is saved there in the transformers layout and loaded back through
    `FrozenLlava.from_pretrained`, so the loading path is what gets tested.
    """
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
    )

    tok = tiny_tokenizer()
    vision = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
        image_size=image_size, patch_size=14, projection_dim=32,
    )  # fmt: skip
    text = LlamaConfig(
        hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        vocab_size=len(tok), max_position_embeddings=512, bos_token_id=1, eos_token_id=2, pad_token_id=3,
    )  # fmt: skip
    config = LlavaConfig(
        vision_config=vision, text_config=text, image_token_id=tok.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-2, vision_feature_select_strategy="default", projector_hidden_act="gelu",
    )  # fmt: skip
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    processor = CLIPImageProcessorPil(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )
    if folder is None:
        return FrozenLlava(model, tok, processor)
    folder = Path(folder)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    processor.save_pretrained(folder)
    return FrozenLlava.from_pretrained(folder, dtype=torch.float32)


def tiny_cavmae_config() -> CAVMAEConfig:
    """CAV-MAE's real input and token layout (1024 x 128 -> 8 x 64 = 512 tokens), narrow and shallow."""
    return CAVMAEConfig(dim=32, heads=4, depth_a=2, depth_u=1)
