"""Qwen2-Audio through transformers: the processor's chat template and audio expansion, our label mask.

The prompt is rendered by the checkpoint's chat template ("Audio i: <|audio_bos|><|AUDIO|><|audio_eos|>" per
audio, in order). We expand each `<|AUDIO|>` ourselves, exactly as `Qwen2AudioProcessor` does (the tests
check the ids match), because we need character offsets to put labels on assistant tokens only, and because
clips over the 30 s window are split into consecutive windows or refused instead of silently cut.
"""

import os
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from auralign.models.base import (
    DEFAULT_GENERATION,
    IGNORE,
    SAMPLING_RATE,
    AudioLLM,
    Chat,
    GenerationOptions,
    LongAudio,
    assistant_spans,
    labels_from_offsets,
    load_windows,
    masked_lm_logprobs,
    masked_lm_loss,
    split_audio_tags,
)

if TYPE_CHECKING:
    from auralign.models.factory import ModelConfig

WINDOW_SECONDS = 30.0


def audio_token_count(feature_frames: int) -> int:
    """Tokens the encoder yields for `feature_frames` mel frames (two stride-2 stages)."""
    return (((feature_frames - 1) // 2 + 1) - 2) // 2 + 1


def to_qwen_messages(messages: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Our `<audio>` tags as the content lists Qwen2-Audio's chat template expects."""
    out = []
    for message in messages:
        parts = split_audio_tags(message["content"])
        if None not in parts:
            out.append({"role": message["role"], "content": message["content"]})
            continue
        content = [
            {"type": "audio", "audio": "<audio>"} if p is None else {"type": "text", "text": p} for p in parts
        ]
        out.append({"role": message["role"], "content": content})
    return out


class Qwen2AudioLLM(AudioLLM):
    # PEFT wraps the whole model, so the projector can be saved inside the adapter; LoRA stays in the LM
    # because the audio encoder has q/k/v projections too.
    lora_target_regex = (
        r"model\.language_model\..*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
    )
    peft_extras = ("multi_modal_projector",)

    def __init__(self, model: nn.Module, processor: Any, long_audio: LongAudio = "error") -> None:
        super().__init__()
        self.hf = model
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.feature_extractor = processor.feature_extractor
        self.long_audio = long_audio
        self.template = processor.chat_template or processor.default_chat_template
        self.audio_token = processor.audio_token
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike,
        dtype: torch.dtype = torch.float32,
        long_audio: LongAudio = "error",
        **kw,
    ) -> "Qwen2AudioLLM":
        from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

        processor = AutoProcessor.from_pretrained(path)
        model = Qwen2AudioForConditionalGeneration.from_pretrained(path, dtype=dtype, **kw)
        return cls(model, processor, long_audio=long_audio)

    @classmethod
    def from_config(cls, cfg: "ModelConfig", dtype: torch.dtype) -> "Qwen2AudioLLM":
        """`model.path`: a Qwen2-Audio folder or hub id."""
        extra = {"attn_implementation": cfg.attn_implementation} if cfg.attn_implementation else {}
        return cls.from_pretrained(cfg.path, dtype=dtype, long_audio=cfg.long_audio, **extra)

    @property
    def language_model(self) -> nn.Module:
        return self.hf.model.language_model

    def lora_module(self) -> nn.Module:
        return self.hf

    def render(self, messages: list[dict[str, Any]], add_generation_prompt: bool) -> str:
        return self.tokenizer.apply_chat_template(
            messages, chat_template=self.template, tokenize=False, add_generation_prompt=add_generation_prompt
        )

    def _features(self, chats: list[Chat]) -> tuple[dict[str, torch.Tensor], list[list[int]]]:
        """Mel features of every window of every audio in batch order, and each chat's token counts."""
        windows, counts = [], []
        for chat in chats:
            per_audio = []
            for audio in chat.audios:
                name = audio if isinstance(audio, str | os.PathLike) else f"{chat.id or 'chat'} audio"
                parts = load_windows(audio, WINDOW_SECONDS, self.long_audio, str(name))
                windows.extend(parts)
                per_audio.append(parts)
            counts.append(per_audio)
        if not windows:
            return {}, [[] for _ in chats]
        feats = self.feature_extractor(
            windows,
            sampling_rate=SAMPLING_RATE,
            padding="max_length",
            return_attention_mask=True,
            return_tensors="pt",
        )
        frames = feats["attention_mask"].sum(-1).tolist()
        tokens, i = [], 0
        for per_audio in counts:
            row = []
            for parts in per_audio:
                row.append(sum(audio_token_count(f) for f in frames[i : i + len(parts)]))
                i += len(parts)
            tokens.append(row)
        batch = {"input_features": feats["input_features"], "feature_attention_mask": feats["attention_mask"]}
        return batch, tokens

    def _expand(
        self, text: str, spans: list[tuple[int, int]], counts: list[int]
    ) -> tuple[str, list[tuple[int, int]]]:
        """Repeat the k-th audio token counts[k] times, shifting the answer spans to match."""
        pieces = text.split(self.audio_token)
        if len(pieces) - 1 != len(counts):
            raise ValueError(f"{len(pieces) - 1} audio placeholders in the prompt but {len(counts)} audios")
        out, shifts, pos = [pieces[0]], [], len(pieces[0])
        for count, piece in zip(counts, pieces[1:], strict=True):
            shifts.append((pos, (count - 1) * len(self.audio_token)))
            out += [self.audio_token * count, piece]
            pos += len(self.audio_token) + len(piece)

        def shift(c: int) -> int:
            return c + sum(extra for at, extra in shifts if at < c)

        return "".join(out), [(shift(a), shift(b)) for a, b in spans]

    def collate(self, chats: list[Chat], train: bool = True) -> dict[str, torch.Tensor]:
        batch, counts = self._features(chats)
        rows = []
        for chat, count in zip(chats, counts, strict=True):
            messages = to_qwen_messages(chat.messages)
            if train:
                text, spans = assistant_spans(self.render, messages)
            else:
                text, spans = self.render(messages, True), []
            text, spans = self._expand(text, spans, count)
            enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            ids = enc["input_ids"]
            rows.append((ids, labels_from_offsets(ids, enc["offset_mapping"], spans)))
        batch.update(pad_rows(rows, self.pad_id, left=not train))
        if not train:
            batch.pop("labels")
        return batch

    def hidden(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The model's last hidden states over the batch, what `loss` and `sequence_logprobs` project."""
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        return self.hf.model(**inputs, use_cache=False).last_hidden_state

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return masked_lm_loss(self.hidden(batch), batch["labels"], self.hf.lm_head)

    def token_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return masked_lm_loss(self.hidden(batch), batch["labels"], self.hf.lm_head, reduction="sum")

    def sequence_logprobs(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return masked_lm_logprobs(self.hidden(batch), batch["labels"], self.hf.lm_head)

    @torch.no_grad()
    def generate(self, chats: list[Chat], options: GenerationOptions = DEFAULT_GENERATION) -> list[str]:
        batch = self.on_device(self.collate(chats, train=False))
        if options.do_sample:
            torch.manual_seed(options.seed)
        out = self.hf.generate(**batch, **options.kwargs(), pad_token_id=self.pad_id)
        new = out[:, batch["input_ids"].shape[1] :]
        return [t.strip() for t in self.tokenizer.batch_decode(new, skip_special_tokens=True)]


def pad_rows(rows: list[tuple[list[int], list[int]]], pad_id: int, left: bool) -> dict[str, torch.Tensor]:
    """Pad (ids, labels) rows into input_ids / attention_mask / labels; left padding for generation."""
    width = max(len(ids) for ids, _ in rows)
    ids_t = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels_t = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask_t = torch.zeros((len(rows), width), dtype=torch.long)
    for r, (ids, labels) in enumerate(rows):
        where = slice(width - len(ids), width) if left else slice(0, len(ids))
        ids_t[r, where] = torch.tensor(ids)
        labels_t[r, where] = torch.tensor(labels)
        mask_t[r, where] = 1
    return {"input_ids": ids_t, "attention_mask": mask_t, "labels": labels_t}
