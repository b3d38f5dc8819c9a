"""Tiny random models of the real architectures, built offline, for tests and smoke runs of the stages.

Each is built from config alone, as transformers' own tests do, with a tokenizer made on the spot:

- `tiny_qwen2audio`: the Qwen2-Audio backend (Whisper-style encoder + projector + Qwen2) with a word-level
  tokenizer carrying Qwen's special tokens (`offline_tokenizer`);
- `tiny_llava`: a LLaVA-1.5 in miniature (CLIP vision tower + 2-layer projector + Llama) with a small BPE
  tokenizer trained on a few sentences (`tiny_tokenizer`);
- `tiny_cavmae_config`: CAV-MAE's real input layout (128 bins x 1024 frames -> 512 tokens) with a narrow,
  shallow encoder.

With `folder`, a builder saves its model there in the transformers layout and loads it back through the
backend's own `from_pretrained`, so the loading path is what gets tested.
"""

import os
from pathlib import Path

import torch

from auralign.models.acc.qwen2audio import Qwen2AudioLLM
from auralign.models.dali.captioner import DALI_PROMPT, LLAVA_V1_SYSTEM
from auralign.models.dali.cavmae import CAVMAEConfig
from auralign.models.dali.llava import FrozenLlava

QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|audio_bos|>", "<|AUDIO|>", "<|audio_eos|>"]
QWEN_WORDS = [
    "system",
    "user",
    "assistant",
    "you",
    "are",
    "a",
    "helpful",
    "audio",
    "describe",
    "the",
    "in",
    "one",
    "sentence",
    "tell",
    "me",
    "difference",
    "between",
    "second",
    "and",
    "first",
    "similarities",
    "two",
    "audios",
    "dog",
    "barks",
    "car",
    "passes",
    "bird",
    "sings",
]


def offline_tokenizer(words: list[str] | None = None):
    """A word-level tokenizer with Qwen's special tokens, built offline (the real one needs the hub)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

    vocab = {tok: i for i, tok in enumerate([*QWEN_SPECIALS, "[UNK]"])}
    for word in [*QWEN_WORDS, *(words or []), ":", ".", ",", "\n", " ", *"0123456789"]:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    # Split on whitespace but keep it as tokens, so decoding gives the text back.
    tok.pre_tokenizer = pre_tokenizers.Split(pattern=Regex(r"\s|[.,:]|\d"), behavior="isolated")
    tok.add_special_tokens(QWEN_SPECIALS)
    tok.decoder = decoders.Fuse()
    return tok


def tiny_qwen2audio(
    folder: str | os.PathLike | None = None, *, seed: int = 0, vocab_words: list[str] | None = None
) -> Qwen2AudioLLM:
    """A random Qwen2-Audio of the real architecture, small enough for CPU tests."""
    from transformers import (
        PreTrainedTokenizerFast,
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        WhisperFeatureExtractor,
    )

    tokenizer = PreTrainedTokenizerFast(tokenizer_object=offline_tokenizer(vocab_words))
    tokenizer.add_special_tokens({"pad_token": "<|endoftext|>", "eos_token": "<|im_end|>"})
    audio = {
        "d_model": 16,
        "encoder_attention_heads": 2,
        "encoder_ffn_dim": 32,
        "encoder_layers": 2,
        "num_mel_bins": 128,
        "max_source_positions": 1500,
    }
    text = {
        "model_type": "qwen2",
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "tie_word_embeddings": False,
    }
    config = Qwen2AudioConfig(
        audio_config=audio, text_config=text, audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>")
    )
    torch.manual_seed(seed)
    model = Qwen2AudioForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    processor = Qwen2AudioProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=128), tokenizer=tokenizer
    )
    if folder is None:
        return Qwen2AudioLLM(model, processor)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return Qwen2AudioLLM.from_pretrained(folder)


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
    """A random LLaVA of the 1.5 layout: CLIP (patch 14, layer -2, CLS dropped) -> GELU MLP -> Llama."""
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
    )

    tok = tiny_tokenizer()
    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        image_size=image_size,
        patch_size=14,
        projection_dim=32,
    )
    text = LlamaConfig(
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=len(tok),
        max_position_embeddings=512,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=3,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
    )
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
